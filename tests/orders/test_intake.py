"""The partner intake: FIFO messages through the handler, over moto's queues."""

from __future__ import annotations

import json
import uuid

import pytest

from chalicelib.orders import handlers
from localcloud.runtime.sqs import lambda_record
from tests.orders.helpers import order_body, seed_products


@pytest.fixture
def intake(services, outputs):
    seed_products(services)
    return outputs.queues["order-intake"]["url"], outputs.queues["order-intake-dlq"]["url"]


def created(customer="cust-1", key=None, **lines):
    return {
        "type": "order_created",
        "idempotency_key": key or uuid.uuid4().hex,
        "data": order_body(customer, **lines),
    }


def send(services, url, *messages, group=None):
    for message in messages:
        body = message if isinstance(message, str) else json.dumps(message)
        customer = group or (
            message.get("data", {}).get("customer_id") if isinstance(message, dict) else None
        )
        services.clients.sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageGroupId=customer or "cust-1",
            MessageDeduplicationId=uuid.uuid4().hex,
        )


def deliver(services, url, count):
    """Receive ``count`` messages (FIFO order) and run them through the handler as one batch."""
    sqs = services.clients.sqs
    messages = []
    while len(messages) < count:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        assert got, f"expected {count} messages, got {len(messages)}"
        messages += got
    # The declared queue's ARN, as Lambda sends it: backoff changes visibility there.
    arn = f"arn:aws:sqs:us-east-1:123456789012:{services.settings.order_intake_queue}"
    records = [lambda_record(m, arn, "us-east-1") for m in messages]
    response = handlers.intake_orders({"Records": records}, None, services)
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [m["MessageId"] for m in messages], failed


def dead_letters(services, dlq_url):
    return services.clients.sqs.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])


def customer_orders(services, customer="cust-1"):
    return services.orders.by_customer(customer, 50, None)[0]


def test_an_intake_order_is_an_order_like_any_other(services, intake):
    url, _ = intake
    send(services, url, created(widget=2))
    assert deliver(services, url, 1)[1] == set()
    [order] = customer_orders(services)
    assert (order["status"], order["total"], order["version"]) == ("PENDING", "25.00", 1)


def test_the_idempotency_key_works_across_intake_and_api(services, intake, api):
    url, _ = intake
    message = created(key="partner-77", widget=2)
    response = api.http.post(
        "/orders",
        body=json.dumps(message["data"]).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": "partner-77"},
    )
    assert response.status_code == 201
    send(services, url, message, message)  # and the partner sends it twice
    assert deliver(services, url, 2)[1] == set()
    assert [o["order_id"] for o in customer_orders(services)] == [
        json.loads(response.body)["order_id"]
    ]


def test_updates_move_the_order(services, intake):
    url, _ = intake
    send(services, url, created(widget=1))
    deliver(services, url, 1)
    [order] = customer_orders(services)
    update = {
        "type": "order_updated",
        "data": {"order_id": order["order_id"], "status": "CANCELLED"},
    }
    send(services, url, update, update)  # a redelivered update is a no-op, not a poison message
    assert deliver(services, url, 2)[1] == set()
    assert services.orders.get(order["order_id"])["status"] == "CANCELLED"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", "malformed"),
        # 5,000 nested arrays: a RecursionError, retried five times, before the guard.
        (
            '{"type": "order_created", "idempotency_key": "k", "data": '
            + "[" * 5000
            + "]" * 5000
            + "}",
            "malformed",
        ),
        ({"type": "order_deleted", "data": {}}, "unknown_type"),
        ({"type": "order_created", "data": order_body()}, "validation_failed"),  # no key
        (created(ghost=1), "validation_failed"),  # unknown product
        (
            {"type": "order_created", "idempotency_key": "k", "data": {"items": []}},
            "validation_failed",
        ),
        (
            {"type": "order_updated", "data": {"order_id": "0" * 32, "status": "CANCELLED"}},
            "not_found",
        ),
        (
            {"type": "order_updated", "data": {"order_id": "bad", "status": "CANCELLED"}},
            "validation_failed",
        ),
    ],
)
def test_a_message_that_can_never_succeed_goes_to_the_dlq_with_its_reason(
    services, intake, message, code
):
    url, dlq = intake
    send(services, url, message, created(widget=1), group="cust-1")
    _ids, failed = deliver(services, url, 2)
    assert failed == set()  # handled: the group flows on at once
    [dead] = dead_letters(services, dlq)
    assert dead["Body"] == (message if isinstance(message, str) else json.dumps(message))
    attributes = dead["MessageAttributes"]
    assert attributes["eventflow_rejected_code"]["StringValue"] == code
    assert attributes["eventflow_rejected_reason"]["StringValue"]
    assert len(customer_orders(services)) == 1  # the next message of the group was applied


def test_an_invalid_transition_is_rejected_with_the_state_machine_reason(services, intake):
    url, dlq = intake
    send(services, url, created(widget=1))
    deliver(services, url, 1)
    [order] = customer_orders(services)
    send(
        services,
        url,
        {"type": "order_updated", "data": {"order_id": order["order_id"], "status": "DELIVERED"}},
    )
    deliver(services, url, 1)
    [dead] = dead_letters(services, dlq)
    assert (
        dead["MessageAttributes"]["eventflow_rejected_code"]["StringValue"] == "invalid_transition"
    )
    assert "PENDING" in dead["MessageAttributes"]["eventflow_rejected_reason"]["StringValue"]


def test_a_transient_failure_holds_back_its_group_only(services, intake):
    """FIFO partial batch rule: after a failure in a group, its later messages fail too;
    other groups go on."""
    url, dlq = intake
    send(services, url, created("cust-a", widget=1), created("cust-a", widget=2))
    send(services, url, created("cust-b", widget=3))
    ddb = services.clients.dynamodb
    calls = {"n": 0}

    def throttle_first_order_write(params, **_):
        calls["n"] += 1
        if calls["n"] == 1:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "injected"}},
                "TransactWriteItems",
            )

    ddb.meta.events.register("before-call.dynamodb.TransactWriteItems", throttle_first_order_write)
    try:
        _ids, failed = deliver(services, url, 3)
    finally:
        ddb.meta.events.unregister(
            "before-call.dynamodb.TransactWriteItems", throttle_first_order_write
        )
    assert len(failed) == 2  # both cust-a messages: the first failed, the second may not overtake
    assert customer_orders(services, "cust-a") == []
    assert len(customer_orders(services, "cust-b")) == 1
    assert dead_letters(services, dlq) == []
