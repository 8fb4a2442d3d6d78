"""The inventory consumer: reserve, release and consume stock, each exactly once.

Every effect is one ``TransactWriteItems`` that holds the processed-event
marker (:mod:`chalicelib.orders.markers`), the order's conditional update and
one conditional update per product, so it happens completely or not at all,
and once however often SQS delivers the event:

* ``ORDER_CREATED``: every line ``stock >= quantity`` → ``stock -= quantity``,
  ``reserved += quantity``; the order PENDING → CONFIRMED (conditioned on its
  status and version), with what was reserved recorded on it
  (``reservation``, ``reservation_state = HELD``). When any line is short,
  nothing is reserved: the order becomes REJECTED with a ``reason`` naming
  each short product.
* ``ORDER_CANCELLED``: an order that holds a reservation gives back exactly
  what it recorded (``reserved -= q``, ``stock += q``; ``HELD`` → ``RELEASED``).
  The quantities come from the order, never from the event.
* SHIPPED: the reservation is consumed (``reserved -= q``; ``HELD`` →
  ``CONSUMED``).

Stock can never go negative nor ``reserved`` below zero: those are the
updates' conditions. A transaction cancelled by a condition that a concurrent
change broke (the order was cancelled meanwhile, stock was restocked) is
decided again from a fresh read; a conflict or throttle is retried with
backoff. Only a marker that already exists ends the work: the event was applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import metric_names
from chalicelib.clock import Backoff
from chalicelib.dynamo import cancellation_codes, from_item, to_item
from chalicelib.observability import count, logger
from chalicelib.orders import keys, markers, states
from chalicelib.orders.events import OrderEvent
from chalicelib.orders.keys import PRODUCT_PK
from chalicelib.orders.states import Actor, Status

CONSUMER = keys.INVENTORY_CONSUMER
HELD, RELEASED, CONSUMED = "HELD", "RELEASED", "CONSUMED"
# Decisions per event before the message is failed and retried later.
MAX_DECISIONS = 8


class InventoryBusy(RuntimeError):
    """The order or its products kept changing; SQS will deliver the event again."""


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int


def _lines(raw: list[dict[str, Any]]) -> list[Line]:
    return [Line(line["product_id"], int(line["quantity"])) for line in raw]


def apply(event: OrderEvent, services) -> str:
    """Apply one event; returns what happened (for logs and tests).

    ``reserved``, ``rejected``, ``released``, ``consumed``, ``nothing`` (the event
    needs no stock change) or ``duplicate`` (already applied).
    """
    handler = {
        Status.PENDING: _reserve,
        Status.CANCELLED: _release,
        Status.SHIPPED: _consume,
    }.get(Status(event.new_status))
    if handler is None:
        return "nothing"  # the subscription's filter keeps these away; harmless if not
    backoff = Backoff(services.clock)
    for attempt in range(1, MAX_DECISIONS + 1):
        order = services.orders.get_item(event.order_id)
        if order is None:
            logger.warning(
                "event for an order that does not exist", extra={"order_id": event.order_id}
            )
            return _mark_only(event, services) or "nothing"
        items, outcome = handler(event, order, services)
        if not items:
            return _mark_only(event, services) or outcome
        try:
            # The marker first, then the order, then the products.
            if not markers.commit_once(services.clients.dynamodb, _marker(event, services), items):
                return "duplicate"
        except ClientError as error:
            codes = cancellation_codes(error)
            if not codes:
                raise
            if markers.RETRYABLE & set(codes):
                backoff.wait(attempt)
            elif "ConditionalCheckFailed" not in codes:
                raise
            continue  # a condition a concurrent change broke: read again and decide again
        count(metric_names.inventory_outcome(outcome), 1)
        logger.info("inventory applied", extra={"order_id": event.order_id, "outcome": outcome})
        return outcome
    raise InventoryBusy(f"order {event.order_id} kept changing; will retry")


def _marker(event: OrderEvent, services) -> dict[str, Any]:
    return markers.event_marker(CONSUMER, event.event_id, services)


def _mark_only(event: OrderEvent, services) -> str | None:
    """Record the event as processed when it needs no effect; "duplicate" if it already was."""
    if markers.commit_once(services.clients.dynamodb, _marker(event, services), []):
        return None
    return "duplicate"


# -- the decisions: what to write, given the order as it is now ------------------


def _reserve(event: OrderEvent, order: dict[str, Any], services):
    if order["status"] != Status.PENDING:
        # Cancelled while pending (never reserve it now), or already decided.
        return [], "nothing"
    states.check(Status.PENDING, Status.CONFIRMED, Actor.SYSTEM)
    lines = _lines(order["items"])
    short = _short_lines(lines, services)
    store = services.orders
    if short:
        reason = "insufficient stock: " + ", ".join(short)
        update = store.status_update(
            order["order_id"],
            expected_status=str(Status.PENDING),
            expected_version=int(order["version"]),
            status=str(Status.REJECTED),
            reason=reason,
        )
        return [{"Update": update}], "rejected"
    update = store.status_update(
        order["order_id"],
        expected_status=str(Status.PENDING),
        expected_version=int(order["version"]),
        status=str(Status.CONFIRMED),
        also_set={
            "reservation": [
                {"product_id": line.product_id, "quantity": line.quantity} for line in lines
            ],
            "reservation_state": HELD,
        },
    )
    products = [_product_update(services, line, reserve=True) for line in lines]
    return [{"Update": update}, *products], "reserved"


def _release(event: OrderEvent, order: dict[str, Any], services):
    return _settle(order, services, RELEASED, give_back=True)


def _consume(event: OrderEvent, order: dict[str, Any], services):
    return _settle(order, services, CONSUMED, give_back=False)


def _settle(order: dict[str, Any], services, final: str, give_back: bool):
    """Release (cancelled) or consume (shipped) what the order holds, exactly as recorded."""
    if order.get("reservation_state") != HELD:
        return [], "nothing"  # nothing held: never reserved, or already settled
    lines = _lines(order["reservation"])
    update = {
        "TableName": services.settings.orders_table,
        "Key": to_item({"order_id": order["order_id"]}),
        "UpdateExpression": "SET reservation_state = :final",
        "ConditionExpression": "reservation_state = :held",
        "ExpressionAttributeValues": to_item({":final": final, ":held": HELD}),
    }
    products = [_product_settle(services, line, give_back) for line in lines]
    return [{"Update": update}, *products], final.lower()


def _product_update(services, line: Line, reserve: bool) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": services.settings.products_table,
            "Key": to_item({PRODUCT_PK: line.product_id}),
            "UpdateExpression": "SET stock = stock - :q, "
            "reserved = if_not_exists(reserved, :zero) + :q",
            "ConditionExpression": "attribute_exists(#id) AND stock >= :q",
            "ExpressionAttributeNames": {"#id": PRODUCT_PK},
            "ExpressionAttributeValues": to_item({":q": line.quantity, ":zero": 0}),
        }
    }


def _product_settle(services, line: Line, give_back: bool) -> dict[str, Any]:
    expression = "SET reserved = reserved - :q"
    if give_back:
        expression += ", stock = stock + :q"
    return {
        "Update": {
            "TableName": services.settings.products_table,
            "Key": to_item({PRODUCT_PK: line.product_id}),
            "UpdateExpression": expression,
            # reserved can never go below zero.
            "ConditionExpression": "reserved >= :q",
            "ExpressionAttributeValues": to_item({":q": line.quantity}),
        }
    }


def _short_lines(lines: list[Line], services) -> list[str]:
    """Each line the products table cannot cover now, described for the customer."""
    response = services.clients.dynamodb.batch_get_item(
        RequestItems={
            services.settings.products_table: {
                "Keys": [to_item({PRODUCT_PK: line.product_id}) for line in lines],
                "ConsistentRead": True,
            }
        }
    )
    stock: dict[str, Decimal] = {}
    for item in response.get("Responses", {}).get(services.settings.products_table, []):
        values = from_item(item)
        stock[values[PRODUCT_PK]] = values["stock"]
    if response.get("UnprocessedKeys"):
        raise InventoryBusy("products could not all be read; will retry")
    short = []
    for line in lines:
        available = stock.get(line.product_id)
        if available is None:
            short.append(f"{line.product_id} (no longer sold)")
        elif available < line.quantity:
            short.append(f"{line.product_id} (wanted {line.quantity}, {available} available)")
    return short
