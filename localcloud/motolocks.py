"""Makes moto's request handling atomic where the local cloud runs requests concurrently.

moto's server handles each request on its own thread, but its backends were
written for one caller at a time. Under the local cloud's concurrent batches
that loses writes:

* **DynamoDB.** ``TransactWriteItems`` deep-copies every table it touches
  before it runs, and on a failed condition puts the copies back: every write
  that other threads made to those tables meanwhile is undone (a redelivered
  chunk's "already counted" transaction erased a sibling chunk's count). The
  copy itself iterates the table while other threads change it, which raises
  ``RuntimeError: dictionary changed size during iteration``; so can queries
  and scans.
* **SQS.** ``DeleteMessage`` rebuilds the queue's message list from a snapshot
  and assigns it back; a message sent in between is lost. Moving a message to
  the DLQ on receive races the same list.
* **S3** keeps an object's versions in a list that a first ``PutObject`` of a
  key creates with a read-then-write, and listings iterate dicts that puts
  change. **SNS** iterates its subscriptions while publishing.

:func:`install` serializes each service's requests with one lock per
service, wrapped around moto's request handlers (and around SQS's
``send_message``, which S3 notifications and SNS deliveries call directly).
A long poll must not hold the SQS lock while it waits, or no message could
arrive to end it: the wait is replaced by a wait on a condition of the same
lock, which releases it, and every message added to a queue notifies it.

Locks are taken in one order only (S3 or SNS, then SQS), so they cannot
deadlock. The cost is throughput on many cores; moto's handlers are short and
hold the GIL anyway. Installed once per process by the local cloud's server;
it patches moto's classes, so it applies to every moto server in the process,
and to ``mock_aws`` too.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_installed = False
_install_lock = threading.Lock()

DYNAMODB = threading.RLock()
SQS = threading.RLock()
S3 = threading.RLock()
SNS = threading.RLock()
# Signalled whenever a message is added to any queue; long polls wait on it.
SQS_MESSAGE_ADDED = threading.Condition(SQS)


def _serialized(cls: type, name: str, lock: Any) -> None:
    original: Callable[..., Any] = getattr(cls, name)

    @functools.wraps(original)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    setattr(cls, name, locked)


def _patch_sqs_waits() -> None:
    from moto.sqs.models import Queue

    add_message = Queue.add_message

    @functools.wraps(add_message)
    def add_and_notify(self: Any, message: Any) -> None:
        with SQS_MESSAGE_ADDED:
            add_message(self, message)
            SQS_MESSAGE_ADDED.notify_all()

    def wait_for_messages(self: Any, timeout: int) -> None:
        # Called by receive_message under the SQS lock; waiting on the
        # condition releases it, so senders can add the awaited message.
        with SQS_MESSAGE_ADDED:
            SQS_MESSAGE_ADDED.wait_for(lambda: self.messages, timeout=timeout)

    Queue.add_message = add_and_notify
    Queue.wait_for_messages = wait_for_messages


def install() -> None:
    """Serialize moto's DynamoDB, SQS, S3 and SNS requests (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from moto.dynamodb.responses import DynamoHandler
        from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
        from moto.s3.responses import S3Response
        from moto.sns.responses import SNSResponse
        from moto.sqs.models import SQSBackend
        from moto.sqs.responses import SQSResponse

        _serialized(DynamoHandler, "call_action", DYNAMODB)
        # Stream reads see the table's shards, which transactions roll back too.
        _serialized(DynamoDBStreamsHandler, "call_action", DYNAMODB)
        _serialized(SQSResponse, "call_action", SQS)
        _serialized(SQSBackend, "send_message", SQS)
        _patch_sqs_waits()
        for entry_point in ("ambiguous_response", "bucket_response", "key_response"):
            _serialized(S3Response, entry_point, S3)
        _serialized(SNSResponse, "call_action", SNS)
        _installed = True


def installed() -> bool:
    return _installed
