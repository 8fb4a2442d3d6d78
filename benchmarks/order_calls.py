"""AWS API calls per order over its whole life, on a running local cloud.

``python -m benchmarks.order_calls [ORDERS]`` starts a local cloud (moto's
server, the event-source runtime running every handler ``app.py`` registers,
the REST API) and drives orders through it over HTTP, as a client would:

* shipped: ``POST /orders`` with an ``Idempotency-Key``, then ``PATCH`` to
  SHIPPED and to DELIVERED once the inventory has confirmed it;
* cancelled: ``POST /orders``, then ``PATCH`` to CANCELLED once confirmed.

Between steps it waits until the runtime is idle, so every consumer (the
stream handler, inventory, and whatever else ``app.py`` registers by then)
has done its part. Every call the functions and the API make goes through one
counted boto3 session; a call is attributed to the function whose invocation
thread made it (the runtime names them ``localcloud-<function>-...``), else to
the API. One warm-up order of each kind runs first, uncounted, so one-off
cold-start calls (STS GetCallerIdentity, queue lookups) are not charged to
every order.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

import boto3

from benchmarks.billing import esm_sqs_units
from benchmarks.calls import CallCounter, offline_env
from chalicelib.aws import Clients, local_defaults
from chalicelib.config import Settings
from chalicelib.services import Services

PRODUCTS = (("widget", "12.50", 10_000), ("gadget", "3.99", 10_000))
INVOCATION_THREAD = "localcloud-"
SQS_BATCH = 10


def caller() -> str:
    """The function whose invocation runs on this thread, else the API."""
    name = threading.current_thread().name
    if name.startswith(INVOCATION_THREAD):
        return name[len(INVOCATION_THREAD) :].rsplit("-", 1)[0]
    return "api_handler"


class Api:
    """The local cloud's REST API over HTTP; counts the requests it makes."""

    def __init__(self, port: int):
        self.port = port
        self.requests = 0

    def call(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            raw = None if body is None else json.dumps(body).encode()
            sent = {"Content-Type": "application/json", **(headers or {})} if raw else {}
            connection.request(method, path, body=raw, headers=sent)
            response = connection.getresponse()
            payload = response.read()
            self.requests += 1
            return response.status, (json.loads(payload) if payload else None)
        finally:
            connection.close()


class OrderDriver:
    def __init__(self, cloud: Any, api: Api, reader: Services):
        self.cloud = cloud
        self.api = api
        self.reader = reader  # uncounted: the benchmark's own reads are no order's calls

    def settle(self) -> None:
        if not self.cloud.runtime.wait_until_idle(timeout=120):
            raise RuntimeError("the local cloud did not go idle within 120 s")

    def wait_status(self, order_id: str, wanted: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            order = self.reader.orders.get(order_id)
            if order and order["status"] == wanted:
                return
            time.sleep(0.1)
        raise RuntimeError(f"order {order_id} did not reach {wanted} within {timeout}s")

    def place(self, customer: str) -> str:
        body = {
            "customer_id": customer,
            "customer_email": f"{customer}@example.com",
            "items": [
                {"product_id": "widget", "quantity": 2},
                {"product_id": "gadget", "quantity": 1},
            ],
        }
        key = {"Idempotency-Key": uuid.uuid4().hex}
        status, order = self.api.call("POST", "/orders", body, key)
        if status != 201:
            raise RuntimeError(f"POST /orders answered {status}: {order}")
        self.settle()
        self.wait_status(order["order_id"], "CONFIRMED")
        return order["order_id"]

    def move(self, order_id: str, status: str) -> None:
        code, body = self.api.call("PATCH", f"/orders/{order_id}", {"status": status})
        if code != 200:
            raise RuntimeError(f"PATCH {status} answered {code}: {body}")
        self.settle()

    def shipped_life(self, customer: str) -> None:
        order_id = self.place(customer)
        self.move(order_id, "SHIPPED")
        self.move(order_id, "DELIVERED")

    def cancelled_life(self, customer: str) -> None:
        order_id = self.place(customer)
        self.move(order_id, "CANCELLED")


def _invocations(before: dict, after: dict) -> dict[str, int]:
    counts = {
        name: after[name]["invocations"] - before.get(name, {}).get("invocations", 0)
        for name in after
    }
    return {name: n for name, n in sorted(counts.items()) if n}


def _esm_model(invocations: dict[str, int], sqs_functions: dict[str, bool]) -> Counter[str]:
    """Lambda's poller per SQS-triggered invocation: one receive and one delete
    (order events are a few hundred bytes: one 64 KiB chunk). Stream reads by
    Lambda are free."""
    esm: Counter[str] = Counter()
    for function, count in invocations.items():
        if function in sqs_functions:
            esm.update(
                {k: v * count for k, v in esm_sqs_units([{}], sqs_functions[function]).items()}
            )
    return esm


def _per_order(counter: Counter[str], orders: int) -> dict[str, float]:
    return {k: round(v / orders, 2) for k, v in sorted(counter.items())}


def measure(orders: int = 2) -> dict[str, Any]:
    """Calls per order for ``orders`` shipped and ``orders`` cancelled orders."""
    from localcloud.cloud import LocalCloud

    offline_env()
    with LocalCloud(aws_port=0, api_port=0) as cloud:
        app_module = sys.modules["app"]
        settings = Settings.from_env()
        session = boto3.session.Session()
        counter = CallCounter(session, attribute=caller)
        counted = Services(
            settings, clients=Clients(session=session, defaults=local_defaults(settings.stage))
        )
        # Every handler and route asks app.services() for its clients (as the tests do).
        app_module.services = lambda: counted
        api = Api(cloud.api_port)
        driver = OrderDriver(cloud, api, Services(settings, clients=cloud.clients))
        for product_id, price, stock in PRODUCTS:
            body = {"name": product_id.title(), "price": price, "stock": stock}
            api.call("PUT", f"/products/{product_id}", body)
        driver.shipped_life("bench-warm-1")
        driver.cancelled_life("bench-warm-2")
        sqs_functions = {
            source.name: (source.queue or source.queue_arn or "").endswith(".fifo")
            for source in cloud.app.event_sources
            if type(source).__name__ == "SQSEventConfig"
        }
        results: dict[str, Any] = {}
        for kind, life in (("shipped", driver.shipped_life), ("cancelled", driver.cancelled_life)):
            counter.clear()
            api.requests = 0
            before = cloud.runtime.stats()
            for n in range(orders):
                life(f"bench-{kind}-{n}")
            invocations = _invocations(before, cloud.runtime.stats())
            invocations["api_handler"] = api.requests
            total = sum(counter.calls.values())
            results[kind] = {
                "orders": orders,
                "calls_per_order": _per_order(counter.calls, orders),
                "total_per_order": round(total / orders, 2),
                "by_function_per_order": {
                    who: _per_order(calls, orders)
                    for who, calls in sorted(counter.by_caller.items())
                },
                "billed_per_order": _per_order(counter.billed, orders),
                "esm_billed_per_order": _per_order(_esm_model(invocations, sqs_functions), orders),
                "invocations_per_order": _per_order(Counter(invocations), orders),
                "api_requests_per_order": round(api.requests / orders, 2),
            }
        results["event_handlers"] = sorted(s.name for s in cloud.app.event_sources)
    return results


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    print(json.dumps(measure(int(args[0]) if args else 2), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
