"""Runs of an ingest job's parse, each a lease on parsing the object.

A run (see :mod:`chalicelib.readings.jobs`) is also a lease: the job records
its owner (the delivery that parses: the SQS message id, or the Lambda
request id, both stable across that delivery's own retries) and an expiry
derived from the function's timeout. Another delivery of the same object
(S3 may notify twice; moto always does for a multipart upload) that finds the
object being parsed, or already parsed, does nothing: the first delivery
finishes it, or its own retry redoes it. The owner's own retry takes the lease
over at once (its earlier attempt is dead), and anyone may take an expired
lease, so a parse that died half-way is always redone. An operator's replay
takes the lease whatever its state.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import Clock
from chalicelib.dynamo import from_item, is_condition_failure, to_item
from chalicelib.errors import JobNotFound
from chalicelib.readings import keys
from chalicelib.readings.job_model import (
    DONE_STATES,
    FAILED,
    RUNNING,
    ClaimRefused,
    JobClaim,
    ObjectRef,
    to_public,
)


class ParseLeases:
    """The job table's writes that start, lease and release runs of a parse."""

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

    def start(self, ref: ObjectRef, owner: str, lease_seconds: float) -> JobClaim:
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
            return JobClaim(to_public(record), run=1)
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
                return JobClaim(to_public(existing), refused=refused)
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
    ) -> JobClaim:
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
            return JobClaim(
                to_public(raw), refused=self._refusal(raw, owner) or ClaimRefused.LEASED
            )
        raw = from_item(response["Attributes"])
        return JobClaim(to_public(raw), run=int(raw["run"]))

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
