"""Polls one SQS queue for one function, with Lambda's SQS semantics.

* Batches: up to ``batch_size`` messages per invocation; receives take at most
  10 (the SQS maximum, and the cheapest against moto, whose operations cost
  time in proportion to queue depth), long-polling with a 1 s wait so ``stop``
  stays prompt. FIFO queues short-poll (see ``_receive``), less often while
  they stay empty (:meth:`Poller._wait_idle`). With
  ``maximum_batching_window_in_seconds`` the poller keeps receiving until the
  batch is full or the window, counted from the first message, has passed.
  FIFO queues ignore the window, as AWS forbids one there.
* Visibility timeout: messages stay invisible while their batch runs; nothing
  is changed on failure, so failed messages reappear when the queue's
  visibility timeout ends, or earlier if the function changed their
  visibility (backoff, ``chalicelib.batch``), and moto redrives them to the
  DLQ after ``maxReceiveCount`` receives (on the receive after that).
* Results: a raise or timeout fails the whole batch; with
  ReportBatchItemFailures only the named messages fail and a malformed response
  fails the batch; every other message is deleted, in batches of 10.
* FIFO: moto keeps a message group blocked while any of its messages is in
  flight, so at most one batch per group runs; after a failure in a group, the
  later messages of that group in the batch are kept too, so none overtakes it.
* Concurrency: at most ``concurrency`` batches of this source at once.

The same poller also carries S3 and SNS events, which Lambda invokes
asynchronously: then each message is its own invocation (``to_event`` builds
the event, or returns None for a message to skip) and the response is ignored.
Every attempt at one event gets the same request id, as in Lambda. After the
last attempt (``async_attempts``) fails, ``on_exhausted`` (the declared
on-failure destination, if any) gets the event and the message is deleted.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localcloud.runtime.filters import RecordFilter
from localcloud.runtime.invoke import ABORTED, Invoker, Outcome, Stats
from localcloud.runtime.poller import Poller
from localcloud.runtime.responses import InvalidBatchResponse, failed_identifiers

log = logging.getLogger(__name__)

MAX_RECEIVE = 10
LONG_POLL_SECONDS = 1


@dataclass
class QueueSource:
    function: str
    queue_name: str
    url: str
    arn: str
    batch_size: int = 10
    window_seconds: float = 0
    concurrency: int = 4
    report_batch_item_failures: bool = False
    record_filter: RecordFilter = field(default_factory=lambda: RecordFilter(()))
    # Set for asynchronous sources (S3, SNS): one message, one invocation.
    to_event: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    # Asynchronous sources: attempts in all, and where an event goes after the last.
    async_attempts: int = 3
    on_exhausted: Callable[[dict[str, Any], Outcome, int, str], None] | None = None

    @property
    def fifo(self) -> bool:
        return self.queue_name.endswith(".fifo")


def lambda_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda puts it into ``event["Records"]``."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    def b64(data: Any) -> str:
        raw = data if isinstance(data, bytes) else str(data).encode()
        return base64.b64encode(raw).decode()

    out: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [b64(v) for v in value.get("BinaryListValues", [])],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = b64(value["BinaryValue"])
    return out


def fifo_failures(records: list[dict[str, Any]], failed: set[str]) -> set[str]:
    """Extend failures to every later message of a failed message's group."""
    blocked: set[str] = set()
    out = set(failed)
    for record in records:
        group = record["attributes"].get("MessageGroupId", "")
        if group in blocked:
            out.add(record["messageId"])
        elif record["messageId"] in failed:
            blocked.add(group)
    return out


