"""The orders' invariant (issue 14, section 3), checked one scenario at a time.

Many scenarios share one world, each with its own products, customers and
idempotency keys, so each is checked on what it made: its products' stock,
its customers' orders and mails, and the change it brought to the analytics
table (the days' counters before it started are its baseline).

Once the world is quiet after a scenario:

* for each product, ``stock + reserved + units shipped = initial stock``,
  ``reserved`` = the units of its CONFIRMED orders, and nothing is negative;
* every order has left PENDING, and the topic carried one event for each of
  its versions (copies of a republished event are identical), the last one
  saying its status: no order is stuck without its event;
* every event produced exactly one mail to its customer, except where a
  delivery died between SES accepting the mail and its claim being marked
  (the window of docs/orders.md): there one more per such delivery, and the
  claim records each attempt. No mail names an order that does not exist;
* each day's counters and revenue moved exactly as the events of that day
  say, and over all days as the orders' final states say;
* each idempotency key names exactly one order, of the request that used it,
  and no order exists beyond those the scenario's requests asked for;
* every queue and DLQ is empty (the drain empties the queues; the DLQs are read).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from chalicelib.dynamo import from_item, to_item
from chalicelib.orders import emails, notifications, service
from chalicelib.orders.events import OrderEvent
from chalicelib.orders.model import OrderRequest, ProductInput
from chalicelib.orders.states import Actor, Status
from chalicelib.orders.store import BY_CUSTOMER_INDEX, IDEMPOTENCY_PK, key_record_id
from localcloud import outbox
from tests.reliability.orders_world import ORDER_QUEUES, OrdersWorld

PRICE = "2.50"
HOLDING = {"CONFIRMED"}
SHIPPED = {"SHIPPED", "DELIVERED"}
EARNING = HOLDING | SHIPPED
# The orders' DLQs and the stream's on-failure destination (a drain empties the rest).
DEAD_ENDS = (*(f"{key}-dlq" for key in ORDER_QUEUES), "order-events-failed")
COUNTERS = ("orders_created", "orders_confirmed", "orders_rejected", "orders_cancelled")


@dataclass
class Scenario:
    """One scenario's products, customers and keys, and what it may expect."""

    world: OrdersWorld
    name: str
    stock: dict[str, int] = field(default_factory=dict)
    customers: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> customer
    # Extra mails the docs allow, by (customer email, subject): the window's deliveries.
    window: Counter = field(default_factory=Counter)
    baseline: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.baseline = analytics_days(self.world)
        self.world.published()  # earlier scenarios' events are theirs

    # -- setting up --------------------------------------------------------------------

    def product(self, units: int) -> str:
        product_id = f"{self.name}-p{len(self.stock)}"
        body = {"name": product_id, "price": PRICE, "stock": units}
        self.world.services().products.put(product_id, ProductInput.model_validate(body))
        self.stock[product_id] = units
        return product_id

    def customer(self) -> str:
        customer = f"{self.name}-c{len(self.customers)}"
        self.customers.append(customer)
        return customer

    def body(self, customer: str, **lines: int) -> dict[str, Any]:
        return {
            "customer_id": customer,
            "customer_email": f"{customer}@example.com",
            "items": [{"product_id": p, "quantity": q} for p, q in lines.items()],
        }

    def key(self, customer: str) -> str:
        key = f"{customer}-key"
        self.keys[key] = customer
        return key

    def place(self, **lines: int) -> str:
        """An order placed as the API places it, with a key; returns its id."""
        customer = self.customer()
        request = OrderRequest.model_validate(self.body(customer, **lines))
        order, _ = service.place_order(request, self.key(customer), self.world.services())
        return order["order_id"]

    def move(self, order_id: str, status: str) -> None:
        service.change_status(order_id, Status(status), Actor.CLIENT, self.world.services())

    # -- checking ----------------------------------------------------------------------

    def orders(self) -> list[dict[str, Any]]:
        """Every order of the scenario's customers, as stored (from the index, which
        projects every attribute)."""
        found = []
        for customer in self.customers:
            page = self.world.admin.dynamodb.query(
                TableName=self.world.settings.orders_table,
                IndexName=BY_CUSTOMER_INDEX,
                KeyConditionExpression="customer_id = :c",
                ExpressionAttributeValues=to_item({":c": customer}),
            )
            assert "LastEvaluatedKey" not in page
            found += [from_item(item) for item in page["Items"]]
        return found

    def records(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Items of the idempotency table (keys' records, claims), by id, in one read."""
        if not ids:
            return {}
        table = self.world.settings.idempotency_table
        response = self.world.admin.dynamodb.batch_get_item(
            RequestItems={
                table: {
                    "Keys": [to_item({IDEMPOTENCY_PK: i}) for i in ids],
                    "ConsistentRead": True,
                }
            }
        )
        assert not response.get("UnprocessedKeys")
        items = [from_item(item) for item in response["Responses"][table]]
        return {item[IDEMPOTENCY_PK]: item for item in items}

    def check(self) -> None:
        world = self.world
        world.drain()
        for copy in world.published():
            first = self.events.setdefault(copy["event_id"], copy)
            assert copy == first, f"two events with one id differ: {first} {copy}"
        orders = self.orders()
        self._check_keys(orders)
        self._check_stock(orders)
        self._check_events(orders)
        self._check_mails(orders)
        self._check_analytics(orders)
        for key in DEAD_ENDS:
            attributes = world.admin.sqs.get_queue_attributes(
                QueueUrl=world.outputs.queues[key]["url"],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            assert set(attributes.values()) == {"0"}, f"{key} is not empty: {attributes}"

    def _check_keys(self, orders: list[dict[str, Any]]) -> None:
        by_id = {o["order_id"]: o for o in orders}
        records = self.records([key_record_id(key) for key in self.keys])
        named = []
        for key, customer in self.keys.items():
            record = records.get(key_record_id(key))
            assert record is not None, f"key {key} was not recorded"
            order = by_id.get(record["order_id"])
            assert order is not None, f"key {key} names a missing order {record['order_id']}"
            assert order["customer_id"] == customer
            named.append(order["order_id"])
        assert sorted(named) == sorted(by_id), "an order without its key, or a key twice"

    def _check_stock(self, orders: list[dict[str, Any]]) -> None:
        products = self.world.services().products
        for product_id, initial in self.stock.items():
            product = products.get(product_id)

            def units(statuses: set[str], product_id: str = product_id) -> int:
                return sum(
                    int(line["quantity"])
                    for order in orders
                    if order["status"] in statuses
                    for line in order["items"]
                    if line["product_id"] == product_id
                )

            assert product["stock"] >= 0 and product["reserved"] >= 0, product
            assert product["reserved"] == units(HOLDING), product
            assert product["stock"] + product["reserved"] + units(SHIPPED) == initial, product

    def _mine(self, order_id: str) -> list[dict[str, Any]]:
        return sorted(
            (e for e in self.events.values() if e["order_id"] == order_id),
            key=lambda e: e["version"],
        )

    def _check_events(self, orders: list[dict[str, Any]]) -> None:
        ids = {o["order_id"] for o in orders}
        assert {e["order_id"] for e in self.events.values()} <= ids, "an event of no order"
        for order in orders:
            assert order["status"] != "PENDING", f"order stuck PENDING: {order}"
            mine = self._mine(order["order_id"])
            assert [e["version"] for e in mine] == list(range(1, int(order["version"]) + 1)), (
                f"versions without their event: {order}"
            )
            assert mine[-1]["new_status"] == order["status"]

    def _check_mails(self, orders: list[dict[str, Any]]) -> None:
        claims = notifications.claims(self.world.services())
        records = self.records([claims.key(event_id) for event_id in self.events])
        wanted: Counter = Counter()
        for event in self.events.values():
            email = emails.render(OrderEvent(**event))
            wanted[(email.to, email.subject)] = 1 + self.window[(email.to, email.subject)]
            record = records.get(claims.key(event["event_id"]))
            assert record is not None and record["claim_state"] == "SENT", record
            assert record["attempts"] >= wanted[(email.to, email.subject)], record
        assert set(self.window) <= set(wanted), "a window expected for an event never sent"
        sent = Counter(
            (message["Destination"]["ToAddresses"][0], message["Subject"])
            for customer in self.customers
            for message in outbox.messages(f"{customer}@example.com")
        )
        assert sent == wanted, f"mails per event: sent {dict(sent)}, wanted {dict(wanted)}"

    def _check_analytics(self, orders: list[dict[str, Any]]) -> None:
        now = analytics_days(self.world)
        moved: dict[str, dict[str, Decimal]] = {}
        for day, values in now.items():
            before = self.baseline.get(day, {})
            delta = {
                name: Decimal(values.get(name, 0)) - Decimal(before.get(name, 0))
                for name in (*COUNTERS, "revenue")
            }
            if any(delta.values()):
                moved[day] = delta
        assert moved == expected_days(self.events.values()), "a day's counters are off"
        # Over all days, what the orders' final states say.
        total = {
            name: sum((day[name] for day in moved.values()), Decimal(0))
            for name in (*COUNTERS, "revenue")
        }
        statuses = Counter(o["status"] for o in orders)
        earned = sum((Decimal(o["total"]) for o in orders if o["status"] in EARNING), Decimal(0))
        confirmed = sum(
            1
            for o in orders
            if o["status"] in EARNING
            or (o["status"] == "CANCELLED" and o.get("previous_status") in EARNING)
        )
        assert total["orders_created"] == len(orders)
        assert total["orders_confirmed"] == confirmed
        assert total["orders_rejected"] == statuses["REJECTED"]
        assert total["orders_cancelled"] == statuses["CANCELLED"]
        assert total["revenue"] == earned


def analytics_days(world: OrdersWorld) -> dict[str, dict[str, Any]]:
    table = world.settings.analytics_table
    items = world.admin.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {from_item(i)["date"]: from_item(i) for i in items}


def expected_days(events) -> dict[str, dict[str, Decimal]]:
    """Each day's counters and revenue, from the events that happened on it."""
    days: dict[str, dict[str, Decimal]] = {}
    for event in events:
        day = days.setdefault(
            event["occurred_at"][:10], {name: Decimal(0) for name in (*COUNTERS, "revenue")}
        )
        total = Decimal(event["total"])
        if event["event_type"] == "ORDER_CREATED":
            day["orders_created"] += 1
        elif event["new_status"] == "CONFIRMED":
            day["orders_confirmed"] += 1
            day["revenue"] += total
        elif event["new_status"] == "REJECTED":
            day["orders_rejected"] += 1
        elif event["new_status"] == "CANCELLED":
            day["orders_cancelled"] += 1
            if event["old_status"] in EARNING:
                day["revenue"] -= total
    return {d: v for d, v in days.items() if any(v.values())}
