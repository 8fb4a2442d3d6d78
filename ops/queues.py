"""The stage's queues as the operator names them, and the SQS calls every ``ops`` command shares.

QUEUE arguments are resolved against the stage's declaration (a key, a
physical name, or a DLQ's), and URLs come from ``GetQueueUrl`` on the
declared names, so the same command finds the local cloud's queues and a
real account's. :func:`receive` and :func:`release` are the two halves of
looking at messages without consuming them: receive hides them for a
visibility timeout, release makes them visible again at once.
:func:`work_through` is the loop of the commands that replay a queue's
records: receive, handle each, delete it or hold it, release what was held.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.resources import FailureQueue, Queue, Stack

SQS_BATCH = 10
# Short polling samples a subset of SQS's servers, so one empty answer does not
# prove a queue empty; a 1 s long poll asks all of them.
WAIT_SECONDS = 1


class UnknownQueueError(KeyError):
    """The QUEUE argument names no queue (or DLQ) of the stage's declaration."""

    def __str__(self) -> str:  # KeyError would print the message in quotes.
        return str(self.args[0])


def resolve_queue(stack: Stack, name: str) -> Queue:
    """The declared queue that ``name`` designates.

    Accepts the declaration key (``ingest``), the physical name
    (``eventflow-dev-ingest``), and the same two for its DLQ (``ingest-dlq``,
    ``eventflow-dev-ingest-dlq``), because an alarm names the DLQ and the
    operator will paste what the alarm says.

    Raises
    ------
    UnknownQueueError
        When no declared queue matches; the message lists the valid keys.
    """
    for queue in stack.queues:
        if name in (queue.key, queue.name, queue.dlq_key, queue.dlq_name):
            return queue
    known = ", ".join([q.key for q in stack.queues] + [q.key for q in stack.failure_queues])
    raise UnknownQueueError(f"no queue {name!r} in stage {stack.stage} (known: {known})")


def resolve_failure_queue(stack: Stack, name: str) -> FailureQueue | None:
    """The declared on-failure queue that ``name`` designates (key or name), if any."""
    for queue in stack.failure_queues:
        if name in (queue.key, queue.name):
            return queue
    return None


def queue_url(sqs: Any, name: str) -> str:
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


def depth(sqs: Any, url: str) -> int:
    """The messages a queue holds, visible or in flight (approximate on AWS)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


def receive(
    sqs: Any, url: str, count: int, visibility_timeout: int, wait_seconds: int | None
) -> list[dict[str, Any]]:
    # None means the module default, read at call time so a test can shorten it.
    wait_seconds = WAIT_SECONDS if wait_seconds is None else wait_seconds
    return sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=count,
        VisibilityTimeout=visibility_timeout,
        WaitTimeSeconds=wait_seconds,
        # "All" includes the FIFO system attributes (MessageGroupId,
        # MessageDeduplicationId) and AWSTraceHeader, which a redrive copies.
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])


def release(sqs: Any, url: str, handles: list[str]) -> list[str]:
    """Make received messages visible again at once; returns the handles SQS refused."""
    refused: list[str] = []
    for start in range(0, len(handles), SQS_BATCH):
        part = handles[start : start + SQS_BATCH]
        response = sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(part)
            ],
        )
        refused.extend(part[int(f["Id"])] for f in response.get("Failed", []))
    return refused


def work_through(
    sqs: Any,
    url: str,
    max_messages: int,
    handle: Callable[[dict[str, Any]], bool],
    *,
    visibility_timeout: int,
    wait_seconds: int | None = None,
) -> None:
    """Hand up to ``max_messages`` messages of a queue to ``handle``, one at a time.

    A message for which ``handle`` returns True is deleted at once, so a run
    that dies later keeps what it finished. One for which it returns False is
    held: it stays hidden for the rest of the run, so the loop does not
    receive it again, and is made visible again when the run ends, even on an
    error or Ctrl-C, so that the alarm, the next look and the next run see it
    without waiting out ``visibility_timeout``. That timeout only has to
    outlast one ``handle`` call, and bounds how long a crashed run hides a
    message.
    """
    held: list[str] = []
    handled = 0
    try:
        while handled < max_messages:
            batch = receive(
                sqs, url, min(SQS_BATCH, max_messages - handled), visibility_timeout, wait_seconds
            )
            if not batch:
                break
            for message in batch:
                handled += 1
                if handle(message):
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    held.append(message["ReceiptHandle"])
    finally:
        release(sqs, url, held)
