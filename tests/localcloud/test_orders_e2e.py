"""The orders workflow end to end on a real local cloud: HTTP API, intake queue,
the orders stream, the stream handler and the SNS topic's filter policies."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from localcloud.cloud import LocalCloud
from ops import mail
from tests.localcloud.http_api import call


@pytest.fixture
def cloud():
    with LocalCloud(aws_port=0, api_port=0) as running:
        yield running


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


def settled(cloud: LocalCloud):
    """A predicate: the orders stream is published to its end, nothing waits on the
    consumers' queues, and the day's counters hold still.

    Clouds in one process share moto, so an earlier test's last events may still be
    arriving when this one starts. Messages an earlier test made fail on purpose may
    be invisible for a while on their way to a DLQ; they are not events and count
    nowhere, so only visible messages matter here.
    """
    sqs = cloud.clients.sqs

    def nothing_waiting() -> bool:
        stream = [p for p in cloud.runtime.pollers if p.function == "publish_order_events"]
        if not all(p.is_idle() for p in stream):
            return False
        for key in ("inventory", "notifications", "analytics"):
            attributes = sqs.get_queue_attributes(
                QueueUrl=cloud.outputs.queues[key]["url"],
                AttributeNames=["ApproximateNumberOfMessages"],
            )["Attributes"]
            if int(attributes["ApproximateNumberOfMessages"]):
                return False
        return True

    def still() -> bool:
        if not nothing_waiting():
            return False
        first = today(cloud)
        time.sleep(1.0)  # what a batch in flight would change, it changes by then
        return nothing_waiting() and today(cloud) == first

    return still


def today(cloud: LocalCloud) -> dict:
    day = datetime.now(UTC).date().isoformat()
    status, counters = call(cloud.api_port, "GET", f"/analytics/daily/{day}")
    assert status == 200, counters
    return counters


def product(cloud: LocalCloud, product_id: str) -> tuple[int, int]:
    status, found = call(cloud.api_port, "GET", f"/products/{product_id}")
    assert status == 200, found
    return found["stock"], found["reserved"]


def test_an_order_is_confirmed_mailed_and_counted_and_its_cancellation_undoes_it(cloud):
    tag = uuid.uuid4().hex[:8]
    lamp, who = f"lamp-{tag}", f"buyer-{tag}@example.com"
    body = {"name": "Lamp", "price": "19.99", "stock": 3}
    assert call(cloud.api_port, "PUT", f"/products/{lamp}", body)[0] == 201
    # The day's counters are shared with earlier tests (one moto per process), whose
    # last events this cloud may still be publishing: count from a quiet point.
    wait_for(settled(cloud))
    before = today(cloud)

    order_body = {
        "customer_id": f"buyer-{tag}",
        "customer_email": who,
        "items": [{"product_id": lamp, "quantity": 2}],
    }
    status, order = call(cloud.api_port, "POST", "/orders", order_body)
    assert status == 201 and order["total"] == "39.98"
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
    counted = wait_for(
        lambda: (d := today(cloud))["orders_confirmed"] > before["orders_confirmed"] and d
    )
    assert counted["orders_created"] - before["orders_created"] == 1
    assert counted["orders_confirmed"] - before["orders_confirmed"] == 1
    assert Decimal(counted["revenue"]) - Decimal(before["revenue"]) == Decimal("39.98")

    status, cancelled = call(cloud.api_port, "PATCH", path, {"status": "CANCELLED"})
    assert status == 200 and cancelled["status"] == "CANCELLED"
    wait_for(lambda: product(cloud, lamp) == (3, 0))
    mails = wait_for(lambda: len(got := mail_to(cloud, who)) >= 3 and got)
    assert f"Your order {oid} is cancelled" in [m["Subject"] for m in mails]
    after = wait_for(
        lambda: (d := today(cloud))["orders_cancelled"] > before["orders_cancelled"] and d
    )
    assert Decimal(after["revenue"]) == Decimal(before["revenue"])
    assert after["orders_cancelled"] - before["orders_cancelled"] == 1

    # Settled: every consumer idle, and nothing happened twice.
    wait_for(settled(cloud))
    assert len(mail_to(cloud, who)) == 3
    assert product(cloud, lamp) == (3, 0)


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
