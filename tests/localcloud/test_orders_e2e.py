"""The orders workflow end to end on a real local cloud: HTTP API, intake queue,
the orders stream, the stream handler and the SNS topic's filter policies."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from localcloud.cloud import LocalCloud
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
