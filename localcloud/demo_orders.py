"""The orders part of the ``make run`` demo: two products and an order, through the HTTP API.

It goes through the same path a client's requests take (Chalice's local
server, the app's routes), then waits for the order's ``ORDER_CREATED`` event
to leave the stream handler, as the status view counts it.
"""

from __future__ import annotations

import functools
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from rich.console import Console

from ops.status import app_metrics_snapshot

DEMO_PRODUCTS = {
    "demo-widget": {"name": "Widget", "price": "12.50", "stock": 20},
    "demo-gadget": {"name": "Gadget", "price": "3.99", "stock": 5},
}
DEMO_ORDER = {
    "customer_id": "demo-customer",
    "customer_email": "demo-customer@example.com",
    "items": [
        {"product_id": "demo-widget", "quantity": 2},
        {"product_id": "demo-gadget", "quantity": 1},
    ],
}
EVENT_TIMEOUT = 60.0


def _request(base: str, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def run_orders_demo(
    cloud: Any, console: Console, should_stop: Callable[[], bool]
) -> dict[str, Any] | None:
    """Create the demo products, place an order; returns the order (None if stopped)."""
    say = functools.partial(console.print, markup=False, highlight=False, soft_wrap=True)
    base = cloud.api_endpoint
    for product_id, product in DEMO_PRODUCTS.items():
        _request(base, "PUT", f"/products/{product_id}", product, {})
    # A fixed key: running the demo again against the same cloud returns the same order.
    order = _request(base, "POST", "/orders", DEMO_ORDER, {"Idempotency-Key": "make-run-demo"})
    say(f"demo: order {order['order_id']} {order['status']}, total {order['total']}")
    deadline = time.monotonic() + EVENT_TIMEOUT
    while not should_stop() and time.monotonic() < deadline:
        sums = app_metrics_snapshot(cloud.clients("cloudwatch"), cloud.stack).get("sums", {})
        if sums.get("OrderEventsPublished"):
            say(f"demo: ORDER_CREATED published to {cloud.stack.settings.order_events_topic}")
            break
        time.sleep(0.5)
    else:
        if not should_stop():
            say("demo: no order event published yet; see the status view", style="red")
    if should_stop():
        return None
    say("try:", style="bold")
    say(f"  curl {base}/orders/{order['order_id']}")
    say(f"  curl {base}/customers/{DEMO_ORDER['customer_id']}/orders")
    return order
