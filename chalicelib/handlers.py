"""Lambda handlers' bodies: plain event dicts in, partial batch responses out.

SQS handlers go through Powertools' ``BatchProcessor``: each record is
processed on its own and the response names exactly the messages that failed
(``batchItemFailures``), so only they return to the queue and, after
``maxReceiveCount`` receives, reach its DLQ. The mapping must enable
``ReportBatchItemFailures``; ``infra/`` declares it, because Chalice cannot.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import ingest, writer
from chalicelib.jobs import ObjectRef
from chalicelib.observability import correlated, count, invocation, logger
from chalicelib.s3events import refs_from_records, refs_from_sqs_body


def _process(event: dict[str, Any], context: Any, record_handler) -> dict[str, Any]:
    # Report even an all-failed batch as a list rather than an exception, so
    # the response always says which messages failed.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


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
        return _process(event, context, write)


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
        return _process(event, context, ingest_message)


def ingest_from_s3(event: dict[str, Any], context: Any, services) -> None:
    with invocation("ingest_from_s3", services.settings.stage):
        _ingest_all(refs_from_records(event.get("Records", [])), services)
