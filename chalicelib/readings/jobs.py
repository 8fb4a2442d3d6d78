"""Ingest jobs: one record per uploaded object version, and its counters.

The job id is derived from the bucket, key and object version (or ETag), so a
notification delivered twice, or a multipart upload's double event, lands on
the same record. The writer advances ``rows_written`` once per chunk: a chunk
marker and the counter update commit in one transaction, and a marker that
already exists cancels it. A job becomes final only when its totals are known
and ``rows_written == rows_accepted``; that transition is a conditional write,
so the ingest and any number of writers can race for it and it happens once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import Clock
from chalicelib.dynamo import from_item, is_condition_failure, to_item
from chalicelib.errors import JobNotFound
from chalicelib.readings import keys

RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
COMPLETED_WITH_REJECTS = "COMPLETED_WITH_REJECTS"
FAILED = "FAILED"
DONE_STATES = (COMPLETED, COMPLETED_WITH_REJECTS)
# A job in one of these states changes only through a replay.
FINAL_STATES = (*DONE_STATES, FAILED)
# Longer than SQS's 14-day maximum retention, so no redelivered chunk can
# outlive the marker that makes it a no-op.
MARKER_TTL = timedelta(days=15)

_COUNTS = ("rows_seen", "rows_accepted", "rows_rejected", "rows_written")
_PUBLIC = (
    "bucket",
    "key",
    "version",
    "state",
    "reason",
    *_COUNTS,
    "chunks_total",
    "chunks_written",
    "extra_columns",
    "rejects_key",
    "last_error",
    "version_id",
    "etag",
    "started_at",
    "finished_at",
    "updated_at",
)


def job_id(bucket: str, key: str, version: str) -> str:
    """Stable id of one version of one object (version id, or the ETag without quotes)."""
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version.strip(chr(34))}".encode()).hexdigest()
    return digest[:32]


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None

    @property
    def version(self) -> str:
        return self.version_id or (self.etag or "").strip('"')

    @property
    def ingest_id(self) -> str:
        return job_id(self.bucket, self.key, self.version)


def to_public(raw: dict[str, Any]) -> dict[str, Any]:
    job = {"ingest_id": raw[keys.JOB_PK]}
    for name in _PUBLIC:
        value = raw.get(name)
        if name in _COUNTS or name in ("chunks_written",):
            value = int(value or 0)
        elif name == "chunks_total" and value is not None:
            value = int(value)
        elif name == "extra_columns":
            value = list(value or [])
        job[name] = value
    return job


class IngestJobs:
    def __init__(self, client: Any, table: str, clock: Clock):
        self.client = client
        self.table = table
        self.clock = clock

    def _now(self) -> str:
        return self.clock.iso_now()

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

    def start(self, ref: ObjectRef) -> dict[str, Any]:
        """Create the job, or return the existing one (re-opened if it had failed)."""
        now = self._now()
        record = {
            keys.JOB_PK: ref.ingest_id,
            keys.JOBS_BY_START_PK: keys.JOB_KIND,
            keys.JOBS_BY_START_SK: f"{now}#{ref.ingest_id}",
            "bucket": ref.bucket,
            "key": ref.key,
            "version": ref.version,
            "version_id": ref.version_id,
            "etag": ref.etag,
            "state": RUNNING,
            "rows_written": 0,
            "chunks_written": 0,
            "started_at": now,
            "updated_at": now,
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item=to_item(record),
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": keys.JOB_PK},
            )
            return to_public(record)
        except ClientError as error:
            if not is_condition_failure(error):
                raise
        existing = self.get(ref.ingest_id)
        assert existing is not None
        if existing["state"] == FAILED:
            return self.reopen(ref.ingest_id)
        return existing

    def reopen(self, ingest_id: str) -> dict[str, Any]:
        """Put a job back to RUNNING so its object is ingested again (replay, retry)."""
        response = self.client.update_item(
            TableName=self.table,
            Key=to_item({keys.JOB_PK: ingest_id}),
            UpdateExpression="SET #s = :running, updated_at = :now "
            "REMOVE reason, finished_at, last_error",
            ConditionExpression="attribute_exists(#id)",
            ExpressionAttributeNames={"#s": "state", "#id": keys.JOB_PK},
            ExpressionAttributeValues=to_item({":running": RUNNING, ":now": self._now()}),
            ReturnValues="ALL_NEW",
        )
        return to_public(from_item(response["Attributes"]))

    def set_totals(
        self,
        ingest_id: str,
        *,
        rows_seen: int,
        rows_accepted: int,
        rows_rejected: int,
        chunks_total: int,
        extra_columns: list[str],
        rejects_key: str | None,
    ) -> dict[str, Any]:
        """Record what parsing found (SET, not ADD: a re-run writes the same numbers)."""
        values = {
            ":seen": rows_seen,
            ":acc": rows_accepted,
            ":rej": rows_rejected,
            ":chunks": chunks_total,
            ":extra": extra_columns,
            ":now": self._now(),
            ":true": True,
        }
        expression = (
            "SET rows_seen = :seen, rows_accepted = :acc, rows_rejected = :rej, "
            "chunks_total = :chunks, extra_columns = :extra, parsed = :true, updated_at = :now"
        )
        if rejects_key:
            values[":rk"] = rejects_key
            expression += ", rejects_key = :rk"
        else:
            expression += " REMOVE rejects_key"
        response = self.client.update_item(
            TableName=self.table,
            Key=to_item({keys.JOB_PK: ingest_id}),
            UpdateExpression=expression,
            ExpressionAttributeValues={k: to_item({"v": v})["v"] for k, v in values.items()},
            ReturnValues="ALL_NEW",
        )
        return self._maybe_complete(from_item(response["Attributes"]))

    def note_error(self, ingest_id: str, error: str) -> None:
        """Keep the latest failed attempt visible while SQS retries the job."""
        self.client.update_item(
            TableName=self.table,
            Key=to_item({keys.JOB_PK: ingest_id}),
            UpdateExpression="SET last_error = :e, updated_at = :now",
            ConditionExpression="attribute_exists(#id)",
            ExpressionAttributeNames={"#id": keys.JOB_PK},
            ExpressionAttributeValues=to_item({":e": error[:1000], ":now": self._now()}),
        )

    def fail(self, ingest_id: str, reason: str) -> dict[str, Any]:
        now = self._now()
        response = self.client.update_item(
            TableName=self.table,
            Key=to_item({keys.JOB_PK: ingest_id}),
            UpdateExpression="SET #s = :failed, reason = :reason, finished_at = :now, "
            "updated_at = :now",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=to_item(
                {":failed": FAILED, ":reason": reason[:1000], ":now": now}
            ),
            ReturnValues="ALL_NEW",
        )
        return to_public(from_item(response["Attributes"]))

    # -- the writer's write -------------------------------------------------

    def record_chunk(self, ingest_id: str, seq: int, rows: int) -> bool:
        """Count a written chunk exactly once. Returns False if it was already counted."""
        expires = int((self.clock.now() + MARKER_TTL).timestamp())
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_item(
                                {
                                    keys.JOB_PK: keys.chunk_marker_id(ingest_id, seq),
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
                            "ConditionExpression": "attribute_exists(#id)",
                            "ExpressionAttributeNames": {"#id": keys.JOB_PK},
                            "ExpressionAttributeValues": to_item(
                                {":n": rows, ":one": 1, ":now": self._now()}
                            ),
                        }
                    },
                ]
            )
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
                raise JobNotFound(f"chunk {seq} names unknown ingest job {ingest_id}") from error
            raise
        return True

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
