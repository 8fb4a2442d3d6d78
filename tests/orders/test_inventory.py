"""The inventory consumer: reserve, reject, release and consume, each exactly once."""

from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from chalicelib.orders import handlers, service
from chalicelib.orders.model import ProductInput
from chalicelib.orders.states import Actor, Status
from infra.resources import MAX_RECEIVE_COUNT
from localcloud.runtime.sqs import lambda_record
from ops.__main__ import main as ops_main
from tests.orders.flow import OrderFlow, deliver_as_lambda
from tests.orders.helpers import place, seed_products


@pytest.fixture
def flow(services, outputs):
    seed_products(services)  # widget: 100 at 12.50, gadget: 10 at 3.99
    return OrderFlow(services, outputs)


def stock(services, product_id):
    product = services.products.get(product_id)
    return product["stock"], product["reserved"]


def move(services, order, status):
    return service.change_status(order["order_id"], Status(status), Actor.CLIENT, services)


def test_a_new_order_reserves_every_line_and_is_confirmed(services, flow):
    order = place(services, widget=2, gadget=3)
    flow.settle()
    confirmed = services.orders.get(order["order_id"])
    assert (confirmed["status"], confirmed["version"], confirmed["reason"]) == (
        "CONFIRMED",
        2,
        None,
    )
    assert stock(services, "widget") == (98, 2) and stock(services, "gadget") == (7, 3)
    raw = services.orders.get_item(order["order_id"])
    assert raw["reservation_state"] == "HELD"
    assert [(r["product_id"], int(r["quantity"])) for r in raw["reservation"]] == [
        ("widget", 2),
        ("gadget", 3),
    ]


def test_an_order_larger_than_the_stock_is_rejected_naming_each_short_line_and_reserves_nothing(
    services, flow
):
    order = place(services, widget=1, gadget=11)
    flow.settle()
    rejected = services.orders.get(order["order_id"])
    assert rejected["status"] == "REJECTED"
    assert rejected["reason"] == "insufficient stock: gadget (wanted 11, 10 available)"
    assert stock(services, "widget") == (100, 0) and stock(services, "gadget") == (10, 0)


def test_cancelling_a_confirmed_order_gives_back_exactly_what_it_reserved(services, flow):
    order = place(services, widget=5)
    flow.settle()
    move(services, order, "CANCELLED")
    flow.settle()
    assert stock(services, "widget") == (100, 0)
    assert services.orders.get_item(order["order_id"])["reservation_state"] == "RELEASED"


def test_an_order_cancelled_while_pending_is_never_reserved(services, flow):
    order = place(services, widget=5)
    move(services, order, "CANCELLED")  # before inventory saw the creation
    flow.settle()
    assert services.orders.get(order["order_id"])["status"] == "CANCELLED"
    assert stock(services, "widget") == (100, 0)
    assert "reservation_state" not in services.orders.get_item(order["order_id"])


def test_shipping_consumes_the_reservation(services, flow):
    order = place(services, gadget=4)
    flow.settle()
    move(services, order, "SHIPPED")
    flow.settle()
    assert stock(services, "gadget") == (6, 0)
    move(services, order, "DELIVERED")
    flow.settle()
    assert stock(services, "gadget") == (6, 0)
    assert services.orders.get_item(order["order_id"])["reservation_state"] == "CONSUMED"


def test_every_event_delivered_three_times_moves_stock_once(services, flow):
    kept = place(services, widget=3)
    cancelled = place(services, "cust-2", widget=4, gadget=2)
    shipped = place(services, "cust-3", gadget=5)
    flow.settle(times=3)
    move(services, cancelled, "CANCELLED")
    move(services, shipped, "SHIPPED")
    flow.settle(times=3)
    assert services.orders.get(kept["order_id"])["status"] == "CONFIRMED"
    assert stock(services, "widget") == (97, 3)
    assert stock(services, "gadget") == (5, 0)


class ChangeBeforeFirstTransaction:
    """Runs ``change`` once, just before inventory's first TransactWriteItems is sent:
    a concurrent writer that got there between inventory's read and its write."""

    def __init__(self, services, change):
        self.change, self.calls = change, 0
        self.client = services.clients.dynamodb
        self.client.meta.events.register("before-call.dynamodb.TransactWriteItems", self)

    def __call__(self, **_):
        self.calls += 1
        if self.calls == 1:
            self.change()

    def close(self):
        self.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", self)


def test_stock_taken_between_the_read_and_the_reservation_is_decided_again(services, flow):
    """The reservation's condition fails because of a concurrent change: inventory
    reads again and decides again (here: rejected), never a poison message."""
    order = place(services, gadget=8)
    flow.publish()
    taken = ProductInput.model_validate({"name": "Gadget", "price": "3.99", "stock": 5})
    racer = ChangeBeforeFirstTransaction(services, lambda: services.products.put("gadget", taken))
    try:
        flow.deliver("inventory", handlers.update_inventory)
    finally:
        racer.close()
    assert racer.calls == 2  # the failed reservation, then the verdict
    rejected = services.orders.get(order["order_id"])
    assert (rejected["status"], rejected["reason"]) == (
        "REJECTED",
        "insufficient stock: gadget (wanted 8, 5 available)",
    )
    assert stock(services, "gadget") == (5, 0)


