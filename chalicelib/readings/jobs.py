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

**The parse lease.** A run is also a lease on parsing the object: the job
records its owner (the delivery that parses: the SQS message id, or the Lambda
request id, both stable across that delivery's own retries) and an expiry
derived from the function's timeout. Another delivery of the same object
(S3 may notify twice; moto always does for a multipart upload) that finds the
object being parsed, or already parsed, does nothing: the first delivery
finishes it, or its own retry redoes it. The owner's own retry takes the lease
over at once (its earlier attempt is dead), and anyone may take an expired
lease, so a parse that died half-way is always redone. An operator's replay
takes the lease whatever its state.

A job becomes final only when its totals are known (``parsed``) and
``rows_written == rows_accepted``; that transition is a conditional write, so
the ingest and any number of writers can race for it and it happens once.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import Clock
from chalicelib.dynamo import from_item, is_condition_failure, to_item
from chalicelib.errors import JobNotFound
from chalicelib.readings import keys
from chalicelib.readings.attempts import as_public

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
    "run",
    "extra_columns",
    "rejects_key",
    "rejects_truncated",
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
        if name in _COUNTS or name in ("chunks_written", "run"):
            value = int(value or 0)
        elif name == "chunks_total" and value is not None:
            value = int(value)
        elif name == "extra_columns":
            value = list(value or [])
        elif name == "rejects_truncated":
            value = bool(value)
        elif name == "last_error":
            value = as_public(value)
        job[name] = value
    return job


class ClaimRefused(enum.Enum):
    """Why a delivery does not parse the object."""

    DONE = "object already ingested"
    FAILED = "object failed to ingest"
    PARSED = "object already parsed; the writer finishes the job"
    LEASED = "object being parsed by another delivery"


@dataclass(frozen=True)
class Claim:
    """The outcome of asking for a run: granted (``run`` set) or refused (``refused`` set)."""

    job: dict[str, Any]
    run: int | None = None
    refused: ClaimRefused | None = None

    @property
    def granted(self) -> bool:
        return self.run is not None


class ChunkCount(enum.Enum):
    COUNTED = "counted"
    ALREADY_COUNTED = "already counted"
    # The chunk belongs to an earlier run of the job's parse.
    STALE = "stale"


class IngestJobs:
    def __init__(self, client: Any, table: str, clock: Clock):
        self.client = client
        self.table = table
        self.clock = clock

    def _now(self) -> str:
        return self.clock.iso_now()

    def _epoch(self, plus_seconds: float = 0) -> int:
        return int(self.clock.now().timestamp() + plus_seconds)

    def _raw(self, ingest_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key=to_item({keys.JOB_PK: ingest_id}), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item and keys.JOBS_BY_START_PK in item else None

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

    def start(self, ref: ObjectRef, owner: str, lease_seconds: float) -> Claim:
        """Create the job with its first run, or claim a new run of the existing one.

        A FAILED job is re-opened first. The claim is refused when the job is
        done, parsed, or leased to another live owner (see the module docstring).
        """
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
            "run": 1,
            "lease_owner": owner,
            "lease_expires": self._epoch(lease_seconds),
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
            return Claim(to_public(record), run=1)
        except ClientError as error:
            if not is_condition_failure(error):
                raise
        existing = self._raw(ref.ingest_id)
        assert existing is not None
        if existing["state"] == FAILED:
            self.reopen(ref.ingest_id)
        else:
            refused = self._refusal(existing, owner)
            if refused is not None:
                return Claim(to_public(existing), refused=refused)
        return self.claim(ref.ingest_id, owner, lease_seconds)

    def _refusal(self, raw: dict[str, Any], owner: str) -> ClaimRefused | None:
        if raw["state"] in DONE_STATES:
            return ClaimRefused.DONE
        if raw["state"] == FAILED:
            return ClaimRefused.FAILED
        if raw.get("parsed"):
            return ClaimRefused.PARSED
        leased = raw.get("lease_owner") not in (None, owner)
        if leased and int(raw.get("lease_expires") or 0) > self._epoch():
            return ClaimRefused.LEASED
        return None

    def claim(
        self, ingest_id: str, owner: str, lease_seconds: float, *, force: bool = False
    ) -> Claim:
        """Start a new run of the job's parse, leased to ``owner``.

        The run number goes up by one and the written counters restart at zero,
        in one conditional write. Without ``force`` the write is refused (and
        the job returned with the reason) if the job is not RUNNING, is already
        parsed, or is leased to someone else until later. ``force`` (the
        operator's replay) also re-opens a finished or failed job.
        """
        values: dict[str, Any] = {
            ":running": RUNNING,
            ":me": owner,
            ":expires": self._epoch(lease_seconds),
            ":zero": 0,
            ":one": 1,
            ":now": self._now(),
        }
        update = (
            "SET #s = :running, lease_owner = :me, lease_expires = :expires, "
            "rows_written = :zero, chunks_written = :zero, updated_at = :now "
            "ADD #run :one REMOVE parsed"
        )
        names = {"#s": "state", "#run": "run"}
        if force:
            update += ", reason, finished_at, last_error"
            condition = "attribute_exists(#id)"
            names["#id"] = keys.JOB_PK
        else:
            values[":epoch"] = self._epoch()
            condition = (
                "#s = :running AND attribute_not_exists(parsed) AND (lease_owner = :me "
                "OR attribute_not_exists(lease_expires) OR lease_expires <= :epoch)"
            )
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key=to_item({keys.JOB_PK: ingest_id}),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            raw = self._raw(ingest_id)
            if raw is None:
                raise JobNotFound(f"no ingest job {ingest_id}") from error
            return Claim(to_public(raw), refused=self._refusal(raw, owner) or ClaimRefused.LEASED)
        raw = from_item(response["Attributes"])
        return Claim(to_public(raw), run=int(raw["run"]))

    def reopen(self, ingest_id: str) -> dict[str, Any]:
        """Put a FAILED job back to RUNNING so its object is ingested again."""
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

    def release(self, ingest_id: str, owner: str) -> None:
        """Give up ``owner``'s parse lease after a failed attempt, so that any
        delivery may retry at once; a lease held by someone else is left alone."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=to_item({keys.JOB_PK: ingest_id}),
                UpdateExpression="REMOVE lease_owner, lease_expires",
                ConditionExpression="lease_owner = :me",
                ExpressionAttributeValues=to_item({":me": owner}),
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise

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
