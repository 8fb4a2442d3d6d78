"""Ingest: one uploaded CSV object into chunks on the ingest queue.

The object is read as a stream (see :mod:`chalicelib.readings.csvstream`), each row is
validated on its own, accepted rows are packed into chunks and sent in
batches while reading, and rejected rows go to ``rejects/{ingest_id}.csv``.
Totals are recorded last, with SET rather than ADD, so re-running an ingest
(a redelivered notification, a crash half-way, an operator's replay) gives
the same job record. Each parse is a new *run* of the job, leased to the
delivery doing it (see :mod:`chalicelib.readings.jobs`): the run's chunks are
the only ones the writer counts, and a second delivery of the object while the
first parses it, or after, does not parse and send it again.
"""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from chalicelib.clock import Backoff
from chalicelib.config import REJECTS_PREFIX
from chalicelib.dynamo import error_code
from chalicelib.errors import NotFound
from chalicelib.observability import correlated, count, logger
from chalicelib.readings.chunks import BatchSender, ChunkPacker
from chalicelib.readings.csvstream import CsvRecords, HeaderError, Record
from chalicelib.readings.jobs import ClaimRefused, ObjectRef
from chalicelib.readings.model import CSV_COLUMNS, Reading
from chalicelib.readings.rejects import RejectsReport
from chalicelib.validation import problems

# Lambda's longest timeout: no invocation can outlive a lease this long. An
# operator's replay, which runs outside Lambda, holds its lease this long too.
MAX_LEASE_SECONDS = 900

# S3 answers these when the object (or the version the event named) is gone.
_GONE = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}
_REPLACED = {"PreconditionFailed", "412"}


def validate_record(record: Record, header) -> tuple[Reading | None, list[dict[str, str]]]:
    """A reading, or the problems that reject the record (column and reason each)."""
    if record.error:
        return None, [{"field": "", "problem": f"line {record.error}"}]
    width = len(header.columns)
    if len(record.fields) > width:
        return None, [
            {"field": "", "problem": f"row has {len(record.fields)} fields, the header has {width}"}
        ]
    values = {
        column: record.fields[index]
        for column, index in header.index.items()
        if index < len(record.fields)
    }
    try:
        return Reading.model_validate(values), []
    except ValidationError as error:
        found = problems(error)
    if len(record.fields) < width:
        for problem in found:
            if problem["problem"] == "is required":
                problem["problem"] = (
                    f"is missing: row has {len(record.fields)} fields, the header has {width}"
                )
    return None, found


def ingest_object(
    ref: ObjectRef, services, *, owner: str, lease_seconds: float = MAX_LEASE_SECONDS
) -> dict[str, Any]:
    """Ingest one object version; returns its job record.

    ``owner`` names the delivery (stable across its own retries) and
    ``lease_seconds`` bounds how long it may take; a delivery that finds the
    object being parsed by another, or already parsed, returns the job as is.
    """
    with correlated(ingest_id=ref.ingest_id):
        claim = services.jobs.start(ref, owner, lease_seconds)
        if not claim.granted:
            assert claim.refused is not None
            logger.info(claim.refused.value, extra={"state": claim.job["state"]})
            return claim.job
        assert claim.run is not None
        return _run(ref, claim.run, services)


def replay(ingest_id: str, services) -> dict[str, Any]:
    """Ingest a job's object again as a new run, whatever its state (the operator's replay)."""
    job = services.jobs.get(ingest_id)
    if job is None:
        raise NotFound(f"no ingest job {ingest_id}")
    claim = services.jobs.claim(
        ingest_id, f"replay-{uuid.uuid4().hex}", MAX_LEASE_SECONDS, force=True
    )
    assert claim.run is not None
    ref = ObjectRef(
        bucket=job["bucket"], key=job["key"], version_id=job["version_id"], etag=job["etag"]
    )
    with correlated(ingest_id=ingest_id):
        return _run(ref, claim.run, services)


