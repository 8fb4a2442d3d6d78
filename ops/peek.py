"""``dlq peek``'s logic: read a queue's messages without consuming them, decoded for the operator.

:func:`peek` consumes nothing. It hides the messages it reads for a short
visibility timeout (so that later receives in the same peek return new
messages rather than the same ones again) and makes every one of them
visible again before it returns, even when it fails half-way. Each body is
decoded as what the queue carries (:func:`ops.decode.summarize`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from infra.resources import MessageKind
from ops.decode import rejection, summarize
from ops.queues import SQS_BATCH, receive, release

# Long enough to finish one peek, short enough that a crashed operator's
# session leaves messages hidden only briefly.
PEEK_VISIBILITY_SECONDS = 30
BODY_PREVIEW_CHARS = 300


@dataclass
class PeekedMessage:
    """One DLQ message as the operator sees it."""

    message_id: str
    # Why the consumer gave up on it, when it said so (the intake handler does).
    rejected: dict[str, str] | None
    body: str
    body_bytes: int
    receive_count: int
    sent_at_ms: int | None
    attributes: dict[str, str]
    message_attributes: dict[str, Any]
    # The body decoded as what the queue carries (ops.decode), or why it is not.
    summary: dict[str, Any]

    def to_dict(self, full_body: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not full_body:
            data["body"] = abbreviate(self.body)
        return data


def abbreviate(text: str, limit: int = BODY_PREVIEW_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _to_peeked(message: dict[str, Any], carries: MessageKind | None) -> PeekedMessage:
    attributes = message.get("Attributes", {})
    message_attributes = message.get("MessageAttributes", {})
    sent = attributes.get("SentTimestamp")
    return PeekedMessage(
        message_id=message["MessageId"],
        rejected=rejection(message_attributes),
        body=message["Body"],
        body_bytes=len(message["Body"].encode()),
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        sent_at_ms=int(sent) if sent else None,
        attributes=attributes,
        message_attributes=message_attributes,
        summary=summarize(message["Body"], carries),
    )


def peek(
    sqs: Any,
    dlq_url: str,
    max_messages: int = SQS_BATCH,
    *,
    carries: MessageKind | None = None,
    visibility_timeout: int = PEEK_VISIBILITY_SECONDS,
    wait_seconds: int | None = None,
) -> list[PeekedMessage]:
    """Read up to ``max_messages`` messages from a DLQ without consuming them.

    Each body is decoded as ``carries``, what the queue carries (see
    :func:`ops.decode.summarize`).

    Each receive raises the messages' ``ApproximateReceiveCount`` by one; on
    a DLQ, which has no redrive policy of its own, that changes nothing but
    the number shown.

    Returns
    -------
    list[PeekedMessage]
        At most ``max_messages``, in the order SQS returned them.
    """
    seen: dict[str, PeekedMessage] = {}
    handles: list[str] = []
    try:
        while len(seen) < max_messages:
            batch = receive(
                sqs,
                dlq_url,
                min(SQS_BATCH, max_messages - len(seen)),
                visibility_timeout,
                wait_seconds,
            )
            if not batch:
                break
            for message in batch:
                handles.append(message["ReceiptHandle"])
                # A receive can repeat a message (at-least-once); show it once.
                seen.setdefault(message["MessageId"], _to_peeked(message, carries))
    finally:
        # Put everything back even on Ctrl-C or an error: a peek must not
        # hide messages from the alarm or the redrive for the timeout's length.
        release(sqs, dlq_url, handles)
    return list(seen.values())[:max_messages]
