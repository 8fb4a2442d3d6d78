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
from typing import TYPE_CHECKING, Any

from chalicelib.config import REDRIVE_ATTRIBUTE
from chalicelib.lazy import lazy
from chalicelib.observability import correlated, count, invocation, logger

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

# Past the end of the invocation, so the lease outlives the invocation however
# the clocks of Lambda and DynamoDB's caller differ.
LEASE_MARGIN_SECONDS = 30


def lease_seconds(context: Any) -> float:
    """How long a parse started now may run: the invocation's remaining time, plus a margin."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return ingest.MAX_LEASE_SECONDS
    return remaining() / 1000 + LEASE_MARGIN_SECONDS


def delivery(record: SQSRecord) -> Delivery:
    raw = record.raw_event
    count_text = (raw.get("attributes") or {}).get("ApproximateReceiveCount") or "1"
    return writer.Delivery(
        receive_count=int(count_text),
        redriven=REDRIVE_ATTRIBUTE in (raw.get("messageAttributes") or {}),
    )


def write_readings(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    def write(record: SQSRecord) -> None:
        with correlated(message_id=record.message_id):
            try:
                writer.write_chunk(record.body, services, delivery(record))
            except Exception:
                count("ChunkFailures", 1)
                logger.exception("chunk failed; SQS will redeliver it")
                raise

    with invocation("write_readings", services.settings.stage):
        return batch.sqs_batch(
            event, context, write, retry=services.sqs_retry, sqs=services.clients.sqs
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
        with correlated(message_id=record.message_id):
            refs = s3events.refs_from_sqs_body(record.body)
            _ingest_all(refs, services, record.message_id, lease_seconds(context))

    with invocation("ingest_from_queue", services.settings.stage):
        return batch.sqs_batch(
            event, context, ingest_message, retry=services.sqs_retry, sqs=services.clients.sqs
        )


def ingest_from_s3(event: dict[str, Any], context: Any, services) -> None:
    # Lambda keeps an asynchronous event's request id across its retries.
    owner = getattr(context, "aws_request_id", None) or f"s3-{uuid.uuid4().hex}"
    with invocation("ingest_from_s3", services.settings.stage):
        refs = s3events.refs_from_records(event.get("Records", []))
        _ingest_all(refs, services, owner, lease_seconds(context))
