"""Placing orders and moving them through their states: what the API and the
partner intake both call, so an order is the same whichever way it came.

Placing an order:

1. with an idempotency key, a live key record answers at once: the same
   request gets the order it created, another request gets 422
   ``idempotency_key_reused``;
2. prices come from the products table (never from the client); an unknown
   product is a 422 naming it;
3. the order and the key's record are written in one transaction. When a
   concurrent request with the same key wins that race, this one answers
   with the winner's order, exactly as a later retry would.

Moving an order reads it, checks the move against the state machine and the
client's ``If-Match``, and writes conditionally on what it read; a write that
lost a race is decided again from a fresh read, a bounded number of times.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import Backoff
from chalicelib.dynamo import cancellation_codes, is_condition_failure
from chalicelib.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from chalicelib.observability import count, logger
from chalicelib.orders import states
from chalicelib.orders.model import OrderRequest
from chalicelib.orders.money import format_money
from chalicelib.orders.states import Actor, Status
from chalicelib.orders.store import KeyTaken, StaleOrder

# How often a write that lost a race is decided again before giving up (409).
MAX_DECISIONS = 5


def request_hash(request: OrderRequest) -> str:
    canonical = json.dumps(request.fingerprint(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_order_id() -> str:
    return uuid.uuid4().hex


def price_order(
    request: OrderRequest, prices: dict[str, Decimal], order_id: str, now: str
) -> dict[str, Any]:
    """The order a request makes at ``prices``; raises 422 naming every unknown product."""
    unknown = [line.product_id for line in request.items if line.product_id not in prices]
    if unknown:
        raise ValidationFailed(
            f"unknown product(s): {', '.join(unknown)}",
            [
                {"field": f"items.{i}.product_id", "problem": f"no product {line.product_id}"}
                for i, line in enumerate(request.items)
                if line.product_id in unknown
            ],
        )
    items = []
    total = Decimal(0)
    for line in request.items:
        unit_price = prices[line.product_id]
        line_total = unit_price * line.quantity
        total += line_total
        items.append(
            {
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price": format_money(unit_price),
                "line_total": format_money(line_total),
            }
        )
    return {
        "order_id": order_id,
        "customer_id": request.customer_id,
        "customer_email": request.customer_email,
        "items": items,
        "total": format_money(total),
        "status": str(Status.PENDING),
        "version": 1,
        "reason": None,
        "created_at": now,
        "updated_at": now,
    }


def _replayed(services, record: dict[str, Any], wanted_hash: str, key: str) -> dict[str, Any]:
    """The order an idempotency key already created, if the request is the same one."""
    if record["request_hash"] != wanted_hash:
        raise ValidationFailed(
            "this Idempotency-Key was used with a different request",
            [{"field": "Idempotency-Key", "problem": "was used with a different request body"}],
            code="idempotency_key_reused",
        )
    order = services.orders.get(record["order_id"])
    if order is None:  # The record and the order are written together.
        raise RuntimeError(f"idempotency key {key} names missing order {record['order_id']}")
    return order


def place_order(
    request: OrderRequest, idempotency_key: str | None, services
) -> tuple[dict[str, Any], bool]:
    """Place an order; returns ``(order, created)``, ``created`` False for a replay."""
    wanted = request_hash(request)
    if idempotency_key is not None:
        record = services.orders.key_record(idempotency_key)
        if record is not None:
            return _replayed(services, record, wanted, idempotency_key), False
    backoff = Backoff(services.clock)
    prices = services.products.prices([line.product_id for line in request.items], backoff)
    order = price_order(request, prices, new_order_id(), services.clock.iso_now())
    for attempt in range(1, backoff.attempts + 1):
        try:
            services.orders.create(order, idempotency_key, wanted)
        except KeyTaken:
            record = services.orders.key_record(idempotency_key or "")
            if record is None:  # Taken by a record that expired just now: try again.
                continue
            return _replayed(services, record, wanted, idempotency_key or ""), False
        except ClientError as error:
            if "TransactionConflict" in cancellation_codes(error) and attempt < backoff.attempts:
                backoff.wait(attempt)
                continue
            if is_condition_failure(error) and services.orders.get(order["order_id"]):
                # A retried PutItem whose first attempt landed: this order, already there.
                break
            raise
        break
    else:
        raise Conflict("the order could not be written; try again", code="concurrent_update")
    count("OrdersPlaced", 1)
    logger.info("order placed", extra={"order_id": order["order_id"], "total": order["total"]})
    return order, True


def change_status(
    order_id: str,
    target: Status,
    actor: Actor,
    services,
    *,
    expected_version: int | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Move an order to ``target``; a repeated move to the status it has is a no-op.

    The checks run in the order HTTP gives them (RFC 9110, 13.2.1): what is
    wrong with the request whatever the order's state (no such order, a status
    this actor may never ask for) comes before the ``If-Match`` precondition,
    and the precondition before anything decided from the order's state, the
    no-op included. So a client asking for CONFIRMED is refused even when the
    order is CONFIRMED, and a stale ``If-Match`` is refused even when the
    order already has ``target``.

    Raises NotFound, InvalidTransition (409), PreconditionFailed
    (``expected_version`` is not current), or Conflict when the order kept
    changing under it.
    """
    for _ in range(MAX_DECISIONS):
        order = services.orders.get(order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        current = Status(order["status"])
        states.check_actor(current, target, actor)
        if expected_version is not None and order["version"] != expected_version:
            error = PreconditionFailed(
                f"order {order_id} is at version {order['version']}, not {expected_version}",
                [{"field": "If-Match", "problem": f"the current version is {order['version']}"}],
            )
            error.extra = {"current_version": order["version"]}
            raise error
        if current is target:
            return order
        states.check(current, target, actor)
        try:
            return services.orders.set_status(
                order_id,
                expected_status=str(current),
                expected_version=order["version"],
                status=str(target),
                reason=reason,
            )
        except StaleOrder:
            continue
    raise Conflict(f"order {order_id} kept changing; try again", code="concurrent_update")
