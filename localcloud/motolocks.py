"""Makes moto's request handling atomic where the local cloud runs requests concurrently.

moto's server handles each request on its own thread, but its backends were
written for one caller at a time. Under the local cloud's concurrent batches
that loses writes:

* **DynamoDB.** A transaction checks its conditions, then writes
  (:mod:`mototransactions`): another request between the two makes both of
  two "only if absent" transactions succeed. moto's own ``TransactWriteItems``
  puts back copies of whole tables on a failed condition, undoing what other
  threads wrote meanwhile; copies, queries and scans iterate tables that
  other threads change (``dictionary changed size during iteration``).
* **DynamoDB Streams.** A transaction refused half-way takes its records off
  the end of the shard: a read in between hands out records of a write that
  never happened.
* **SQS.** A FIFO send looks for its deduplication id, then appends: two
  sends of one id both get in. ``DeleteMessage`` rebuilds the queue's message
  list from a snapshot and assigns it back; a message sent in between is
  lost. Moving a message to the DLQ on receive races the same list.
* **S3** reads an object's versions, then writes the list back with the new
  one: of two puts of a key in a versioned bucket, one version is lost.
* **SNS** looks for an existing subscription, then adds one: two subscribes
  of one endpoint make two, and every message is delivered twice.

The patches in :data:`PATCHES` serialize each service's requests with one lock per
service, wrapped around moto's request handlers, and adds every message to a
queue under the SQS lock (S3 notifications and SNS deliveries add messages
without an SQS request). A long poll must not hold the SQS lock while it
waits, or no message could arrive to end it: the wait is replaced by a wait
on a condition of the same lock, which releases it, and every message added
to a queue notifies it.

Locks are taken in one order only (S3 or SNS, then SQS), so they cannot
deadlock. The cost is throughput on many cores; moto's handlers are short and
hold the GIL anyway. Each part is a :class:`~localcloud.motopatch.Patch` of
moto's classes, so it applies to every moto server in the process, and to
``mock_aws`` too; ``motopatch.applied(*PATCHES)`` installs them for a block, and
uninstalling gives moto its own code back.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from localcloud.motopatch import Patch, Target

DYNAMODB = threading.RLock()
SQS = threading.RLock()
S3 = threading.RLock()
SNS = threading.RLock()
# Signalled whenever a message is added to any queue; long polls wait on it.
SQS_MESSAGE_ADDED = threading.Condition(SQS)


def serialized(lock: Any) -> Callable[[Any], Any]:
    """A build for :class:`Patch`: moto's method, run holding ``lock``."""

    def build(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return locked

    return build


def _notifying(add_message: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(add_message)
    def add_and_notify(self: Any, message: Any) -> None:
        with SQS_MESSAGE_ADDED:
            add_message(self, message)
            SQS_MESSAGE_ADDED.notify_all()

    return add_and_notify


def _releasing(moto_wait: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(moto_wait)
    def wait_for_messages(self: Any, timeout: int) -> None:
        # Called by receive_message under the SQS lock; waiting on the
        # condition releases it, so senders can add the awaited message.
        with SQS_MESSAGE_ADDED:
            SQS_MESSAGE_ADDED.wait_for(lambda: self.messages, timeout=timeout)

    return wait_for_messages


def _requests(module: str, owner: str, lock: Any, *names: str) -> dict[Target, Any]:
    return {Target(module, owner, name): serialized(lock) for name in names}


DYNAMODB_REQUESTS = Patch(
    "motolocks: DynamoDB requests",
    _requests("moto.dynamodb.responses", "DynamoHandler", DYNAMODB, "call_action"),
)
# Stream reads see the shard that a transaction being undone is trimming.
STREAM_REQUESTS = Patch(
    "motolocks: DynamoDB Streams requests",
    _requests("moto.dynamodbstreams.responses", "DynamoDBStreamsHandler", DYNAMODB, "call_action"),
)
SQS_REQUESTS = Patch(
    "motolocks: SQS requests",
    _requests("moto.sqs.responses", "SQSResponse", SQS, "call_action"),
)
# S3 notifications and SNS deliveries add messages without an SQS request;
# a long poll waits for an add.
SQS_ADDS_AND_WAITS = Patch(
    "motolocks: SQS message adds and long polls",
    {
        Target("moto.sqs.models", "Queue", "add_message"): _notifying,
        Target("moto.sqs.models", "Queue", "wait_for_messages"): _releasing,
    },
)
S3_REQUESTS = Patch(
    "motolocks: S3 requests",
    _requests(
        "moto.s3.responses",
        "S3Response",
        S3,
        "ambiguous_response",
        "bucket_response",
        "key_response",
    ),
)
SNS_REQUESTS = Patch(
    "motolocks: SNS requests",
    _requests("moto.sns.responses", "SNSResponse", SNS, "call_action"),
)

PATCHES = (
    DYNAMODB_REQUESTS,
    STREAM_REQUESTS,
    SQS_REQUESTS,
    SQS_ADDS_AND_WAITS,
    S3_REQUESTS,
    SNS_REQUESTS,
)
