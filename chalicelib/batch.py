"""Partial batch responses for SQS handlers, and backoff for the messages that failed.

Each record is processed on its own, through Powertools' batch processors, and
the response names exactly the messages that failed (``batchItemFailures``),
so only they return to the queue and, after ``maxReceiveCount`` receives,
reach its DLQ. The mapping must enable ``ReportBatchItemFailures``; ``infra/``
declares it, because Chalice cannot.

Backoff. Left alone, a failed message comes back only when the queue's
visibility timeout ends (six times the function's timeout): a throttled table
is hit again at once by a fast handler, or a short outage costs minutes. With
a :class:`RetryPolicy`, :func:`sqs_batch` changes the visibility of exactly
the failed messages before it returns, to an exponential delay with jitter
based on each message's ``ApproximateReceiveCount``: ``base``, ``2·base``,
``4·base`` ... never more than the queue's visibility timeout, which it reads
from the queue, so the cap is whatever the declaration provisioned. A failure
to change visibility is logged and ignored: the message then simply comes
back after the full visibility timeout, as it would without backoff.

:func:`consume` wraps this for the handlers: one invocation, a correlation id
per message, and each failure counted and logged before it is reported.

FIFO queues (the ARN ends in ``.fifo``) use Powertools'
``SqsFifoPartialProcessor``: after a failure, the later messages of the same
message group fail too, so none overtakes it, while other groups go on. All
failed messages of one group get the delay of the group's first failed
message: SQS keeps a group blocked while any of its messages is in flight, so
a shorter delay on the first would gain nothing, and the group comes back
together, in order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.observability import correlated, count, invocation, logger

RecordHandler = Callable[[SQSRecord], None]

# ChangeMessageVisibilityBatch takes at most this many entries.
MAX_BATCH_ENTRIES = 10
# 2**30 seconds is far past SQS's 12-hour limit: a bigger exponent changes nothing.
_MAX_EXPONENT = 30


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with equal jitter for failed SQS messages.

    After its ``n``-th receive fails, a message stays invisible for a random
    time between half and all of ``min(cap, base · 2**(n-1))`` seconds. Equal
    jitter (rather than full jitter) keeps a floor, so a message is never
    retried at once, while messages that failed together still spread out.
    ``cap_seconds`` None means the queue's own visibility timeout.
    """

    base_seconds: int
    cap_seconds: int | None = None
    uniform: Callable[[float, float], float] = field(
        default=random.uniform, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.base_seconds < 1:
            raise ValueError("base_seconds must be at least 1")
        if self.cap_seconds is not None and self.cap_seconds < 0:
            raise ValueError("cap_seconds must not be negative")

    def bound(self, receive_count: int, cap: int) -> int:
        """The longest delay after the ``receive_count``-th receive failed."""
        exponent = min(max(receive_count, 1) - 1, _MAX_EXPONENT)
        return min(cap, self.base_seconds * 2**exponent)

    def delay(self, receive_count: int, cap: int) -> int:
        """Seconds to keep the message invisible: whole seconds, as SQS takes them."""
        bound = self.bound(receive_count, cap)
        return min(bound, math.ceil(self.uniform(bound / 2, bound)))


def consume(
    function: str,
    event: dict[str, Any],
    context: Any,
    services: Any,
    handle: RecordHandler,
    *,
    failure_metric: str | None = None,
    failure_log: str | None = None,
    expected: tuple[type[Exception], ...] = (),
) -> dict[str, Any]:
    """The loop every SQS consumer shares: receive, ``handle`` each message with
    its message id as correlation id, report the failures (:func:`sqs_batch`,
    with ``services.sqs_retry`` backoff), all within one ``function`` invocation.

    A failure that ``handle`` raises is counted as ``failure_metric`` and logged
    as ``failure_log`` with its traceback (either may be left out when ``handle``
    reports its own), then re-raised so the message is reported failed and SQS
    redelivers it until its DLQ takes it. ``expected`` exceptions are failures
    ``handle`` already reported: re-raised as they are, neither counted nor logged.
    """

    def apply(record: SQSRecord) -> None:
        with correlated(message_id=record.message_id):
            try:
                handle(record)
            except expected:
                raise
            except Exception:
                if failure_metric is not None:
                    count(failure_metric, 1)
                if failure_log is not None:
                    logger.exception(failure_log)
                raise

    with invocation(function, services.settings.stage):
        return sqs_batch(event, context, apply, retry=services.sqs_retry, sqs=services.clients.sqs)


def sqs_batch(
    event: dict[str, Any],
    context: Any,
    record_handler: RecordHandler,
    *,
    retry: RetryPolicy | None = None,
    sqs: Any = None,
) -> dict[str, Any]:
    """Process an SQS event record by record; return the partial batch response.

    A FIFO source (its ARN ends in ``.fifo``) goes through Powertools'
    ``SqsFifoPartialProcessor`` with ``skip_group_on_error``: once a message of
    a group fails, the group's later messages in the batch fail too (none may
    overtake it), while other groups go on. With ``retry`` (and the ``sqs``
    client to apply it), the failed messages get the policy's backoff before
    the response is returned; a FIFO group's failed messages share one delay.
    """
    records = event.get("Records") or []
    fifo = any(str(r.get("eventSourceARN", "")).endswith(".fifo") for r in records)
    return _process(event, context, record_handler, fifo=fifo, retry=retry, sqs=sqs)


def _process(
    event: dict[str, Any],
    context: Any,
    record_handler: RecordHandler,
    *,
    fifo: bool,
    retry: RetryPolicy | None,
    sqs: Any,
) -> dict[str, Any]:
    processor: BatchProcessor | SqsFifoPartialProcessor
    if fifo:
        processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    else:
        processor = BatchProcessor(event_type=EventType.SQS)
    # Report even an all-failed batch as a list rather than an exception, so
    # the response always says which messages failed. (The FIFO processor's
    # constructor does not take the flag.)
    processor.raise_on_entire_batch_failure = False
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    if failed and retry is not None and sqs is not None:
        back_off(event.get("Records") or [], failed, retry, sqs, fifo=fifo)
    return response


def backoff_delays(
    records: list[dict[str, Any]],
    failed: set[str],
    retry: RetryPolicy,
    cap: int,
    *,
    fifo: bool,
) -> dict[str, int]:
    """The visibility timeout each failed message gets, by message id.

    On FIFO queues every failed message of a group gets the delay drawn for
    the group's first failed message (see the module docstring).
    """
    delays: dict[str, int] = {}
    group_delays: dict[str, int] = {}
    for record in records:
        message_id = record.get("messageId")
        if message_id not in failed:
            continue
        attributes = record.get("attributes") or {}
        if fifo:
            group = attributes.get("MessageGroupId", "")
            if group not in group_delays:
                group_delays[group] = retry.delay(_receive_count(attributes), cap)
            delays[message_id] = group_delays[group]
        else:
            delays[message_id] = retry.delay(_receive_count(attributes), cap)
    return delays


def back_off(
    records: list[dict[str, Any]], failed: set[str], retry: RetryPolicy, sqs: Any, *, fifo: bool
) -> None:
    """Change the visibility of the failed messages to their backoff delays."""
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record.get("messageId") in failed and record.get("eventSourceARN"):
            by_queue.setdefault(record["eventSourceARN"], []).append(record)
    for arn, queue_records in by_queue.items():
        try:
            url = queue_url(arn, sqs.meta.endpoint_url)
            cap = retry.cap_seconds
            if cap is None:
                cap = _visibility_timeout(sqs, url)
            delays = backoff_delays(queue_records, failed, retry, cap, fifo=fifo)
            _change_visibility(sqs, url, queue_records, delays)
        except (BotoCoreError, ClientError, ValueError, KeyError):
            # The messages come back after the full visibility timeout instead:
            # the partial batch response, which this must never spoil, matters more.
            logger.exception("could not back off failed messages", extra={"queue": arn})


def queue_url(arn: str, endpoint_url: str) -> str:
    """An SQS queue's URL from its ARN (``arn:aws:sqs:region:account:name``)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"{arn!r} is not an SQS queue ARN")
    return f"{endpoint_url.rstrip('/')}/{parts[4]}/{parts[5]}"


def _receive_count(attributes: dict[str, Any]) -> int:
    try:
        return int(attributes.get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


def _visibility_timeout(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    return int(attributes["Attributes"]["VisibilityTimeout"])


def _change_visibility(
    sqs: Any, url: str, records: list[dict[str, Any]], delays: dict[str, int]
) -> None:
    entries = [
        {
            "Id": str(index),
            "ReceiptHandle": record["receiptHandle"],
            "VisibilityTimeout": delays[record["messageId"]],
        }
        for index, record in enumerate(records)
        if record.get("messageId") in delays
    ]
    for start in range(0, len(entries), MAX_BATCH_ENTRIES):
        result = sqs.change_message_visibility_batch(
            QueueUrl=url, Entries=entries[start : start + MAX_BATCH_ENTRIES]
        )
        for failure in result.get("Failed", []):
            logger.warning("could not back off a failed message", extra={"failure": failure})