def replay_object(ref: ObjectRef, services) -> dict[str, Any]:
    """Ingest an object version that a failed delivery named (an on-failure record).

    A job that is done, or parsed and being written, is left as it is. A job
    leased to another delivery is taken over: the failure record says a
    delivery died, and its lease is most likely that one's; a new run is
    correct even if it was not.
    """
    owner = f"replay-{uuid.uuid4().hex}"
    with correlated(ingest_id=ref.ingest_id):
        claim = services.jobs.start(ref, owner, MAX_LEASE_SECONDS)
        if claim.refused is ClaimRefused.LEASED:
            claim = services.jobs.claim(ref.ingest_id, owner, MAX_LEASE_SECONDS, force=True)
        if not claim.granted:
            return claim.job
        assert claim.run is not None
        return _run(ref, claim.run, services)


def _open(ref: ObjectRef, s3: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        args["VersionId"] = ref.version_id
    elif ref.etag:
        # Read the version the event announced, not whatever replaced it since.
        args["IfMatch"] = f'"{ref.etag.strip(chr(34))}"'
    return s3.get_object(**args)


def too_large(size: int, limit: int) -> str:
    return (
        f"the object is {size:,} bytes, over this stage's upload maximum of {limit:,} bytes; "
        "split the file and upload the parts"
    )


def _run(ref: ObjectRef, run: int, services) -> dict[str, Any]:
    jobs = services.jobs
    ingest_id = ref.ingest_id
    try:
        response = _open(ref, services.clients.s3)
    except ClientError as error:
        code = error_code(error)
        if code in _GONE:
            return jobs.fail(ingest_id, "the object no longer exists", run)
        if code in _REPLACED:
            return jobs.fail(ingest_id, "the object was replaced before it could be read", run)
        raise
    body = response["Body"]
    # Whoever wrote the object (a presigned POST enforces the same bound, but
    # an operator or another tool may not have used one), an object over the
    # stage's maximum is refused before a row is read.
    size = int(response.get("ContentLength") or 0)
    limit = services.settings.upload_max_bytes
    if size > limit:
        body.close()
        return jobs.fail(ingest_id, too_large(size, limit), run)
    try:
        try:
            records = CsvRecords(body, CSV_COLUMNS)
        except HeaderError as error:
            return jobs.fail(ingest_id, str(error), run)
        return _load(ref, run, records, services)
    finally:
        body.close()


def _load(ref: ObjectRef, run: int, records: CsvRecords, services) -> dict[str, Any]:
    ingest_id = ref.ingest_id
    packer = ChunkPacker(ingest_id, run)
    sender = BatchSender(
        services.clients.sqs, services.ingest_queue_url, Backoff(services.clock, attempts=5)
    )
    seen = accepted = 0
    settings = services.settings
    report = RejectsReport(
        services.clients.s3,
        ref.bucket,
        f"{REJECTS_PREFIX}{ingest_id}.csv",
        max_rows=settings.rejects_max_rows,
        max_bytes=settings.rejects_max_bytes,
    )
    with report as rejects:
        for record in records:
            seen += 1
            reading, found = validate_record(record, records.header)
            if reading is None:
                rejects.add(record.line, found, record.fields)
                continue
            accepted += 1
            chunk = packer.add(reading.canonical_row())
            if chunk:
                sender.add(chunk)
        last = packer.flush()
        if last:
            sender.add(last)
        sender.flush()
        rejects_key = rejects.finish()
    count("RowsAccepted", accepted)
    count("RowsRejected", rejects.rows)
    job = services.jobs.set_totals(
        ingest_id,
        run=run,
        rows_seen=seen,
        rows_accepted=accepted,
        rows_rejected=rejects.rows,
        chunks_total=packer.chunks,
        extra_columns=list(records.header.extra) if records.header else [],
        rejects_key=rejects_key,
        rejects_truncated=rejects.truncated,
    )
    logger.info(
        "object parsed",
        extra={
            "rows_seen": seen,
            "rows_accepted": accepted,
            "rows_rejected": rejects.rows,
            "rejects_listed": rejects.listed,
            "chunks": packer.chunks,
            "run": run,
            "sqs_calls": sender.calls,
        },
    )
    return job
