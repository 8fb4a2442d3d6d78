"""Partial batch responses for SQS handlers, through Powertools' batch processor.

Each record is processed on its own and the response names exactly the
messages that failed (``batchItemFailures``), so only they return to the queue
and, after ``maxReceiveCount`` receives, reach its DLQ. The mapping must
enable ``ReportBatchItemFailures``; ``infra/`` declares it, because Chalice
cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.sqs_fifo_partial_processor import (
    SqsFifoPartialProcessor,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

RecordHandler = Callable[[SQSRecord], None]


def sqs_batch(event: dict[str, Any], context: Any, record_handler: RecordHandler) -> dict[str, Any]:
    # Report even an all-failed batch as a list rather than an exception, so
    # the response always says which messages failed.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


def sqs_fifo_batch(
    event: dict[str, Any], context: Any, record_handler: RecordHandler
) -> dict[str, Any]:
    """Like :func:`sqs_batch`, for a FIFO queue: once a message of a group fails, the
    group's later messages in the batch fail too (none may overtake it), while other
    groups go on (Powertools' ``SqsFifoPartialProcessor`` with ``skip_group_on_error``)."""
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    # Its constructor does not take the flag; as in sqs_batch, an all-failed
    # batch is reported as a list, not raised.
    processor.raise_on_entire_batch_failure = False
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
