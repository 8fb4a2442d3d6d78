"""The orders workflow end to end on a real local cloud: HTTP API, intake queue,
the orders stream, the stream handler and the SNS topic's filter policies."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
import uuid

import pytest

from chalicelib.clock import Clock
from localcloud.cloud import LocalCloud
from ops import mail
from tests.localcloud.http_api import call

# Far from any day a real clock gives: no other test's orders count there.
FIRST_DAY = dt.date(2090, 1, 1)
_DAYS = itertools.count()


@pytest.fixture
def cloud():
    with LocalCloud(aws_port=0, api_port=0) as running:
        yield running
        # Clouds in one process share one moto: a message a stopped poller had taken
        # would come back to the next test's cloud after its visibility timeout, and
        # be handled there, on that test's clock.
        wait_for(settled(running))


def wait_for(predicate, timeout: float = 60.0):
    """Poll until ``predicate()`` is truthy; bounded, never a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s")


def subscribe(cloud: LocalCloud, filter_policy: dict | None) -> str:
    """A test queue on the order-events topic (raw delivery); returns its URL."""
    sqs, sns = cloud.clients.sqs, cloud.clients.sns
    url = sqs.create_queue(QueueName=f"tap-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {"RawMessageDelivery": "true"}
    if filter_policy:
        attributes["FilterPolicy"] = json.dumps(filter_policy)
    sns.subscribe(
        TopicArn=cloud.outputs.topics["order-events"]["arn"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes=attributes,
    )
    return url


def drain(cloud: LocalCloud, url: str) -> list[dict]:
    sqs = cloud.clients.sqs
    out = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            out.append(json.loads(message["Body"]))
    return out


def events_for(cloud, url, order_id, seen, want):
    """Collect events of ``order_id`` from ``url`` into ``seen`` until every type in ``want``
    arrived (others may come too: the inventory confirms orders meanwhile)."""

    def arrived():
        seen.extend(e for e in drain(cloud, url) if e["order_id"] == order_id)
        return set(want) <= {e["event_type"] for e in seen}

    return wait_for(arrived)


def products(cloud):
    for product_id, price, stock in (("widget", "12.50", 100), ("gadget", "3.99", 5)):
        body = {"name": product_id.title(), "price": price, "stock": stock}
        assert call(cloud.api_port, "PUT", f"/products/{product_id}", body)[0] in (200, 201)


def test_an_order_placed_over_http_becomes_events_that_filter_policies_route(cloud):
    products(cloud)
    created_only = subscribe(cloud, {"event_type": ["ORDER_CREATED"]})
    everything = subscribe(cloud, None)
    body = {
        "customer_id": "e2e-1",
        "customer_email": "e2e-1@example.com",
        "items": [{"product_id": "widget", "quantity": 2}],
    }
    status, order = call(cloud.api_port, "POST", "/orders", body, {"Idempotency-Key": "e2e-k1"})
    assert status == 201 and order["total"] == "25.00"
    status, cancelled = call(
        cloud.api_port, "PATCH", f"/orders/{order['order_id']}", {"status": "CANCELLED"}
    )
    assert status == 200 and cancelled["status"] == "CANCELLED"

    seen: list[dict] = []
    events_for(cloud, everything, order["order_id"], seen, ["ORDER_CREATED", "ORDER_CANCELLED"])
    # One event per version, in version order (the inventory may have confirmed it first).
    assert [e["version"] for e in seen] == list(range(1, len(seen) + 1))
    assert seen[0]["event_type"] == "ORDER_CREATED" and seen[0]["items"] == order["items"]
    assert seen[-1]["event_type"] == "ORDER_CANCELLED"
    # The filter policy let only the creation through (both were published already).
    assert [e["event_type"] for e in drain(cloud, created_only)] == ["ORDER_CREATED"]


def intake_send(cloud, body, group):
    cloud.clients.sqs.send_message(
        QueueUrl=cloud.outputs.queues["order-intake"]["url"],
        MessageBody=body if isinstance(body, str) else json.dumps(body),
        MessageGroupId=group,
        MessageDeduplicationId=uuid.uuid4().hex,
    )


def test_intake_orders_flow_and_a_poison_message_does_not_block_its_group(cloud):
    products(cloud)
    everything = subscribe(cloud, None)
    group = "e2e-partner"
    order_data = {
        "customer_id": group,
        "customer_email": "partner@example.com",
        "items": [{"product_id": "gadget", "quantity": 1}],
    }
    poison = {"type": "order_created", "idempotency_key": "p-1", "data": {
        **order_data, "items": [{"product_id": "ghost", "quantity": 1}]}}  # fmt: skip
    good = {"type": "order_created", "idempotency_key": "p-2", "data": order_data}
    intake_send(cloud, poison, group)
    intake_send(cloud, good, group)

    def placed():
        status, page = call(cloud.api_port, "GET", f"/customers/{group}/orders")
        return page["items"] if status == 200 and page["items"] else None

    [order] = wait_for(placed)
    assert order["items"][0]["unit_price"] == "3.99"
    seen: list[dict] = []
    events_for(cloud, everything, order["order_id"], seen, ["ORDER_CREATED"])

    # The poison message is in the intake DLQ, with why, as docs/orders.md says.
    dlq = cloud.outputs.queues["order-intake-dlq"]["url"]
    dead = cloud.clients.sqs.receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    assert [json.loads(m["Body"]) for m in dead] == [poison]
    reason = dead[0]["MessageAttributes"]["eventflow_rejected_reason"]["StringValue"]
    assert "ghost" in reason


# -- all three consumers -----------------------------------------------------------------


def mail_to(cloud: LocalCloud, address: str) -> list[dict]:
    return mail.fetch(cloud.aws_endpoint, address)


ORDER_FUNCTIONS = (
    "publish_order_events",
    "update_inventory",
    "send_notifications",
    "update_analytics",
)


def settled(cloud: LocalCloud):
    """A predicate: the orders half of the runtime is idle. The stream is read to its
    end with nothing buffered, no batch is in flight, and the consumers' queues hold
    no message, visible, in flight or delayed; and no batch started while it was
    checked. After the effects of every event were seen, a duplicate still on its way
    can only be in one of those places, so once this holds nothing more happens."""
    pollers = [p for p in cloud.runtime.pollers if p.function in ORDER_FUNCTIONS]
    assert {p.function for p in pollers} == set(ORDER_FUNCTIONS)

    def idle() -> bool:
        before = [p.activity for p in pollers]
        return all(p.is_idle() for p in pollers) and [p.activity for p in pollers] == before

    return idle


def counters(cloud: LocalCloud, day: dt.date) -> dict:
    status, found = call(cloud.api_port, "GET", f"/analytics/daily/{day.isoformat()}")
    assert status == 200, found
    return found


@pytest.fixture
def day(cloud, monkeypatch) -> dt.date:
    """A day of the test's own, on which the app's clock runs from now on (from noon,
    at real speed): the test cannot straddle midnight, and its day's counters start
    at zero.

    The orders half settles first, on the real clock: an earlier test's last events
    (its cloud's pollers, stopped, pick up here where they were) count on their own
    days. The app takes its time from :class:`Clock`; nothing compares its
    timestamps with moto's.
    """
    wait_for(settled(cloud))
    start = dt.datetime.combine(
        FIRST_DAY + dt.timedelta(days=next(_DAYS)), dt.time(12), tzinfo=dt.UTC
    )
    began = time.monotonic()
    monkeypatch.setattr(
        Clock, "now", lambda self: start + dt.timedelta(seconds=time.monotonic() - began)
    )
    return start.date()


def product(cloud: LocalCloud, product_id: str) -> tuple[int, int]:
    status, found = call(cloud.api_port, "GET", f"/products/{product_id}")
    assert status == 200, found
    return found["stock"], found["reserved"]


def test_an_order_is_confirmed_mailed_and_counted_and_its_cancellation_undoes_it(cloud, day):
    tag = uuid.uuid4().hex[:8]
    lamp, who = f"lamp-{tag}", f"buyer-{tag}@example.com"
    body = {"name": "Lamp", "price": "19.99", "stock": 3}
    assert call(cloud.api_port, "PUT", f"/products/{lamp}", body)[0] == 201
    nothing = {"date": day.isoformat(), "orders_created": 0, "orders_confirmed": 0,
               "orders_rejected": 0, "orders_cancelled": 0, "revenue": "0.00"}  # fmt: skip
    assert counters(cloud, day) == nothing

    order_body = {
        "customer_id": f"buyer-{tag}",
        "customer_email": who,
        "items": [{"product_id": lamp, "quantity": 2}],
    }
    status, order = call(cloud.api_port, "POST", "/orders", order_body)
    assert status == 201 and order["total"] == "39.98"
    assert order["created_at"].startswith(day.isoformat())
    path = f"/orders/{order['order_id']}"

    confirmed = wait_for(
        lambda: (o := call(cloud.api_port, "GET", path)[1])["status"] == "CONFIRMED" and o
    )
    assert confirmed["reason"] is None
    assert product(cloud, lamp) == (1, 2)
    mails = wait_for(lambda: len(got := mail_to(cloud, who)) >= 2 and got)
    oid = order["order_id"]
    subjects = sorted(m["Subject"] for m in mails)
    assert subjects == [f"We received your order {oid}", f"Your order {oid} is confirmed"]
    received = next(m for m in mails if m["Subject"].startswith("We received"))
    assert "39.98" in received["Body"]["text_part"]
    counted = wait_for(lambda: (d := counters(cloud, day))["orders_confirmed"] and d)
    assert (counted["orders_created"], counted["orders_confirmed"]) == (1, 1)
    assert counted["revenue"] == "39.98"

    status, cancelled = call(cloud.api_port, "PATCH", path, {"status": "CANCELLED"})
    assert status == 200 and cancelled["status"] == "CANCELLED"
    wait_for(lambda: product(cloud, lamp) == (3, 0))
    mails = wait_for(lambda: len(got := mail_to(cloud, who)) >= 3 and got)
    assert f"Your order {oid} is cancelled" in [m["Subject"] for m in mails]
    wait_for(lambda: counters(cloud, day)["orders_cancelled"])

    # Settled: every consumer idle, and nothing happened twice.
    wait_for(settled(cloud))
    assert len(mail_to(cloud, who)) == 3
    assert product(cloud, lamp) == (3, 0)
    assert counters(cloud, day) == {
        "date": day.isoformat(),
        "orders_created": 1,
        "orders_confirmed": 1,
        "orders_rejected": 0,
        "orders_cancelled": 1,
        "revenue": "0.00",
    }


def test_an_order_larger_than_the_stock_is_rejected_reserves_nothing_and_the_customer_is_told(
    cloud,
):
    tag = uuid.uuid4().hex[:8]
    lamp, who = f"lamp-{tag}", f"buyer-{tag}@example.com"
    body = {"name": "Lamp", "price": "5", "stock": 1}
    assert call(cloud.api_port, "PUT", f"/products/{lamp}", body)[0] == 201
    order_body = {
        "customer_id": f"buyer-{tag}",
        "customer_email": who,
        "items": [{"product_id": lamp, "quantity": 4}],
    }
    status, order = call(cloud.api_port, "POST", "/orders", order_body)
    assert status == 201

    path = f"/orders/{order['order_id']}"
    rejected = wait_for(
        lambda: (o := call(cloud.api_port, "GET", path)[1])["status"] == "REJECTED" and o
    )
    assert lamp in rejected["reason"] and "wanted 4" in rejected["reason"]
    assert product(cloud, lamp) == (1, 0)
    mails = wait_for(lambda: len(got := mail_to(cloud, who)) >= 2 and got)
    # Received, and rejected with the reason (a standard queue: in either order).
    told = [m for m in mails if rejected["reason"] in m["Body"]["text_part"]]
    assert len(mails) == 2 and len(told) == 1, mails