class SqsPoller(Poller):
    name = "sqs"

    def __init__(
        self,
        source: QueueSource,
        invoker: Invoker,
        sqs: Any,
        region: str,
        stats: Stats,
        stopping: threading.Event,
        poll_interval: float,
    ):
        super().__init__(source.function, stopping, poll_interval)
        self.source = source
        self._invoker = invoker
        self._sqs = sqs
        self._region = region
        self._stats = stats
        self._slots = threading.BoundedSemaphore(max(1, source.concurrency))
        if source.fifo and source.window_seconds:
            log.warning(
                "%s: AWS forbids a batching window on FIFO queue %s; ignoring it",
                source.function,
                source.queue_name,
            )

    # -- polling ----------------------------------------------------------------

    def poll(self) -> None:
        if not self._slots.acquire(timeout=0.2):
            return
        try:
            messages = self._receive()
        except Exception:
            self._slots.release()
            raise
        if not messages:
            self._slots.release()
            return
        # A mapping invokes per batch; S3 and SNS invoke per event.
        units = [messages] if self.source.to_event is None else [[m] for m in messages]
        for index, unit in enumerate(units):
            if index > 0 and not self._acquire_slot():
                return  # stopping: the rest reappear after their visibility timeout
            self._begin()
            self._spawn(self._handle, unit)

    def _acquire_slot(self) -> bool:
        while not self._stopping.is_set():
            if self._slots.acquire(timeout=0.2):
                return True
        return False

    def _receive(self) -> list[dict[str, Any]]:
        source = self.source
        want = min(source.batch_size, MAX_RECEIVE) if source.fifo else source.batch_size
        if source.to_event is not None:
            want = MAX_RECEIVE
        window = 0 if source.fifo else source.window_seconds
        messages: list[dict[str, Any]] = []
        deadline: float | None = None
        # moto snapshots a FIFO queue's blocked message groups when a receive
        # starts and keeps them blocked for the whole long poll, so a group
        # freed meanwhile would wait out the poll: FIFO queues short-poll.
        long_poll = 0 if source.fifo else LONG_POLL_SECONDS
        while len(messages) < want and not self._stopping.is_set():
            wait = long_poll
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait = LONG_POLL_SECONDS if remaining >= LONG_POLL_SECONDS else 0
            got = self._sqs.receive_message(
                QueueUrl=source.url,
                MaxNumberOfMessages=min(MAX_RECEIVE, want - len(messages)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                if deadline is None:
                    if wait == 0:
                        self._wait_idle()
                    break
                if wait == 0:
                    self._stopping.wait(self._poll_interval)
                continue
            self._found_work()
            messages.extend(got)
            if window <= 0:
                break
            if deadline is None:
                deadline = time.monotonic() + window
        return messages

    # -- one batch --------------------------------------------------------------

    def _handle(self, messages: list[dict[str, Any]]) -> None:
        try:
            if self.source.to_event is None:
                self._handle_batch(messages)
            else:
                self._handle_async(messages[0])
        finally:
            self._slots.release()

    def _handle_batch(self, messages: list[dict[str, Any]]) -> None:
        source = self.source
        records = [lambda_record(m, source.arn, self._region) for m in messages]
        if source.record_filter:
            # Lambda deletes the SQS messages that its filter criteria drop.
            dropped = [r for r in records if not source.record_filter.matches_sqs(r)]
            records = [r for r in records if source.record_filter.matches_sqs(r)]
            self._delete(dropped)
            if not records:
                return
        outcome = self._invoker.invoke({"Records": records})
        if outcome.status == ABORTED:
            return
        ids = [r["messageId"] for r in records]
        failed: set[str]
        if not outcome.ok:
            failed = set(ids)
        elif not source.report_batch_item_failures:
            failed = set()  # without ReportBatchItemFailures the body is ignored
        else:
            try:
                failed = set(failed_identifiers(outcome.response, ids))
            except InvalidBatchResponse as error:
                self._stats.note_error(source.function, f"invalid batch response: {error}")
                log.warning("%s: %s; the whole batch fails", source.function, error)
                failed = set(ids)
        if source.fifo and failed:
            failed = fifo_failures(records, failed)
            self._hold_in_order([r for r in records if r["messageId"] in failed])
        self._delete([r for r in records if r["messageId"] not in failed])

    def _hold_in_order(self, held: list[dict[str, Any]]) -> None:
        """Make a FIFO group's failed messages come back in their order.

        moto bug: when several in-flight messages of one group become visible
        at once, its receive skips all but the *last* (it rechecks the group's
        in-flight state message by message), so the group would come back out
        of order. So the group's later failed messages are made visible at
        once: they stay blocked behind the first, which keeps whatever
        visibility it has (the rest of the queue's timeout, or the backoff the
        function gave it with ChangeMessageVisibility, as AWS would keep it),
        and all return together, in order, when it becomes visible.
        """
        seen_groups: set[str] = set()
        entries = []
        for i, record in enumerate(held):
            group = record["attributes"].get("MessageGroupId", "")
            if group in seen_groups:
                entries.append(
                    {"Id": str(i), "ReceiptHandle": record["receiptHandle"], "VisibilityTimeout": 0}
                )
            seen_groups.add(group)
        for start in range(0, len(entries), MAX_RECEIVE):
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.source.url, Entries=entries[start : start + MAX_RECEIVE]
            )

    def _handle_async(self, message: dict[str, Any]) -> None:
        source = self.source
        assert source.to_event is not None
        event = source.to_event(message)
        if event is not None:
            # Lambda keeps an asynchronous event's request id across its retries.
            request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, message["MessageId"]))
            outcome = self._invoker.invoke(event, request_id=request_id)
            if outcome.status == ABORTED:
                return
            if not outcome.ok:
                attempts = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                if source.on_exhausted is None or attempts < source.async_attempts:
                    return  # retried after the visibility timeout, up to maxReceiveCount
                source.on_exhausted(event, outcome, attempts, request_id)
        self._delete([{"receiptHandle": message["ReceiptHandle"]}])

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), MAX_RECEIVE):
            chunk = records[start : start + MAX_RECEIVE]
            result = self._sqs.delete_message_batch(
                QueueUrl=self.source.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)
                ],
            )
            for failure in result.get("Failed", []):
                log.warning("%s: delete failed: %s", self.source.function, failure)

    # -- idleness ---------------------------------------------------------------

    def is_idle(self) -> bool:
        if self.busy:
            return False
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.source.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return all(int(v) == 0 for v in attributes.values()) and not self.busy
