"""``dlq replay QUEUE``: run again what an on-failure queue holds.

An on-failure queue (``infra.resources.FailureQueue``) receives Lambda's
record of each asynchronous invocation it gave up on: the S3 event, the
error, the attempts. There is no source queue to redrive such a record to;
instead each object the event names is ingested again, here in the
operator's process (as ``ops ingest replay`` does), through
:func:`chalicelib.readings.ingest.replay_object`: a job already done is left
alone, anything else gets a new run.

A record is deleted only after every object it names was ingested (or found
done, or ended FAILED, which the job record then explains); a record whose
replay raised stays in the queue, visible again at the end of the run, and is
reported with the error. Running the command again is safe: the ingest is
idempotent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.readings import ingest
from ops.decode import failure_record, failure_refs
from ops.queues import work_through

# Long enough to ingest the objects of one record in the operator's shell.
REPLAY_VISIBILITY_SECONDS = ingest.MAX_LEASE_SECONDS


@dataclass
class ReplayedRecord:
    message_id: str
    jobs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class FailureReplayResult:
    replayed: list[ReplayedRecord] = field(default_factory=list)
    failed: list[ReplayedRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def replay_failures(sqs: Any, url: str, services: Any, max_records: int) -> FailureReplayResult:
    """Replay up to ``max_records`` records from an on-failure queue."""
    result = FailureReplayResult()

    def handle(message: dict[str, Any]) -> bool:
        record = _replay_one(message, services)
        if record.error is None:
            result.replayed.append(record)
            return True
        result.failed.append(record)
        return False

    work_through(
        sqs,
        url,
        max_records,
        handle,
        visibility_timeout=REPLAY_VISIBILITY_SECONDS,
        wait_seconds=0,
    )
    return result


def _replay_one(message: dict[str, Any], services: Any) -> ReplayedRecord:
    replayed = ReplayedRecord(message_id=message["MessageId"])
    record = failure_record(message["Body"])
    if record is None:
        replayed.error = "not an on-failure record of an asynchronous invocation"
        return replayed
    try:
        for ref in failure_refs(record):
            job = ingest.replay_object(ref, services)
            replayed.jobs.append({"ingest_id": job["ingest_id"], "state": job["state"]})
    except Exception as error:  # reported per record; the record stays for a later run
        replayed.error = f"{type(error).__name__}: {error}"
    return replayed
