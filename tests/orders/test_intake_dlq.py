"""The partner intake's dead letters: how they get there, and how they come back.

* A poison message is moved to the DLQ by the handler, once, however often it
  is delivered (the DLQ deduplicates on the original message id).
* A transient failure is left to SQS: after the declared ``maxReceiveCount``
  receives, the queue's redrive policy moves it to the same DLQ.
* ``python -m ops dlq redrive order-intake`` (the CLI, over moto) moves what
  the DLQ held when it started, each message once, while the consumer runs as
  it does under ``make run``: the order is created once, and a poison message
  that bounced straight back waits in the DLQ for the next look.
"""

from __future__ import annotations

import io
import json

import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from chalicelib.aws import Clients
from chalicelib.orders import handlers
from infra.stack import declare
from infra.stageconfig import StageConfig
from localcloud.runtime.sqs import lambda_record
from ops.__main__ import main
from tests.orders.helpers import seed_products
from tests.orders.test_intake import created, customer_orders, send

POISON = "not json"


@pytest.fixture
def queues(services, outputs):
    seed_products(services)
    return outputs.queues["order-intake"], outputs.queues["order-intake-dlq"]


@pytest.fixture(autouse=True)
def short_polls(monkeypatch):
    # A 1 s long poll proves a real queue empty; moto needs no such proof.
    monkeypatch.setattr("ops.queues.WAIT_SECONDS", 0)


def receive(services, queue) -> list[dict]:
    return services.clients.sqs.receive_message(
        QueueUrl=queue["url"],
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])


def invoke(services, queue, messages) -> set[str]:
    """One invocation of ``intake_orders``; returns the ids it reported failed."""
    event = {"Records": [lambda_record(m, queue["arn"], "us-east-1") for m in messages]}
    response = handlers.intake_orders(event, None, services)
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def consume(services, queue) -> None:
    """What the local cloud's poller does with the intake queue: deliver, then delete
    what the handler did not report as failed."""
    sqs = services.clients.sqs
    while messages := receive(services, queue):
        failed = invoke(services, queue, messages)
        assert failed == set(), failed
        for message in messages:
            sqs.delete_message(QueueUrl=queue["url"], ReceiptHandle=message["ReceiptHandle"])


def dead_letters(services, dlq) -> list[dict]:
    """Every message in the (FIFO, one group) DLQ, left there."""
    messages = receive(services, dlq)
    for message in messages:
        services.clients.sqs.change_message_visibility(
            QueueUrl=dlq["url"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return messages


class OrderWritesFail:
    """DynamoDB refuses every order write with a 500, as in an outage."""

    def __init__(self, services):
        self.ddb = services.clients.dynamodb
        self.ddb.meta.events.register("before-call.dynamodb.TransactWriteItems", self.refuse)

    @staticmethod
    def refuse(**_):
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "injected outage"}},
            "TransactWriteItems",
        )

    def close(self) -> None:
        self.ddb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", self.refuse)


def fail_until_dead_lettered(services, queue) -> int:
    """Deliver the queue, each failure waited out at once, until SQS has moved the
    message to the DLQ; returns how many times the handler was invoked with it."""
    sqs, invocations = services.clients.sqs, 0
    limit = declared_receives() + 2
    while messages := receive(services, queue):
        assert invocations < limit, "never dead-lettered"
        failed = invoke(services, queue, messages)
        assert failed == {m["MessageId"] for m in messages}
        invocations += 1
        for message in messages:
            sqs.change_message_visibility(
                QueueUrl=queue["url"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    return invocations


def declared_receives() -> int:
    return declare(StageConfig.load("local")).queue("order-intake").max_receive_count


def test_a_poison_message_delivered_twice_is_dead_lettered_once(services, queues):
    queue, dlq = queues
    send(services, queue["url"], POISON, created(widget=1), group="cust-1")
    messages = receive(services, queue)
    assert len(messages) == 2
    # The same batch twice: the first invocation's response was lost, say.
    assert invoke(services, queue, messages) == set()
    assert invoke(services, queue, messages) == set()
    [dead] = dead_letters(services, dlq)
    assert dead["Body"] == POISON
    assert dead["MessageAttributes"]["eventflow_rejected_code"]["StringValue"] == "malformed"
    assert len(customer_orders(services)) == 1  # the order's redelivery replayed its key


def test_a_transient_failure_reaches_the_dlq_after_the_declared_receives(services, queues):
    queue, dlq = queues
    attributes = services.clients.sqs.get_queue_attributes(
        QueueUrl=queue["url"], AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    policy = json.loads(attributes["RedrivePolicy"])
    assert policy == {"deadLetterTargetArn": dlq["arn"], "maxReceiveCount": declared_receives()}

    message = created(key="partner-outage", widget=1)
    send(services, queue["url"], message)
    outage = OrderWritesFail(services)
    try:
        invocations = fail_until_dead_lettered(services, queue)
    finally:
        outage.close()

    assert invocations == declared_receives() == 5
    [dead] = dead_letters(services, dlq)
    assert json.loads(dead["Body"]) == message
    # Not a poison message: SQS moved it, so it carries no rejection.
    assert "eventflow_rejected_code" not in dead.get("MessageAttributes", {})
    assert customer_orders(services) == []


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--stage", "local", *argv], console=Console(file=out, width=240))
    return code, out.getvalue()


@pytest.fixture
def consumer_running(services, queues, monkeypatch):
    """The intake consumer takes each batch the redrive sends as soon as it lands, as
    the local cloud's poller does while an operator redrives under ``make run``."""
    queue, _ = queues
    create = Clients._create
    deliveries: list[str] = []

    def deliver_after_send(**_):
        consume(services, queue)  # the redrive sends only to the intake queue
        deliveries.append("after SendMessageBatch")

    def creating(self, service):
        client = create(self, service)
        if service == "sqs":
            client.meta.events.register("after-call.sqs.SendMessageBatch", deliver_after_send)
        return client

    monkeypatch.setattr(Clients, "_create", creating)
    return deliveries


def test_ops_redrive_moves_what_the_dlq_held_once_and_the_order_is_created_once(
    services, queues, consumer_running
):
    queue, dlq = queues
    message = created(key="partner-redrive", widget=2)
    send(services, queue["url"], message)
    outage = OrderWritesFail(services)
    try:
        fail_until_dead_lettered(services, queue)
    finally:
        outage.close()
    send(services, queue["url"], POISON, group="cust-1")
    consume(services, queue)
    assert sorted(m["Body"] for m in dead_letters(services, dlq)) == sorted(
        [json.dumps(message), POISON]
    )

    code, out = run_cli("dlq", "redrive", "order-intake")
    assert code == 0, out
    assert "moved 2 message(s)" in out, out
    assert consumer_running, "the consumer never ran while the redrive sent"
    consume(services, queue)
    [order] = customer_orders(services)
    assert (order["total"], order["status"]) == ("25.00", "PENDING")
    # The poison message bounced straight back, with its reason, and waits there.
    assert [m["Body"] for m in dead_letters(services, dlq)] == [POISON]

    # The next look moves only the poison message, once; still one order.
    code, out = run_cli("dlq", "redrive", "order-intake")
    assert code == 0 and "moved 1 message(s)" in out, out
    consume(services, queue)
    assert [o["order_id"] for o in customer_orders(services)] == [order["order_id"]]
    assert [m["Body"] for m in dead_letters(services, dlq)] == [POISON]
