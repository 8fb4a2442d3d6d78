"""The orders part of the ``make run`` demo, through the HTTP API as a client would.

Two products, then three orders: one the inventory confirms, one it rejects
for stock, and one confirmed and then cancelled, whose stock comes back. Each
step waits (bounded) for the event-driven outcome, so a finished demo shows
the intake API, the stream, the topic and the inventory consumer working.
"""

from __future__ import annotations

import functools
import json
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

DEMO_PRODUCTS = {
    "demo-widget": {"name": "Widget", "price": "12.50", "stock": 20},
    "demo-gadget": {"name": "Gadget", "price": "3.99", "stock": 5},
}
DEMO_CUSTOMER = "demo-customer"
DEMO_ORDERS = {
    # key: (lines, what the demo shows) — fixed keys make a rerun return the same orders
    "make-run-confirmed": ({"demo-widget": 2, "demo-gadget": 1}, "confirmed"),
    "make-run-rejected": ({"demo-gadget": 10}, "rejected for stock"),
    "make-run-cancelled": ({"demo-widget": 3}, "confirmed, then cancelled"),
}
STEP_TIMEOUT = 60.0


class DemoStopped(Exception):
    pass


def _request(base: str, method: str, path: str, body: Any = None, headers=None) -> Any:
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait(check: Callable[[], Any], should_stop: Callable[[], bool]) -> Any:
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        if should_stop():
            raise DemoStopped
        found = check()
        if found:
            return found
        time.sleep(0.3)
    return None


def _order_body(lines: dict[str, int]) -> dict[str, Any]:
    return {
        "customer_id": DEMO_CUSTOMER,
        "customer_email": f"{DEMO_CUSTOMER}@example.com",
        "items": [{"product_id": p, "quantity": q} for p, q in lines.items()],
    }


def run_orders_demo(
    cloud: Any, console: Console, should_stop: Callable[[], bool]
) -> dict[str, dict[str, Any]] | None:
    """Run the orders demo; returns the final orders by demo key (None if stopped or skipped).

    It is a client of the API, so without one (``up --no-api``) it only says
    so. A failed request ends the demo with a line, never the local cloud.
    """
    say = functools.partial(console.print, markup=False, highlight=False, soft_wrap=True)
    if not cloud.api_endpoint:
        say(
            "demo: orders skipped: the API is not served (--no-api); once "
            "`chalice local --stage local` serves it, place orders as docs/orders.md shows"
        )
        return None
    try:
        return _orders_demo(cloud, say, should_stop)
    except OSError as error:  # urllib's URLError and HTTPError are OSErrors
        say(f"demo: orders demo stopped: {error}", style="red")
        return None


def _orders_demo(
    cloud: Any, say: Callable[..., None], should_stop: Callable[[], bool]
) -> dict[str, dict[str, Any]] | None:
    base = cloud.api_endpoint
    try:
        for product_id, product in DEMO_PRODUCTS.items():
            _request(base, "PUT", f"/products/{product_id}", product)
        placed = {
            key: _request(base, "POST", "/orders", _order_body(lines), {"Idempotency-Key": key})
            for key, (lines, _) in DEMO_ORDERS.items()
        }

        def decided(order_id: str) -> dict[str, Any] | None:
            order = _request(base, "GET", f"/orders/{order_id}")
            return order if order["status"] != "PENDING" else None

        final = {
            key: _wait(lambda o=o: decided(o["order_id"]), should_stop) or o
            for key, o in placed.items()
        }
        cancel = final["make-run-cancelled"]
        if cancel["status"] == "CONFIRMED":
            final["make-run-cancelled"] = _request(
                base, "PATCH", f"/orders/{cancel['order_id']}", {"status": "CANCELLED"}
            )

            def released() -> bool:
                widget = _request(base, "GET", "/products/demo-widget")
                return widget["reserved"] == 2  # only the confirmed order's units

            _wait(released, should_stop)
    except DemoStopped:
        return None
    for key, (_, meaning) in DEMO_ORDERS.items():
        order = final[key]
        reason = f" ({order['reason']})" if order.get("reason") else ""
        say(f"demo: order {order['order_id'][:12]} {order['status']}{reason}: {meaning}")
    for product_id in DEMO_PRODUCTS:
        product = _request(base, "GET", f"/products/{product_id}")
        say(f"demo: {product_id} stock {product['stock']}, reserved {product['reserved']}")
    # -- notifications: one email per event of the demo's orders ----------------
    mails = _demo_mails(cloud, final, should_stop)
    if mails is None:
        return None
    say(f"demo: {len(mails)} emails in the outbox for {DEMO_CUSTOMER}@example.com:")
    for mail in mails:
        say(f"demo:   {mail['Subject']}")
    # -- analytics: the day's counters, once the demo's events are counted -----
    day = datetime.now(UTC).date().isoformat()

    def counted() -> dict[str, Any] | None:
        # At least the demo's own: three created, each decided, one cancelled.
        found = _request(base, "GET", f"/analytics/daily/{day}")
        decided = found["orders_confirmed"] + found["orders_rejected"]
        enough = found["orders_created"] >= 3 and decided >= 3 and found["orders_cancelled"] >= 1
        return found if enough else None

    try:
        counters = _wait(counted, should_stop) or _request(base, "GET", f"/analytics/daily/{day}")
    except DemoStopped:
        return None
    say(
        f"demo: analytics {day}: {counters['orders_created']} created, "
        f"{counters['orders_confirmed']} confirmed, {counters['orders_rejected']} rejected, "
        f"{counters['orders_cancelled']} cancelled, revenue {counters['revenue']}"
    )
    say("try:", style="bold")
    say(f"  curl {base}/customers/{DEMO_CUSTOMER}/orders")
    say(f"  curl {base}/analytics/daily/{day}")
    say(f"  curl {base}/products/demo-widget")
    say(f"  python -m ops mail --email {DEMO_CUSTOMER}@example.com --full")
    return final


def _demo_mails(
    cloud: Any, final: dict[str, dict[str, Any]], should_stop: Callable[[], bool]
) -> list[dict[str, Any]] | None:
    """The outbox's emails about the demo's orders, once there is one per event
    (an order's version counts its events), or what arrived by the step's timeout."""
    from ops import mail

    ids = [order["order_id"] for order in final.values()]
    expected = sum(int(order["version"]) for order in final.values())

    def about_demo_orders() -> list[dict[str, Any]]:
        found = mail.fetch(cloud.aws_endpoint, f"{DEMO_CUSTOMER}@example.com")
        return [m for m in found if any(i in m["Subject"] for i in ids)]

    try:
        _wait(lambda: len(about_demo_orders()) >= expected, should_stop)
    except DemoStopped:
        return None
    return about_demo_orders()
