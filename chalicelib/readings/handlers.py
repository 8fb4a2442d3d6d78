"""The readings workflow's Lambda handler bodies: plain event dicts in,
partial batch responses (:mod:`chalicelib.batch`) out."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.batch import sqs_batch
from chalicelib.observability import correlated, count, invocation, logger
from chalicelib.readings import ingest, writer
from chalicelib.readings.jobs import ObjectRef
from chalicelib.readings.s3events import refs_from_records, refs_from_sqs_body


def write_readings(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    def write(record: SQSRecord) -> None:
        with correlated(message_id=record.message_id):
            try:
                writer.write_chunk(record.body, services)
            except Exception:
                count("ChunkFailures", 1)
                logger.exception("chunk failed; SQS will redeliver it")
                raise

    with invocation("write_readings", services.settings.stage):
        return sqs_batch(event, context, write, retry=services.sqs_retry, sqs=services.clients.sqs)


def _ingest_all(refs: list[ObjectRef], services) -> None:
    failures = []
    for ref in refs:
        try:
            ingest.ingest_object(ref, services)
        except Exception as error:
            logger.exception("ingest attempt failed", extra={"ingest_id": ref.ingest_id})
            failures.append(error)
            try:
                services.jobs.note_error(ref.ingest_id, f"{type(error).__name__}: {error}")
            except Exception:
                logger.exception("could not record the failed attempt on the job")
    if failures:
        # Re-running is idempotent, so retrying the whole event is safe.
        raise failures[0]


def ingest_from_queue(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    def ingest_message(record: SQSRecord) -> None:
        with correlated(message_id=record.message_id):
            _ingest_all(refs_from_sqs_body(record.body), services)

    with invocation("ingest_from_queue", services.settings.stage):
        return sqs_batch(
            event, context, ingest_message, retry=services.sqs_retry, sqs=services.clients.sqs
        )


def ingest_from_s3(event: dict[str, Any], context: Any, services) -> None:
    with invocation("ingest_from_s3", services.settings.stage):
        _ingest_all(refs_from_records(event.get("Records", [])), services)
