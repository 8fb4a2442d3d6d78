"""The partner intake feed: FIFO messages that place and move orders.

Messages, one per SQS message, grouped by customer (``MessageGroupId``)::

    {"type": "order_created", "idempotency_key": "...", "data": {<the POST /orders body>}}
    {"type": "order_updated", "data": {"order_id": "...", "status": "CANCELLED"}}

Both run the same code as the API (:mod:`chalicelib.orders.service`), so an
intake order and an API order are indistinguishable and an idempotency key
works across both. ``order_created`` requires a key: SQS delivers at least
once, and the key is what makes a redelivery return the order it created.

A message that can never succeed (not JSON, nested too deep, an unknown type, invalid data, an
unknown product or order, a move the state machine forbids, a reused key) is a
:class:`RejectedMessage`: the handler moves it to the intake DLQ at once, with
the reason, instead of failing it ``maxReceiveCount`` times first, because in
a FIFO queue every retry would hold back the customer's later messages too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib import jsontext
from chalicelib.errors import EventflowError
from chalicelib.orders import service
from chalicelib.orders.api import IDEMPOTENCY_HEADER, idempotency_key
from chalicelib.orders.model import OrderId, OrderRequest, StatusChange
from chalicelib.orders.states import Actor
from chalicelib.validation import problems

ORDER_CREATED = "order_created"
ORDER_UPDATED = "order_updated"


class RejectedMessage(Exception):
    """An intake message that no retry can make succeed; ``reason`` says why."""

    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class _Update(StatusChange):
    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: OrderId


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    idempotency_key: str | None = None
    data: dict[str, Any]


def _reject_invalid(error: ValidationError, what: str) -> RejectedMessage:
    found = "; ".join(f"{p['field']}: {p['problem']}" for p in problems(error))
    return RejectedMessage("validation_failed", f"{what}: {found}")


def handle(body: str, services) -> dict[str, Any]:
    """Apply one intake message; returns the order it created or moved.

    Raises :class:`RejectedMessage` for a message that can never succeed;
    anything else (throttling, an outage) propagates, so the message is retried.
    """
    try:
        # Bounded nesting: a deep body is poison, not a RecursionError retried.
        raw = jsontext.loads(body)
    except jsontext.JsonTextError as error:
        raise RejectedMessage("malformed", f"message body {error.problem}") from None
    try:
        envelope = _Envelope.model_validate(raw)
    except ValidationError as error:
        raise _reject_invalid(error, "message") from None
    try:
        if envelope.type == ORDER_CREATED:
            return _created(envelope, services)
        if envelope.type == ORDER_UPDATED:
            return _updated(envelope, services)
    except EventflowError as error:
        if error.status < 500:
            raise RejectedMessage(error.code, error.message) from error
        raise
    raise RejectedMessage(
        "unknown_type", f"type must be {ORDER_CREATED} or {ORDER_UPDATED}, not {envelope.type!r}"
    )


def _created(envelope: _Envelope, services) -> dict[str, Any]:
    if envelope.idempotency_key is None:
        raise RejectedMessage("validation_failed", "order_created needs an idempotency_key")
    key = idempotency_key({IDEMPOTENCY_HEADER: envelope.idempotency_key})
    try:
        request = OrderRequest.model_validate(envelope.data)
    except ValidationError as error:
        raise _reject_invalid(error, "data") from None
    order, _ = service.place_order(request, key, services)
    return order


def _updated(envelope: _Envelope, services) -> dict[str, Any]:
    try:
        update = _Update.model_validate(envelope.data)
    except ValidationError as error:
        raise _reject_invalid(error, "data") from None
    return service.change_status(update.order_id, update.status, Actor.CLIENT, services)
