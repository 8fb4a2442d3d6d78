"""Ingest jobs: one record per uploaded object version, and its counters.

The job id is derived from the bucket, key and object version (or ETag), so a
notification delivered twice, or a multipart upload's double event, lands on
the same record.

**Runs.** Each parse of the object is a *run*, numbered on the job (``run``).
Starting a run resets ``rows_written`` and ``chunks_written`` to zero in the
same write that bumps the number, and every chunk carries the run that cut it.
The writer counts a chunk once per run: a chunk marker keyed by (run, seq) and
the counter update commit in one transaction, conditional on the marker being
new and on the job still being on that run. A chunk of an earlier run (left
over from a parse that died, or from before a replay under code that cuts
the file differently) is *stale*: its rows are still put (they come from the
same object version) but it counts nothing. So a run's counts only ever hold
that run's chunks, and a replay can never leave a job stuck with
``rows_written`` != ``rows_accepted``.

**The parse lease** (:mod:`chalicelib.readings.job_leases`): a run is also a
lease on parsing the object, so two deliveries of one object never parse it
at once.

The record's shape, states and the outcomes of these writes are in
:mod:`chalicelib.readings.job_model`.

A job becomes final only when its totals are known (``parsed``) and
``rows_written == rows_accepted``; that transition is a conditional write, so
the ingest and any number of writers can race for it and it happens once.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.config import MARKER_TTL
from chalicelib.dynamo import from_item, is_condition_failure, to_item
from chalicelib.errors import JobNotFound
from chalicelib.readings import keys
from chalicelib.readings.job_leases import ParseLeases
from chalicelib.readings.job_model import (
    COMPLETED,
    COMPLETED_WITH_REJECTS,
    DONE_STATES,
    FAILED,
    FINAL_STATES,
    RUNNING,
    ChunkCount,
    ClaimRefused,
    JobClaim,
    ObjectRef,
    job_id,
    to_public,
)

# The names callers import from here.
__all__ = [
    "COMPLETED",
    "COMPLETED_WITH_REJECTS",
    "DONE_STATES",
    "FAILED",
    "FINAL_STATES",
    "RUNNING",
    "ChunkCount",
    "ClaimRefused",
    "IngestJobs",
    "JobClaim",
    "ObjectRef",
    "job_id",
    "to_public",
]


class IngestJobs(ParseLeases):
    """Ingest job records: reads, the parse's totals and outcome, and the writer's
    chunk counts (the runs and their leases come from :class:`ParseLeases`)."""

    # -- reads -----------------------------------------------------------

    def get(self, ingest_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key=to_item({keys.JOB_PK: ingest_id}), ConsistentRead=True
        ).get("Item")
        if not item or keys.JOBS_BY_START_PK not in item:
            return None
        return to_public(from_item(item))

    def list(
        self, limit: int, start_key: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """Newest first. Returns the jobs and the key to resume after, if any."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": keys.JOBS_BY_START_INDEX,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": keys.JOBS_BY_START_PK},
            "ExpressionAttributeValues": to_item({":k": keys.JOB_KIND}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start_key is not None:
            args["ExclusiveStartKey"] = to_item(start_key)
        response = self.client.query(**args)
        items = [from_item(i) for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return [to_public(i) for i in items], (from_item(last) if last else None)

    # -- the ingest's writes ------------------------------------------------

    def set_totals(
        self,
        ingest_id: str,
        *,
        run: int,
        rows_seen: int,
        rows_accepted: int,
        rows_rejected: int,
        chunks_total: int,
        extra_columns: list[str],
        rejects_key: str | None,
        rejects_truncated: bool = False,
    ) -> dict[str, Any]:
        """Record what run ``run`` of the parse found, and release its lease.

        The counts are exact even when the rejects report was cut short
        (``rejects_truncated``): it lists only the first rejected rows.

        SET, not ADD: a re-run writes the same numbers. Conditional on the job
        still being on this run; a superseded run changes nothing and gets the
        job as the newer run left it.
        """
        values = {
            ":seen": rows_seen,
            ":acc": rows_accepted,
            ":rej": rows_rejected,
            ":chunks": chunks_total,
            ":extra": extra_columns,
            ":now": self._now(),
            ":true": True,
            ":run": run,
            ":cut": rejects_truncated,
        }
        expression = (
            "SET rows_seen = :seen, rows_accepted = :acc, rows_rejected = :rej, "
            "chunks_total = :chunks, extra_columns = :extra, parsed = :true, updated_at = :now, "
            "rejects_truncated = :cut"
        )
        if rejects_key:
            values[":rk"] = rejects_key
            expression += ", rejects_key = :rk REMOVE lease_owner, lease_expires"
        else:
            expression += " REMOVE rejects_key, lease_owner, lease_expires"
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key=to_item({keys.JOB_PK: ingest_id}),
                UpdateExpression=expression,
                ConditionExpression="#run = :run",
                ExpressionAttributeNames={"#run": "run"},
                ExpressionAttributeValues={k: to_item({"v": v})["v"] for k, v in values.items()},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            return self._current(ingest_id)
        return self._maybe_complete(from_item(response["Attributes"]))

    def _current(self, ingest_id: str) -> dict[str, Any]:
        job = self.get(ingest_id)
        if job is None:
            raise JobNotFound(f"no ingest job {ingest_id}")
        return job

    def note_error(self, ingest_id: str, error: dict[str, str]) -> None:
        """Keep the latest failed attempt visible while SQS retries the job.

        ``error`` is the public ``{"code", "message"}`` (:mod:`chalicelib.readings.attempts`).
        """
        self.client.update_item(
            TableName=self.table,
            Key=to_item({keys.JOB_PK: ingest_id}),
            UpdateExpression="SET last_error = :e, updated_at = :now",
            ConditionExpression="attribute_exists(#id)",
            ExpressionAttributeNames={"#id": keys.JOB_PK},
            ExpressionAttributeValues=to_item({":e": error, ":now": self._now()}),
        )

    def fail(self, ingest_id: str, reason: str, run: int) -> dict[str, Any]:
        """Run ``run`` found the object unusable; unless a newer run superseded it."""
        now = self._now()
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key=to_item({keys.JOB_PK: ingest_id}),
                UpdateExpression="SET #s = :failed, reason = :reason, finished_at = :now, "
                "updated_at = :now REMOVE lease_owner, lease_expires",
                ConditionExpression="#run = :run",
                ExpressionAttributeNames={"#s": "state", "#run": "run"},
                ExpressionAttributeValues=to_item(
                    {":failed": FAILED, ":reason": reason[:1000], ":now": now, ":run": run}
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            return self._current(ingest_id)
        return to_public(from_item(response["Attributes"]))

    # -- the writer's write -------------------------------------------------

    def record_chunk(self, ingest_id: str, run: int, seq: int, rows: int) -> ChunkCount:
        """Count a written chunk once per run (see the module docstring)."""
        expires = int((self.clock.now() + MARKER_TTL).timestamp())
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_item(
                                {
                                    keys.JOB_PK: keys.chunk_marker_id(ingest_id, run, seq),
                                    "rows": rows,
                                    keys.EXPIRES_AT: expires,
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(#id)",
                            "ExpressionAttributeNames": {"#id": keys.JOB_PK},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": to_item({keys.JOB_PK: ingest_id}),
                            "UpdateExpression": "ADD rows_written :n, chunks_written :one "
                            "SET updated_at = :now",
                            "ConditionExpression": "attribute_exists(#id) AND #run = :run",
                            "ExpressionAttributeNames": {"#id": keys.JOB_PK, "#run": "run"},
                            "ExpressionAttributeValues": to_item(
                                {":n": rows, ":one": 1, ":now": self._now(), ":run": run}
                            ),
                            # Tells a missing job from one that moved on to another run.
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ]
            )
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                # Counted before: by an earlier delivery, or by this very
                # transaction when botocore retried it after a lost response
                # (AWS then answers success, moto a condition failure).
                return ChunkCount.ALREADY_COUNTED
            if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
                if reasons[1].get("Item"):
                    return ChunkCount.STALE
                raise JobNotFound(f"chunk {seq} names unknown ingest job {ingest_id}") from error
            raise
        return ChunkCount.COUNTED

    def complete_if_done(self, ingest_id: str) -> dict[str, Any] | None:
        raw = self.client.get_item(
            TableName=self.table, Key=to_item({keys.JOB_PK: ingest_id}), ConsistentRead=True
        ).get("Item")
        return self._maybe_complete(from_item(raw)) if raw else None

    def _maybe_complete(self, raw: dict[str, Any]) -> dict[str, Any]:
        job = to_public(raw)
        if not (raw.get("parsed") and job["state"] == RUNNING):
            return job
        if job["rows_written"] != job["rows_accepted"]:
            return job
        final = COMPLETED_WITH_REJECTS if job["rows_rejected"] else COMPLETED
        now = self._now()
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key=to_item({keys.JOB_PK: job["ingest_id"]}),
                UpdateExpression="SET #s = :final, finished_at = :now, updated_at = :now",
                ConditionExpression="#s = :running AND parsed = :true "
                "AND rows_written = rows_accepted",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=to_item(
                    {":final": final, ":now": now, ":running": RUNNING, ":true": True}
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            return self.get(job["ingest_id"]) or job
        return to_public(from_item(response["Attributes"]))
