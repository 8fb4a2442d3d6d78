"""The readings workflow's Lambda handler bodies: plain event dicts in,
partial batch responses (:mod:`chalicelib.batch`) out.

Besides the record, each body hands the domain code what only the delivery
knows: who is delivering (for the parse lease: the SQS message id, or the
Lambda request id of an asynchronous invocation, both kept across that
delivery's retries), how long the invocation may still run, and whether a
chunk has been delivered before (see :class:`chalicelib.readings.writer.Delivery`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import leases, metric_names
from chalicelib.config import REDRIVE_ATTRIBUTE
from chalicelib.lazy import lazy
from chalicelib.observability import invocation, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from chalicelib.readings.jobs import ObjectRef
    from chalicelib.readings.writer import Delivery

# Imported at first use (app.py imports this module; see chalicelib/lazy.py):
# each function's cold start pays only for its own handler, so the writer never
# loads the ingest's CSV and S3 code, and no API function loads Powertools'
# batch processors or the readings' domain modules.
batch = lazy("chalicelib.batch")
attempts = lazy("chalicelib.readings.attempts")
ingest = lazy("chalicelib.readings.ingest")
s3events = lazy("chalicelib.readings.s3events")
writer = lazy("chalicelib.readings.writer")

# Past the end of the invocation, so the parse lease outlives the invocation
# however the clocks of Lambda and DynamoDB's caller differ.
LEASE_MARGIN = timedelta(seconds=30)


def delivery(record: SQSRecord) -> Delivery:
    raw = record.raw_event
    count_text = (raw.get("attributes") or {}).get("ApproximateReceiveCount") or "1"
    return writer.Delivery(
        receive_count=int(count_text),
        redriven=REDRIVE_ATTRIBUTE in (raw.get("messageAttributes") or {}),
    )


def write_readings(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    return batch.consume(
        "write_readings",
        event,
        context,
        services,
        lambda record: writer.write_chunk(record.body, services, delivery(record)),
        failure_metric=metric_names.CHUNK_FAILURES,
        failure_log="chunk failed; SQS will redeliver it",
    )


def _ingest_all(refs: list[ObjectRef], services, owner: str, lease: float) -> None:
    failures = []
    for ref in refs:
        try:
            ingest.ingest_object(ref, services, owner=owner, lease_seconds=lease)
        except Exception as error:
            logger.exception("ingest attempt failed", extra={"ingest_id": ref.ingest_id})
            failures.append(error)
            try:
                # The exception is in the log line above; the job (which
                # the API returns) gets a code and a sentence of ours.
                services.jobs.note_error(ref.ingest_id, attempts.public_failure(error))
                services.jobs.release(ref.ingest_id, owner)
            except Exception:
                logger.exception("could not record the failed attempt on the job")
    if failures:
        # Re-running is idempotent, so retrying the whole event is safe.
        raise failures[0]


def ingest_from_queue(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    def ingest_message(record: SQSRecord) -> None:
        refs = s3events.refs_from_sqs_body(record.body)
        lease = leases.invocation_lease(context, LEASE_MARGIN)
        _ingest_all(refs, services, record.message_id, lease.total_seconds())

    # _ingest_all logs and notes each failed object itself.
    return batch.consume("ingest_from_queue", event, context, services, ingest_message)


def ingest_from_s3(event: dict[str, Any], context: Any, services) -> None:
    # Lambda keeps an asynchronous event's request id across its retries.
    owner = getattr(context, "aws_request_id", None) or f"s3-{uuid.uuid4().hex}"
    with invocation("ingest_from_s3", services.settings.stage):
        refs = s3events.refs_from_records(event.get("Records", []))
        lease = leases.invocation_lease(context, LEASE_MARGIN)
        _ingest_all(refs, services, owner, lease.total_seconds())