def test_a_cancellation_racing_the_reservation_leaves_the_stock_as_it_was(services, flow):
    order = place(services, widget=7)
    flow.publish()
    racer = ChangeBeforeFirstTransaction(services, lambda: move(services, order, "CANCELLED"))
    try:
        flow.settle()
    finally:
        racer.close()
    assert services.orders.get(order["order_id"])["status"] == "CANCELLED"
    assert stock(services, "widget") == (100, 0)


def test_a_message_that_is_not_an_event_fails_so_that_it_reaches_the_dlq(services, flow, outputs):
    sqs = services.clients.sqs
    sqs.send_message(
        QueueUrl=outputs.queues["inventory"]["url"],
        MessageBody="not an event",
        MessageGroupId="x",
        MessageDeduplicationId="x",
    )
    [response] = flow.deliver("inventory", handlers.update_inventory)
    assert len(response["batchItemFailures"]) == 1


def test_two_orders_racing_for_the_last_unit_confirm_exactly_one(
    services, flow, outputs, moto_locks
):
    """Both consumers read one unit left, then both try to reserve it at once (moto
    locked as the local cloud locks it: unlocked, its transactions are not atomic)."""
    last = ProductInput.model_validate({"name": "Gadget", "price": "3.99", "stock": 1})
    services.products.put("gadget", last)
    orders = [place(services, f"racer-{n}", gadget=1) for n in (1, 2)]
    flow.publish()
    queue = outputs.queues["inventory"]
    messages = services.clients.sqs.receive_message(
        QueueUrl=queue["url"], MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert len(messages) == 2  # one group per order: nothing orders them

    barrier = threading.Barrier(2, timeout=30)
    first_write = threading.local()

    def hold_first_reservation(**_):
        if not getattr(first_write, "done", False):
            first_write.done = True
            barrier.wait()

    client = services.clients.dynamodb
    client.meta.events.register("before-call.dynamodb.TransactWriteItems", hold_first_reservation)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            responses = list(
                pool.map(
                    lambda m: handlers.update_inventory(
                        {"Records": [lambda_record(m, queue["arn"], "us-east-1")]}, None, services
                    ),
                    messages,
                )
            )
    finally:
        client.meta.events.unregister(
            "before-call.dynamodb.TransactWriteItems", hold_first_reservation
        )

    assert responses == [{"batchItemFailures": []}] * 2
    statuses = sorted(services.orders.get(o["order_id"])["status"] for o in orders)
    assert statuses == ["CONFIRMED", "REJECTED"]
    assert stock(services, "gadget") == (0, 1)


def deliver_inventory_as_lambda(services, outputs) -> list[dict]:
    return deliver_as_lambda(services, outputs, "inventory", handlers.update_inventory)


def test_an_event_dead_lettered_by_a_bug_reserves_once_after_the_fix_and_redrive(
    services, flow, outputs, monkeypatch
):
    monkeypatch.setattr("ops.queues.WAIT_SECONDS", 0)  # moto needs no long poll to prove empty
    order = place(services, widget=4)
    flow.publish()
    client = services.clients.dynamodb

    def denied(**_):  # the function's role lacks a grant: a bug, fixed by a deploy
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
            "TransactWriteItems",
        )

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", denied)
    try:
        responses = deliver_inventory_as_lambda(services, outputs)
    finally:
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", denied)
    assert len(responses) == MAX_RECEIVE_COUNT
    dlq = outputs.queues["inventory-dlq"]["url"]
    [dead] = services.clients.sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0)["Messages"]
    assert json.loads(dead["Body"])["order_id"] == order["order_id"]
    assert stock(services, "widget") == (100, 0)

    out = io.StringIO()
    code = ops_main(["--stage", "local", "dlq", "redrive", "inventory"], console=Console(file=out))
    assert code == 0 and "moved 1 message(s)" in out.getvalue()
    assert deliver_inventory_as_lambda(services, outputs) == [{"batchItemFailures": []}]
    assert services.orders.get(order["order_id"])["status"] == "CONFIRMED"
    assert stock(services, "widget") == (96, 4)
    # The same event again (a second redrive, a duplicate): the marker holds.
    services.clients.sqs.send_message(
        QueueUrl=outputs.queues["inventory"]["url"],
        MessageBody=dead["Body"],
        MessageGroupId=order["order_id"],
        MessageDeduplicationId="again",
    )
    assert deliver_inventory_as_lambda(services, outputs) == [{"batchItemFailures": []}]
    assert stock(services, "widget") == (96, 4)
    assert not services.clients.sqs.receive_message(QueueUrl=dlq).get("Messages")
