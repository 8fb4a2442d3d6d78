"""What a dead-lettered message says, decoded as what its queue carries.

Each declared queue carries one kind of message (:class:`infra.resources.MessageKind`),
so ``ops dlq peek`` reads a DLQ's messages as that kind and nothing else: an
order intake message is never tried as a readings chunk. A body that is not
what its queue carries gets the decoder's reason, which is itself the
diagnosis of a poison message. Where the kind is not known (a queue outside
the declaration), :func:`summarize` tries the readings kinds in turn.

The intake handler moves a message it can never apply to its DLQ with two
message attributes, :data:`REJECTION_ATTRIBUTES`: :func:`rejection` reads
them, and the peek shows them before anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib import jsontext
from chalicelib.errors import EventflowError
from chalicelib.orders.events import EventFormatError, parse_event
from chalicelib.orders.handlers import REJECTION_ATTRIBUTES
from chalicelib.readings.chunks import decode_chunk
from chalicelib.readings.jobs import ObjectRef
from chalicelib.readings.s3events import refs_from_records, refs_from_sqs_body
from infra.resources import MessageKind

Summary = dict[str, Any]


def rejection(message_attributes: dict[str, Any]) -> dict[str, str] | None:
    """The code and reason the intake handler gave when it dead-lettered the message."""
    code_name, reason_name = REJECTION_ATTRIBUTES
    if code_name not in message_attributes:
        return None
    reason = message_attributes.get(reason_name, {})
    return {
        "code": message_attributes[code_name].get("StringValue", ""),
        "reason": reason.get("StringValue", ""),
    }


def summarize(body: str, kind: MessageKind | None = None) -> Summary:
    """Decode ``body`` as a message of ``kind`` into what an operator needs to act on it.

    Returns a dict whose ``kind`` says what was found; ``unknown`` carries the
    decoder's ``problem``.
    """
    if kind is None:
        return _guess(body)
    return _DECODERS[kind](body)


def _guess(body: str) -> Summary:
    if failure_record(body) is not None:
        return _async_failure(body)
    chunk = _chunk(body)
    if chunk["kind"] != "unknown":
        return chunk
    notification = _s3_event(body)
    return chunk if notification["kind"] == "unknown" else notification


def _unknown(what: str, problem: str) -> Summary:
    return {"kind": "unknown", "problem": f"not {what}: {problem}"}


def json_object(body: str) -> dict[str, Any]:
    """``body``'s JSON object; ValueError, naming the problem, for any other body."""
    try:
        # Bounded like the handlers' own parsing: a poison message nested
        # thousands deep is shown as such, not a RecursionError of the CLI.
        data = jsontext.loads(body)
    except jsontext.JsonTextError as error:
        raise ValueError(f"the body is not JSON we read (it {error.problem})") from None
    if not isinstance(data, dict):
        raise ValueError("the body is not a JSON object")
    return data


def _chunk(body: str) -> Summary:
    try:
        chunk = decode_chunk(body)
    except EventflowError as error:
        return _unknown("a readings chunk", error.message)
    return {
        "kind": "chunk",
        "ingest_id": chunk.ingest_id,
        "run": chunk.run,
        "seq": chunk.seq,
        "rows": len(chunk.rows),
    }


def _s3_event(body: str) -> Summary:
    try:
        refs = refs_from_sqs_body(body)
    except EventflowError as error:
        return _unknown("an S3 notification", error.message)
    if not refs and _is_s3_test_event(body):
        return {"kind": "s3-test-event"}
    return {"kind": "s3-notification", "objects": _objects(refs)}


def _is_s3_test_event(body: str) -> bool:
    try:
        return json_object(body).get("Event") == "s3:TestEvent"
    except ValueError:
        return False


def _objects(refs: list[ObjectRef]) -> list[dict[str, Any]]:
    return [
        {"bucket": r.bucket, "key": r.key, "version": r.version, "ingest_id": r.ingest_id}
        for r in refs
    ]


def _intake(body: str) -> Summary:
    # The envelope only: whether the order itself can be applied (products,
    # states, keys) is the handler's question, and a rejection says its answer.
    try:
        message = json_object(body)
        kind, data = message.get("type"), message.get("data")
        if not isinstance(kind, str) or not isinstance(data, dict):
            raise ValueError('it needs a "type" string and a "data" object')
    except ValueError as error:
        return _unknown("an order intake message", str(error))
    items = data.get("items")
    return {
        "kind": "intake",
        "type": kind,
        "idempotency_key": message.get("idempotency_key"),
        "customer_id": data.get("customer_id"),
        "order_id": data.get("order_id"),
        "status": data.get("status"),
        "items": len(items) if isinstance(items, list) else None,
    }


def _order_event(body: str) -> Summary:
    try:
        event = parse_event(body)
    except EventFormatError as error:
        return _unknown("an order event", str(error))
    return {
        "kind": "order-event",
        "event_type": event.event_type,
        "event_id": event.event_id,
        "order_id": event.order_id,
        "version": event.version,
        "old_status": event.old_status,
        "new_status": event.new_status,
    }


def _stream_failure(body: str) -> Summary:
    try:
        record = json_object(body)
        info, context = record.get("DDBStreamBatchInfo"), record.get("requestContext")
        if not isinstance(info, dict) or not isinstance(context, dict):
            raise ValueError("it has no DDBStreamBatchInfo and requestContext")
    except ValueError as error:
        return _unknown("a stream batch's on-failure record", str(error))
    return {
        "kind": "stream-failure",
        "function": _function_name(context),
        "condition": context.get("condition"),
        "attempts": context.get("approximateInvokeCount"),
        "shard": info.get("shardId"),
        "first_sequence": info.get("startSequenceNumber"),
        "last_sequence": info.get("endSequenceNumber"),
        "records": info.get("batchSize"),
    }


def failure_record(body: str) -> dict[str, Any] | None:
    """Lambda's on-failure record of an asynchronous invocation, or None for anything else."""
    try:
        record = json_object(body)
    except ValueError:
        return None
    if not {"requestContext", "requestPayload"} <= set(record):
        return None
    return record


def failure_refs(record: dict[str, Any]) -> list[ObjectRef]:
    """The uploads that a failure record's S3 event names."""
    payload = record.get("requestPayload")
    records = payload.get("Records") if isinstance(payload, dict) else None
    try:
        return refs_from_records(records or [])
    except (KeyError, TypeError):
        return []


def _async_failure(body: str) -> Summary:
    record = failure_record(body)
    if record is None:
        return _unknown("an asynchronous invocation's on-failure record", "no requestPayload")
    context, response = record["requestContext"], record.get("responsePayload") or {}
    return {
        "kind": "async-failure",
        "function": _function_name(context),
        "condition": context.get("condition"),
        "attempts": context.get("approximateInvokeCount"),
        "error": f"{response.get('errorType', '')}: {response.get('errorMessage', '')}",
        "objects": _objects(failure_refs(record)),
    }


def _function_name(context: dict[str, Any]) -> str:
    return str(context.get("functionArn", "")).split(":function:")[-1]


_DECODERS: dict[MessageKind, Callable[[str], Summary]] = {
    MessageKind.READINGS_CHUNK: _chunk,
    MessageKind.S3_EVENT: _s3_event,
    MessageKind.ORDER_INTAKE: _intake,
    MessageKind.ORDER_EVENT: _order_event,
    MessageKind.STREAM_BATCH_FAILURE: _stream_failure,
    MessageKind.ASYNC_INVOKE_FAILURE: _async_failure,
}
