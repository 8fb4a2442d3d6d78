"""All three consumers together, over any sequence of orders, moves and deliveries.

Each example is a fresh moto account with the declared stack and a clock of its
own that starts two hours before a midnight. Orders are placed, cancelled,
shipped and delivered; the stream is published at random points; each consumer
(inventory, notifications, analytics) is handed what its queue holds in batches
of random size, interleaved with the others; and batches that were already
handled come back *later*, after newer events were processed, as a redelivery
or a redrive brings them. Orders are placed on at least two days, and an
order may be confirmed on a later day than it was placed.

Afterwards, what a user relies on holds:

* stock: for every product, initial stock = ``stock`` + ``reserved`` + units
  shipped, where ``reserved`` is what CONFIRMED orders hold and units shipped
  what SHIPPED and DELIVERED orders hold; nothing negative;
* notifications: every event (each ``event_id`` the topic carried) produced
  exactly one email, to its customer, and no email belongs to no event;
* analytics, per day: each day's counters and revenue are what that day's
  events make them (docs/orders.md: the day of the event's ``occurred_at``),
  each day's ``orders_created`` is the orders placed that day, and the revenue
  over all days is the total of the orders confirmed and not cancelled.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from chalicelib.aws import Clients
from chalicelib.errors import Conflict
from chalicelib.orders import analytics, handlers, notifications, service
from chalicelib.orders.model import OrderRequest, ProductInput
from chalicelib.orders.states import Actor, Status
from chalicelib.services import Services
from infra.provision import Provisioner
from infra.stack import declare
from infra.stageconfig import StageConfig
from localcloud import outbox
from localcloud.motopatch import applied
from localcloud.runtime.sqs import lambda_record
from tests.conftest import InstantClock
from tests.orders.flow import OrderFlow

PRICES = {"alpha": "2.50", "beta": "7.25"}
CONSUMERS = (
    ("inventory", handlers.update_inventory),
    ("notifications", handlers.send_notifications),
    ("analytics", handlers.update_analytics),
)
HOLDING = {Status.CONFIRMED}
SHIPPED = {Status.SHIPPED, Status.DELIVERED}
# docs/orders.md: revenue is held by orders confirmed and not cancelled since.
EARNING = {Status.CONFIRMED, Status.SHIPPED, Status.DELIVERED}
START = datetime(2031, 3, 9, 22, 0, tzinfo=UTC)

lines = st.fixed_dictionaries({"alpha": st.integers(0, 3), "beta": st.integers(0, 3)}).filter(
    lambda q: any(q.values())
)
step = st.one_of(
    st.tuples(st.just("place"), lines),
    st.tuples(
        st.just("move"),
        st.integers(0, 7),
        st.sampled_from([Status.CANCELLED, Status.SHIPPED, Status.DELIVERED]),
    ),
    st.tuples(st.just("publish")),
    st.tuples(st.just("deliver"), st.integers(0, len(CONSUMERS) - 1), st.integers(1, 10)),
    st.tuples(st.just("stale"), st.integers(0, 1_000)),
    st.tuples(st.just("later"), st.integers(1, 6)),
)
# A place on the first day, steps, a day later another place, steps.
plans = st.tuples(lines, st.lists(step, max_size=8), lines, st.lists(step, max_size=8)).map(
    lambda p: [("place", p[0]), *p[1], ("later", 24), ("place", p[2]), *p[3]]
)


class StepClock(InstantClock):
    """Stands still until the plan moves it; retries never wait."""

    def __init__(self) -> None:
        super().__init__()
        self.current = START

    def now(self) -> datetime:
        return self.current


class World:
    """One example's account: the stack, the consumers, a tap on the topic, and every
    batch each consumer was handed (to hand it again later)."""

    def __init__(self, stock: dict[str, int]):
        stage = StageConfig.load("local")
        clients = Clients()
        self.clock = StepClock()
        self.outputs = Provisioner(clients).apply(declare(stage))
        self.services = Services(stage.settings(), clients=clients, clock=self.clock)
        self.flow = OrderFlow(self.services, self.outputs)
        for product_id, units in stock.items():
            product = {"name": product_id, "price": PRICES[product_id], "stock": units}
            self.services.products.put(product_id, ProductInput.model_validate(product))
        self.tap = self._tap()
        self.orders: list[str] = []
        self.handled: list[tuple[int, dict]] = []

    def _tap(self) -> str:
        """Every event the topic carried, whatever the consumers' filters."""
        sqs = self.services.clients.sqs
        url = sqs.create_queue(QueueName="tap")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        self.services.clients.sns.subscribe(
            TopicArn=self.outputs.topics["order-events"]["arn"],
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        return url

    # -- the plan's steps ----------------------------------------------------------

    def place(self, quantities: dict[str, int]) -> None:
        customer = f"c{len(self.orders)}"
        body = {
            "customer_id": customer,
            "customer_email": f"{customer}@example.com",
            "items": [{"product_id": p, "quantity": q} for p, q in quantities.items() if q],
        }
        order, _ = service.place_order(OrderRequest.model_validate(body), None, self.services)
        self.orders.append(order["order_id"])

    def move(self, index: int, status: Status) -> None:
        # A move the order cannot make now is refused (409): no event, no effect.
        if index < len(self.orders):
            with contextlib.suppress(Conflict):
                service.change_status(self.orders[index], status, Actor.CLIENT, self.services)

    def publish(self) -> int:
        return self.flow.publish()

    def deliver(self, consumer: int, count: int) -> int:
        """Hand the consumer up to ``count`` messages of its queue as one batch; as
        Lambda's poller would, delete what it does not report as failed."""
        queue_key = CONSUMERS[consumer][0]
        sqs, queue = self.services.clients.sqs, self.outputs.queues[queue_key]
        messages = sqs.receive_message(
            QueueUrl=queue["url"],
            MaxNumberOfMessages=count,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [lambda_record(m, queue["arn"], "us-east-1") for m in messages]}
        self._handle(consumer, event)
        for message in messages:
            sqs.delete_message(QueueUrl=queue["url"], ReceiptHandle=message["ReceiptHandle"])
        self.handled.append((consumer, event))
        return len(messages)

    def stale(self, pick: int) -> None:
        """Hand a consumer, again, a batch it handled earlier."""
        if self.handled:
            self._handle(*self.handled[pick % len(self.handled)])

    def later(self, hours: int) -> None:
        self.clock.current += timedelta(hours=hours)

    def _handle(self, consumer: int, event: dict) -> None:
        queue_key, handler = CONSUMERS[consumer]
        response = handler(event, None, self.services)
        assert response == {"batchItemFailures": []}, (queue_key, response)

    def settle(self) -> None:
        """Publish and deliver until nothing moves; then every batch ever handled comes
        back once more, newest first, and again until nothing moves."""
        self._drain()
        for consumer, event in reversed(list(self.handled)):
            self._handle(consumer, event)
        self._drain()

    def _drain(self) -> None:
        while True:
            moved = self.publish()
            for consumer in range(len(CONSUMERS)):
                while got := self.deliver(consumer, 10):
                    moved += got
            if not moved:
                return

    def events(self) -> dict[str, dict]:
        sqs, found = self.services.clients.sqs, {}
        while got := sqs.receive_message(QueueUrl=self.tap, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in got:
                event = json.loads(message["Body"])
                found[event["event_id"]] = event
                sqs.delete_message(QueueUrl=self.tap, ReceiptHandle=message["ReceiptHandle"])
        return found


def expected_days(events: dict[str, dict]) -> dict[str, dict]:
    """What docs/orders.md's table makes of each event, on the day it occurred."""
    days: dict[str, dict] = defaultdict(lambda: {"counts": Counter(), "revenue": Decimal(0)})
    for event in events.values():
        day = days[event["occurred_at"][:10]]
        new, old = event["new_status"], event["old_status"]
        if event["event_type"] == "ORDER_CREATED":
            day["counts"]["orders_created"] += 1
        elif new == Status.CONFIRMED:
            day["counts"]["orders_confirmed"] += 1
            day["revenue"] += Decimal(event["total"])
        elif new == Status.REJECTED:
            day["counts"]["orders_rejected"] += 1
        elif new == Status.CANCELLED:
            day["counts"]["orders_cancelled"] += 1
            if Status(old) in EARNING:
                day["revenue"] -= Decimal(event["total"])
    return days


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stock=st.fixed_dictionaries({"alpha": st.integers(0, 5), "beta": st.integers(0, 5)}),
    plan=plans,
)
def test_interleaved_and_stale_deliveries_move_stock_mail_each_event_once_and_count_each_day(
    stock, plan
):
    with applied(outbox.SEND_EMAIL), mock_aws():
        world = World(stock)
        for step_ in plan:
            getattr(world, step_[0])(*step_[1:])
        world.settle()

        services = world.services
        orders = [services.orders.get(order_id) for order_id in world.orders]
        for product_id, initial in stock.items():
            product = services.products.get(product_id)

            def units(statuses, product_id=product_id):
                return sum(
                    line["quantity"]
                    for order in orders
                    if Status(order["status"]) in statuses
                    for line in order["items"]
                    if line["product_id"] == product_id
                )

            assert product["stock"] >= 0 and product["reserved"] >= 0, product
            assert product["reserved"] == units(HOLDING), product
            assert initial == product["stock"] + product["reserved"] + units(SHIPPED), product

        # The tap saw each order's whole history: one event per version.
        events = world.events()
        for order in orders:
            versions = sorted(
                e["version"] for e in events.values() if e["order_id"] == order["order_id"]
            )
            assert versions == list(range(1, order["version"] + 1)), order

        # One email per event_id, to its customer; none that belongs to no event.
        mails = {m["Id"]: m for m in outbox.messages()}
        claims = notifications.claims(services)
        sent = []
        for event_id, event in events.items():
            claim = claims.get(event_id)
            assert claim is not None and claim["claim_state"] == "SENT", (event, claim)
            mail = mails[claim["ses_message_id"]]
            assert mail["Destination"]["ToAddresses"] == [event["customer_email"]]
            assert event["order_id"] in mail["Subject"]
            sent.append(claim["ses_message_id"])
        assert sorted(sent) == sorted(mails), "every email is one event's, each event one email"

        # Analytics, day by day.
        expected = expected_days(events)
        placed_on = Counter(o["created_at"][:10] for o in orders)
        assert len(placed_on) >= 2, placed_on  # the plan places orders on two days
        for day in sorted(set(expected) | set(placed_on)):
            got = analytics.daily(
                services.clients.dynamodb,
                services.settings.analytics_table,
                date.fromisoformat(day),
            )
            counts = expected[day]["counts"]
            assert got == {
                "date": day,
                "orders_created": counts["orders_created"],
                "orders_confirmed": counts["orders_confirmed"],
                "orders_rejected": counts["orders_rejected"],
                "orders_cancelled": counts["orders_cancelled"],
                "revenue": f"{expected[day]['revenue']:.2f}",
            }, day
            assert got["orders_created"] == placed_on[day], day
        earned = sum(
            (Decimal(o["total"]) for o in orders if Status(o["status"]) in EARNING), Decimal(0)
        )
        assert sum((e["revenue"] for e in expected.values()), Decimal(0)) == earned
