"""``dlq redrive``'s logic: move a dead-letter queue's messages back to their source queue.

Everything here takes a boto3 SQS client and queue URLs, so it runs unchanged
against the local cloud, a real account, or moto in the tests; the argparse
glue lives in :mod:`ops.dlq`, resolving a QUEUE argument in :mod:`ops.queues`
and looking without consuming in :mod:`ops.peek`.

Why receive, send and delete rather than ``StartMessageMoveTask``: the local
cloud (moto) does not implement the move task, and the operator's tool must
behave the same in both places. Doing it by hand also lets the redrive report,
message by message, what moved and what did not.

:func:`redrive` never loses a message. A DLQ message is deleted only after
SQS has confirmed that its copy reached the source queue; a message whose
send failed stays in the DLQ (made visible again at the end of the run) and
is reported. The reverse failure, sent but not deleted, leaves a duplicate
that a later redrive moves again; eventflow's consumers are idempotent
(deterministic ingest job ids, chunk markers, idempotent puts), so a
duplicate costs a no-op, never a double count.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.config import REDRIVE_ATTRIBUTE
from ops.queues import SQS_BATCH, depth, receive, release

# The message attribute that names the redrive run which moved a message back.
RUN_ATTRIBUTE = "eventflow-redrive-run"
# SQS allows at most this many message attributes.
MAX_MESSAGE_ATTRIBUTES = 10
# Long enough to finish one batch's send-and-delete, short enough that a
# crashed operator's session leaves messages hidden only briefly.
REDRIVE_VISIBILITY_SECONDS = 60
MAX_EMPTY_RECEIVES = 2
# SendMessageBatch caps the whole request's payload. 256 KiB is the historical
# limit (and still the default queue maximum); a message larger than that is
# sent in a batch of its own.
MAX_BATCH_BYTES = 256 * 1024


# -- redrive -----------------------------------------------------------------------


@dataclass
class FailedMessage:
    message_id: str
    code: str
    reason: str
    sender_fault: bool


@dataclass
class RedriveResult:
    """What one redrive did; ``failed`` messages are still in the DLQ."""

    # Messages SQS accepted on the source queue (including any in not_deleted).
    moved: int = 0
    failed: list[FailedMessage] = field(default_factory=list)
    # Sent to the source queue but still in the DLQ (the delete failed): a
    # later redrive sends them again, which the consumers absorb as no-ops.
    not_deleted: list[str] = field(default_factory=list)
    receives: int = 0
    # Set when a whole SendMessageBatch call was refused: the run stops there
    # rather than push every remaining message into the same refusal.
    aborted: str | None = None
    # The run's id, on every copy it sent (RUN_ATTRIBUTE).
    run: str = ""
    # What the DLQ held when the run started: the most it moves.
    held_at_start: int = 0
    # Messages this run moved that failed again and were back in the DLQ
    # before it ended; they are left there, not moved a second time.
    returned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_deleted and self.aborted is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def send_entry(
    message: dict[str, Any], entry_id: str, fifo: bool, dlq_name: str = "", run: str = ""
) -> dict[str, Any]:
    """The SendMessageBatch entry that recreates ``message`` on the source queue.

    The body and the message attributes are copied as they are, and the copy is
    marked with :data:`~chalicelib.config.REDRIVE_ATTRIBUTE` (the DLQ's name):
    the consumer then knows the message may have been partly processed long
    ago, and the writer does not overwrite readings edited since. It is also
    marked with :data:`RUN_ATTRIBUTE` (the redrive's ``run`` id), which SQS's
    move to the DLQ and the intake handler's both keep: a copy that fails
    again during the same run is recognised and left in the DLQ. On a FIFO
    target the group id is kept, so the message rejoins its group's order,
    and so is the deduplication id. (SQS deduplicates ids it saw in the last
    five minutes, so a message redriven within five minutes of its original
    send would be dropped as a duplicate; a message that reached a DLQ after
    ``maxReceiveCount`` visibility timeouts is normally older than that.)
    """
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
    attributes = {
        name: _attribute_value(value)
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    if dlq_name and len(attributes) < MAX_MESSAGE_ATTRIBUTES:
        attributes.setdefault(REDRIVE_ATTRIBUTE, {"DataType": "String", "StringValue": dlq_name})
    if run and (RUN_ATTRIBUTE in attributes or len(attributes) < MAX_MESSAGE_ATTRIBUTES):
        attributes[RUN_ATTRIBUTE] = {"DataType": "String", "StringValue": run}
    if attributes:
        entry["MessageAttributes"] = attributes
    system = message.get("Attributes", {})
    if system.get("AWSTraceHeader"):
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": system["AWSTraceHeader"]}
        }
    if fifo:
        for name in ("MessageGroupId", "MessageDeduplicationId"):
            if system.get(name):
                entry[name] = system[name]
    return entry


def _attribute_value(value: dict[str, Any]) -> dict[str, Any]:
    # Receive also returns the reserved, always-empty list fields, which a
    # send must not carry; keep exactly the fields that define the value.
    return {k: value[k] for k in ("DataType", "StringValue", "BinaryValue") if k in value}


def _entry_bytes(entry: dict[str, Any]) -> int:
    size = len(entry["MessageBody"].encode())
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(value["DataType"].encode())
        size += len(value.get("StringValue", "").encode()) + len(value.get("BinaryValue", b""))
    return size


def _split_by_size(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = _entry_bytes(entry)
        if current and size + entry_size > MAX_BATCH_BYTES:
            batches.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        batches.append(current)
    return batches


def redrive(
    sqs: Any,
    dlq_url: str,
    target_url: str,
    max_messages: int,
    *,
    fifo: bool | None = None,
    sender: Any = None,
    visibility_timeout: int = REDRIVE_VISIBILITY_SECONDS,
    wait_seconds: int | None = None,
    max_empty_receives: int = MAX_EMPTY_RECEIVES,
    run: str | None = None,
) -> RedriveResult:
    """Move up to ``max_messages`` messages from a DLQ to ``target_url``.

    Batched: receive up to 10, send them with SendMessageBatch (split further
    only to respect the request size limit), then delete from the DLQ exactly
    the entries the send reported successful. Bounded: stops at
    ``max_messages`` messages handled (moved or failed) or at as many as the
    DLQ held when the run started, whichever is fewer, after
    ``max_empty_receives`` empty receives in a row, or when a whole send is
    refused.

    A message is moved at most once per run. A poison message fails again
    on the source queue and may be back in the DLQ while the run goes on;
    the run recognises its copies (:data:`RUN_ATTRIBUTE`) and leaves them in
    the DLQ, reported as ``returned``, instead of moving them round again.

    Failed messages are not retried within the run: they stay hidden (for
    ``visibility_timeout``, which outlasts a run of ordinary size), so the
    loop does not receive them again, and are made visible again when it
    ends, for the next look. Were a very long run to outlast the timeout, a
    failed message could be tried once more; the ``max_messages`` bound holds.

    Parameters
    ----------
    sqs
        Client used to receive from and delete in the DLQ.
    fifo
        Whether the target is a FIFO queue (copies group and deduplication
        ids); guessed from the URL's ``.fifo`` suffix when None.
    sender
        Client used for SendMessageBatch; ``sqs`` when None. A separate client
        lets a test inject a send failure without touching the receives.
    run
        The run's id; a new random one when None.

    Returns
    -------
    RedriveResult
        Counts and the messages that did not move, with SQS's reasons.
    """
    sender = sender or sqs
    fifo = target_url.endswith(".fifo") if fifo is None else fifo
    result = RedriveResult(run=run or uuid.uuid4().hex, held_at_start=depth(sqs, dlq_url))
    limit = min(max_messages, result.held_at_start)
    dlq_name = dlq_url.rstrip("/").rsplit("/", 1)[-1]
    seen: set[str] = set()  # DLQ message ids this run has had in hand
    held: list[str] = []  # receipt handles kept in the DLQ, released at the end
    empty = 0
    try:
        while result.moved + len(result.failed) < limit and result.aborted is None:
            want = min(SQS_BATCH, limit - result.moved - len(result.failed))
            received = receive(sqs, dlq_url, want, visibility_timeout, wait_seconds)
            result.receives += 1
            messages = []
            for message in received:
                if _moved_by(message) == result.run or message["MessageId"] in seen:
                    result.returned.append(message["MessageId"])
                    held.append(message["ReceiptHandle"])
                else:
                    seen.add(message["MessageId"])
                    messages.append(message)
            if not messages:
                empty += 1
                if empty >= max_empty_receives:
                    break
                continue
            empty = 0
            by_id = {str(i): m for i, m in enumerate(messages)}
            entries = [send_entry(m, i, fifo, dlq_name, result.run) for i, m in by_id.items()]
            for batch in _split_by_size(entries):
                # After a refused call the rest of the receive is not attempted:
                # it stays in the DLQ, like the refused batch itself.
                sent = [] if result.aborted else _send(sender, target_url, batch, by_id, result)
                _delete(sqs, dlq_url, [by_id[i] for i in sent], result)
                result.moved += len(sent)
                unsent = {e["Id"] for e in batch} - set(sent)
                held.extend(by_id[i]["ReceiptHandle"] for i in sorted(unsent))
    finally:
        release(sqs, dlq_url, held)
    return result


def _moved_by(message: dict[str, Any]) -> str | None:
    """The run id of the redrive that moved this message last, if any."""
    value = (message.get("MessageAttributes") or {}).get(RUN_ATTRIBUTE, {})
    return value.get("StringValue")


def _send(
    sender: Any,
    url: str,
    batch: list[dict[str, Any]],
    by_id: dict[str, dict[str, Any]],
    result: RedriveResult,
) -> list[str]:
    """Send one batch; returns the ids SQS accepted and records the rest as failed."""
    try:
        response = sender.send_message_batch(QueueUrl=url, Entries=batch)
    except ClientError as error:
        details = error.response.get("Error", {})
        code, reason = details.get("Code", "ClientError"), details.get("Message", str(error))
        for entry in batch:
            result.failed.append(
                FailedMessage(by_id[entry["Id"]]["MessageId"], code, reason, sender_fault=True)
            )
        result.aborted = f"{code}: {reason}"
        return []
    for failure in response.get("Failed", []):
        result.failed.append(
            FailedMessage(
                message_id=by_id[failure["Id"]]["MessageId"],
                code=failure.get("Code", ""),
                reason=failure.get("Message", ""),
                sender_fault=bool(failure.get("SenderFault")),
            )
        )
    return [ok["Id"] for ok in response.get("Successful", [])]


def _delete(sqs: Any, url: str, messages: list[dict[str, Any]], result: RedriveResult) -> None:
    if not messages:
        return
    response = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ],
    )
    result.not_deleted.extend(
        messages[int(f["Id"])]["MessageId"] for f in response.get("Failed", [])
    )
