"""The orders fan-out under concurrent clients, through the local cloud as ``make run`` runs it.

Eight client threads place orders over a few products with small stock, and
the races a busy shop has are all in the mix: two POSTs on one
Idempotency-Key, cancellations sent right after their POST (racing the
reservation), a cancel and a ship racing on one confirmed order, partner
``order_created`` messages delivered twice. Each of these is a lost race on
the orders table; before the local cloud's transactions were made all or
nothing, the first one stranded the stream poller and the rest of the orders
stayed PENDING for good.

Once the pipeline has settled, the test checks what a shop relies on, from
the orders' final states: stock accounted for, one mail per event, analytics
that match, empty DLQs and no 5xx. It asserts outcomes, never durations.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.orders.model import ORDER_ID
from localcloud.cloud import LocalCloud
from ops import mail
from tests.localcloud.http_api import call

CLIENTS = 8
STOCK = {"anvil": 20, "bolt": 24, "crank": 16, "dial": 20}
PRICES = {"anvil": "19.99", "bolt": "2.50", "crank": "7.25", "dial": "11.00"}
API_ORDERS = 90
RACING_KEYS = 5
INTAKE_ORDERS = 10
SETTLE_SECONDS = 120
EARNING = {"CONFIRMED", "SHIPPED", "DELIVERED"}


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    # moto in a process of its own, as make run starts it; the state is this test's alone.
    with LocalCloud(aws_port=0, api_port=0, moto_process=True) as running:
        yield running


class Shop:
    """The test's clients: every response is kept, so no 5xx can go unseen."""

    def __init__(self, cloud: LocalCloud):
        self.cloud = cloud
        self.lock = threading.Lock()
        self.statuses: list[tuple[str, str, int]] = []

    def call(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        status, payload = call(self.cloud.api_port, method, path, body, headers)
        with self.lock:
            self.statuses.append((method, path, status))
        return status, payload

    def order_body(self, customer: str, lines: dict[str, int]) -> dict[str, Any]:
        return {
            "customer_id": customer,
            "customer_email": f"{customer}@example.com",
            "items": [{"product_id": p, "quantity": q} for p, q in lines.items()],
        }

    def place(self, customer: str, lines: dict[str, int], key: str) -> dict[str, Any]:
        status, order = self.call(
            "POST", "/orders", self.order_body(customer, lines), {"Idempotency-Key": key}
        )
        assert status == 201, order
        return order

    def move(self, order_id: str, status: str) -> int:
        return self.call("PATCH", f"/orders/{order_id}", {"status": status})[0]

    def order(self, order_id: str) -> dict[str, Any]:
        status, order = self.call("GET", f"/orders/{order_id}")
        assert status == 200, order
        return order


def lines_for(n: int) -> dict[str, int]:
    """A deterministic mix of one- and two-line orders, 1 to 3 units a line."""
    names = sorted(STOCK)
    first = names[n % len(names)]
    lines = {first: 1 + n % 3}
    if n % 4 == 0:
        lines[names[(n + 1) % len(names)]] = 1
    return lines


def race(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions at once, released together by a barrier."""
    barrier = threading.Barrier(len(actions))

    def run(action: Callable[[], Any]) -> Any:
        barrier.wait()
        return action()

    with ThreadPoolExecutor(len(actions)) as pool:
        return list(pool.map(run, actions))


def send_intake_twice(cloud: LocalCloud, n: int) -> str:
    customer = f"partner-{n}"
    message = {
        "type": "order_created",
        "idempotency_key": f"partner-order-{n}",
        "data": {
            "customer_id": customer,
            "customer_email": f"{customer}@example.com",
            "items": [{"product_id": p, "quantity": q} for p, q in lines_for(n + 1).items()],
        },
    }
    for _ in range(2):  # a redelivery: same message, its own deduplication id
        cloud.clients.sqs.send_message(
            QueueUrl=cloud.outputs.queues["order-intake"]["url"],
            MessageBody=json.dumps(message),
            MessageGroupId=customer,
            MessageDeduplicationId=uuid.uuid4().hex,
        )
    return customer


def all_orders(cloud: LocalCloud, shop: Shop) -> list[dict[str, Any]]:
    """Every order the table holds, read back through the API."""
    table = cloud.outputs.tables["orders"]["name"]
    ids: list[str] = []
    for page in cloud.clients.dynamodb.get_paginator("scan").paginate(
        TableName=table, ProjectionExpression="order_id", ConsistentRead=True
    ):
        ids.extend(item["order_id"]["S"] for item in page["Items"])
    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(shop.order, ids))


def wait_settled(cloud: LocalCloud, shop: Shop) -> list[dict[str, Any]]:
    """The orders once none is PENDING and the runtime has nothing left to do."""
    for _ in range(3):
        assert cloud.runtime.wait_until_idle(SETTLE_SECONDS), "the pipeline never went idle"
        orders = all_orders(cloud, shop)
        if not [o for o in orders if o["status"] == "PENDING"]:
            return orders
    pending = [o["order_id"] for o in orders if o["status"] == "PENDING"]
    raise AssertionError(f"{len(pending)} order(s) stayed PENDING: {pending[:5]}")


def test_orders_from_concurrent_clients_all_settle_exactly_once(cloud: LocalCloud):
    shop = Shop(cloud)
    for product_id, stock in STOCK.items():
        body = {"name": product_id.title(), "price": PRICES[product_id], "stock": stock}
        assert shop.call("PUT", f"/products/{product_id}", body)[0] == 201

    # Phase 1: orders, with cancellations right behind some, racing their reservation.
    def place_one(n: int) -> str:
        order = shop.place(f"client-{n % CLIENTS}", lines_for(n), f"order-{n}")
        if n % 6 == 0:
            assert shop.move(order["order_id"], "CANCELLED") in (200, 409)
        return order["order_id"]

    def one_key_twice(n: int) -> str:
        body = shop.order_body(f"racer-{n}", lines_for(n))
        headers = {"Idempotency-Key": f"racing-key-{n}"}
        first, second = race(
            lambda: shop.call("POST", "/orders", body, headers),
            lambda: shop.call("POST", "/orders", body, headers),
        )
        assert {first[0], second[0]} == {201}, (first, second)
        assert first[1]["order_id"] == second[1]["order_id"]
        return first[1]["order_id"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        placed = pool.map(place_one, range(API_ORDERS))
        racing = pool.map(one_key_twice, range(RACING_KEYS))
        partners = [send_intake_twice(cloud, n) for n in range(INTAKE_ORDERS)]
        placed, racing = list(placed), list(racing)
    assert len(set(placed)) == API_ORDERS and len(set(racing)) == RACING_KEYS

    orders = wait_settled(cloud, shop)
    by_customer = Counter(o["customer_id"] for o in orders)
    assert all(by_customer[p] == 1 for p in partners), "a redelivered order_created counted twice"
    assert len(orders) == API_ORDERS + RACING_KEYS + INTAKE_ORDERS

    # Phase 2: cancel against ship on one confirmed order, then moves from several threads.
    confirmed = [o["order_id"] for o in orders if o["status"] == "CONFIRMED"]
    assert len(confirmed) >= 12, Counter(o["status"] for o in orders)
    contested, rest = confirmed[:4], confirmed[4:]
    for order_id in contested:
        outcome = race(
            lambda order_id=order_id: shop.move(order_id, "SHIPPED"),
            lambda order_id=order_id: shop.move(order_id, "CANCELLED"),
        )
        assert sorted(outcome) == [200, 409], outcome
    to_ship, to_cancel = rest[: len(rest) * 2 // 3], rest[len(rest) * 2 // 3 :]
    with ThreadPoolExecutor(CLIENTS) as pool:
        shipped = list(pool.map(lambda o: shop.move(o, "SHIPPED"), to_ship))
        cancelled = list(pool.map(lambda o: shop.move(o, "CANCELLED"), to_cancel))
        delivered = list(pool.map(lambda o: shop.move(o, "DELIVERED"), to_ship[::2]))
    assert set(shipped) | set(cancelled) | set(delivered) == {200}

    orders = wait_settled(cloud, shop)
    check_outcome(cloud, shop, orders)


def check_outcome(cloud: LocalCloud, shop: Shop, orders: list[dict[str, Any]]) -> None:
    statuses = Counter(o["status"] for o in orders)
    assert statuses["REJECTED"] > 0 and statuses["CANCELLED"] > 0  # the mix did race for stock

    # Stock: every unit is in stock, reserved by a confirmed order, or shipped.
    held: dict[str, int] = defaultdict(int)
    gone: dict[str, int] = defaultdict(int)
    for order in orders:
        for line in order["items"]:
            if order["status"] == "CONFIRMED":
                held[line["product_id"]] += line["quantity"]
            elif order["status"] in ("SHIPPED", "DELIVERED"):
                gone[line["product_id"]] += line["quantity"]
    for product_id, initial in STOCK.items():
        status, product = shop.call("GET", f"/products/{product_id}")
        assert status == 200
        assert product["stock"] >= 0 and product["reserved"] >= 0, product
        assert product["reserved"] == held[product_id], product
        assert product["stock"] + product["reserved"] + gone[product_id] == initial, product

    # Mail: one per event of each order (its version counts its events), none for a ghost.
    subjects: dict[str, list[str]] = defaultdict(list)
    for message in mail.fetch(cloud.aws_endpoint):
        [order_id] = ORDER_ID.findall(message["Subject"])
        subjects[order_id].append(message["Subject"])
    known = {o["order_id"]: o for o in orders}
    assert set(subjects) <= set(known), "mail about an order that does not exist"
    for order_id, order in known.items():
        assert len(subjects[order_id]) == order["version"], (order, subjects[order_id])
        assert len(set(subjects[order_id])) == order["version"], subjects[order_id]

    # Analytics: the counters of the days the orders span equal what their final states say.
    expected = {"orders_created": len(orders), "revenue": Decimal("0")}
    expected["orders_rejected"] = statuses["REJECTED"]
    expected["orders_cancelled"] = statuses["CANCELLED"]
    # Cancelled from CONFIRMED is version 3 (created, confirmed, cancelled); from PENDING, 2.
    expected["orders_confirmed"] = sum(
        o["status"] in EARNING or (o["status"] == "CANCELLED" and o["version"] == 3) for o in orders
    )
    expected["revenue"] = sum(
        (Decimal(o["total"]) for o in orders if o["status"] in EARNING), Decimal(0)
    )
    counted: Counter[str] = Counter()
    revenue = Decimal(0)
    for day in days_spanned(orders):
        status, counters = shop.call("GET", f"/analytics/daily/{day}")
        assert status == 200, counters
        for name in ("orders_created", "orders_confirmed", "orders_rejected", "orders_cancelled"):
            counted[name] += counters[name]
        revenue += Decimal(counters["revenue"])
    assert {**counted, "revenue": revenue} == expected

    # Nothing dead-lettered, nothing failed on the stream, and no response was a 5xx.
    for key, queue in cloud.outputs.queues.items():
        if key.endswith("-dlq") or key.endswith("-failed"):
            attributes = cloud.clients.sqs.get_queue_attributes(
                QueueUrl=queue["url"],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            assert set(attributes.values()) == {"0"}, (key, attributes)
    assert [s for s in shop.statuses if s[2] >= 500] == []


def days_spanned(orders: list[dict[str, Any]]) -> list[str]:
    def day(stamp: str) -> date:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).date()

    first = min(day(o["created_at"]) for o in orders)
    last = max(day(o["updated_at"]) for o in orders)
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
