"""All three consumers together, over any sequence of orders and moves, with redelivery.

Each example is a fresh moto account with the declared stack: products, then
orders placed, cancelled, shipped and delivered in a random order, with the
consumers' queues drained at random points and every batch delivered one to
three times. Afterwards what a user relies on holds:

* stock: for every product, initial stock = ``stock`` + ``reserved`` + units
  shipped, where ``reserved`` is what CONFIRMED orders hold and units shipped
  what SHIPPED and DELIVERED orders hold; nothing negative;
* analytics: the day's revenue is the sum of the totals of orders confirmed
  and not cancelled, and each counter counts each order once;
* notifications: every event produced exactly one email, to its customer.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from chalicelib.aws import Clients
from chalicelib.errors import Conflict
from chalicelib.orders import analytics, handlers, service
from chalicelib.orders.model import OrderRequest, ProductInput
from chalicelib.orders.states import Actor, Status
from chalicelib.services import Services
from infra.declaration import declare
from infra.provision import Provisioner
from infra.stageconfig import StageConfig
from localcloud import outbox
from localcloud.motopatch import applied
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

lines = st.fixed_dictionaries({"alpha": st.integers(0, 3), "beta": st.integers(0, 3)}).filter(
    lambda q: any(q.values())
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("place"), lines),
        st.tuples(
            st.just("move"),
            st.integers(0, 7),
            st.sampled_from([Status.CANCELLED, Status.SHIPPED, Status.DELIVERED]),
        ),
        st.tuples(st.just("settle"), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=10,
)


class World:
    """One example's account: the stack, the consumers, and a tap on the topic."""

    def __init__(self, stock: dict[str, int]):
        stage = StageConfig.load("local")
        clients = Clients()
        self.outputs = Provisioner(clients).apply(declare(stage))
        self.services = Services(stage.settings(), clients=clients, clock=InstantClock())
        self.flow = OrderFlow(self.services, self.outputs)
        for product_id, units in stock.items():
            product = {"name": product_id, "price": PRICES[product_id], "stock": units}
            self.services.products.put(product_id, ProductInput.model_validate(product))
        self.tap = self._tap()
        self.orders: list[str] = []

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

    def settle(self, times: int) -> None:
        """Publish and deliver until nothing moves; each batch ``times`` times."""
        self.flow.publish()
        while True:
            for queue_key, handler in CONSUMERS:
                for response in self.flow.deliver(queue_key, handler, times):
                    assert response == {"batchItemFailures": []}, (queue_key, response)
            if not self.flow.publish():
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


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stock=st.fixed_dictionaries({"alpha": st.integers(0, 5), "beta": st.integers(0, 5)}),
    plan=steps,
)
def test_any_sequence_with_redelivery_moves_stock_counts_and_mails_each_event_once(stock, plan):
    with applied(outbox.SEND_EMAIL), mock_aws():
        world = World(stock)
        for step in plan:
            getattr(world, step[0])(*step[1:])
        world.settle(times=2)

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

        day = analytics.daily(
            services.clients.dynamodb,
            services.settings.analytics_table,
            datetime.now(UTC).date(),
        )
        earning = HOLDING | SHIPPED
        revenue = sum(
            (Decimal(o["total"]) for o in orders if Status(o["status"]) in earning), Decimal(0)
        )
        assert Decimal(day["revenue"]) == revenue
        assert day["orders_created"] == len(orders)
        statuses = [Status(o["status"]) for o in orders]
        assert day["orders_rejected"] == statuses.count(Status.REJECTED)
        assert day["orders_cancelled"] == statuses.count(Status.CANCELLED)

        events = world.events()
        mails = outbox.messages()
        assert len(mails) == len(events)
        for order_id in world.orders:
            order = services.orders.get(order_id)
            mine = [e for e in events.values() if e["order_id"] == order_id]
            assert len(mine) == len(outbox.messages(order["customer_email"])), order_id
