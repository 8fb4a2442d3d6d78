"""``ops dlq peek QUEUE`` decodes each queue's messages as what that queue carries.

One message of each kind the declaration names (``infra.resources.MessageKind``)
sits in the DLQ or on-failure queue it would reach, shaped as its producer
makes it; the peek, run as the runbook writes it, must describe it as that
kind and nothing else, and show an intake rejection's code and reason first.
"""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from chalicelib.orders.events import OrderEvent, event_id
from chalicelib.readings.chunks import encode_chunk, encode_row
from infra.provision import Provisioner
from infra.resources import MessageKind
from infra.stack import declare
from infra.stageconfig import StageConfig
from localcloud.runtime.destinations import failure_record
from localcloud.runtime.invoke import ERROR, Outcome
from ops.__main__ import main

ROW = ["1717200000.125", "lab-01", "wired", "gateway-a", "0.82", "probe-eu-1", "21.4"]
REJECTED = {
    "eventflow_rejected_code": {"DataType": "String", "StringValue": "unknown_product"},
    "eventflow_rejected_reason": {
        "DataType": "String",
        "StringValue": "no product 'demo-gizmo'",
    },
}
INTAKE_ORDER = {
    "type": "order_created",
    "idempotency_key": "partner-42",
    "data": {
        "customer_id": "c-7",
        "customer_email": "c-7@example.com",
        "items": [{"product_id": "demo-gizmo", "quantity": 1}],
    },
}


def peek_cli(*argv: str, stage: str = "local") -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--stage", stage, "dlq", "peek", *argv], console=Console(file=out, width=300))
    return code, out.getvalue()


def peeked(queue: str, stage: str = "local") -> dict:
    code, out = peek_cli(queue, "--json", stage=stage)
    assert code == 0, out
    (message,) = json.loads(out)["messages"]
    return message


def order_event() -> OrderEvent:
    return OrderEvent(
        event_id=event_id("o-1", 2),
        event_type="ORDER_STATUS_CHANGED",
        order_id="o-1",
        customer_id="c-7",
        customer_email="c-7@example.com",
        old_status="PENDING",
        new_status="CONFIRMED",
        items=[{"product_id": "demo-widget", "quantity": 2, "unit_price": "12.50"}],
        total="25.00",
        version=2,
        occurred_at="2026-12-02T10:00:00+00:00",
        reason=None,
    )


def stream_failure() -> dict:
    """Lambda's on-failure record of a stream batch (the local runtime writes the same)."""
    return {
        "requestContext": {
            "requestId": "7f1c",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:"
            "eventflow-local-publish_order_events",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 6,
        },
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "version": "1.0",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-0001",
            "startSequenceNumber": "100",
            "endSequenceNumber": "104",
            "batchSize": 5,
            "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/s",
        },
    }


def test_a_rejected_intake_order_is_shown_as_an_order_with_its_rejection_first(outputs, clients):
    clients.sqs.send_message(
        QueueUrl=outputs.queues["order-intake-dlq"]["url"],
        MessageBody=json.dumps(INTAKE_ORDER),
        MessageGroupId="c-7",
        MessageDeduplicationId="m-1",
        MessageAttributes=REJECTED,
    )

    message = peeked("order-intake")
    code, table = peek_cli("order-intake")

    assert message["rejected"] == {"code": "unknown_product", "reason": "no product 'demo-gizmo'"}
    assert message["summary"] == {
        "kind": "intake",
        "type": "order_created",
        "idempotency_key": "partner-42",
        "customer_id": "c-7",
        "order_id": None,
        "status": None,
        "items": 1,
    }
    assert code == 0
    assert "chunk" not in table and "not an" not in table
    rejection = table.index("rejected: unknown_product: no product 'demo-gizmo'")
    assert rejection < table.index("intake order_created (key partner-42) for customer c-7")


@pytest.mark.parametrize(
    "queue, body, summary",
    [
        (
            "ingest",
            encode_chunk("a" * 32, 1, 3, [encode_row(ROW)] * 4),
            {"kind": "chunk", "ingest_id": "a" * 32, "run": 1, "seq": 3, "rows": 4},
        ),
        (
            "s3-events",
            json.dumps(
                {
                    "Records": [
                        {
                            "eventName": "ObjectCreated:Put",
                            "s3": {
                                "bucket": {"name": "uploads"},
                                "object": {"key": "incoming/day+1.csv", "eTag": "abc"},
                            },
                        }
                    ]
                }
            ),
            {"kind": "s3-notification"},
        ),
        *(
            (
                consumer,
                order_event().body(),
                {"kind": "order-event", "event_type": "ORDER_STATUS_CHANGED", "order_id": "o-1"},
            )
            for consumer in ("inventory", "notifications", "analytics")
        ),
        (
            "order-events-failed",
            json.dumps(stream_failure()),
            {
                "kind": "stream-failure",
                "function": "eventflow-local-publish_order_events",
                "records": 5,
                "first_sequence": "100",
                "last_sequence": "104",
            },
        ),
    ],
)
def test_each_queue_is_decoded_as_what_it_carries(outputs, clients, queue, body, summary):
    failure_queue = queue == "order-events-failed"
    url = outputs.queues[queue if failure_queue else f"{queue}-dlq"]["url"]
    fifo = {"MessageGroupId": "g", "MessageDeduplicationId": "d"} if url.endswith(".fifo") else {}
    clients.sqs.send_message(QueueUrl=url, MessageBody=body, **fifo)

    message = peeked(queue)

    assert message["rejected"] is None
    assert summary.items() <= message["summary"].items(), message["summary"]
    code, table = peek_cli(queue)
    assert code == 0 and "not a" not in table


@pytest.mark.parametrize(
    "queue, expected",
    [
        ("order-intake", "not an order intake message: the body is not JSON"),
        ("inventory", "not an order event: message is not an order event"),
        ("ingest", "not a readings chunk"),
        ("order-events-failed", "not a stream batch's on-failure record"),
    ],
)
def test_a_body_that_is_not_what_the_queue_carries_says_so(outputs, clients, queue, expected):
    failure_queue = queue == "order-events-failed"
    url = outputs.queues[queue if failure_queue else f"{queue}-dlq"]["url"]
    fifo = {"MessageGroupId": "g", "MessageDeduplicationId": "d"} if url.endswith(".fifo") else {}
    clients.sqs.send_message(QueueUrl=url, MessageBody="{oops", **fifo)

    message = peeked(queue)

    assert message["summary"]["kind"] == "unknown"
    assert message["summary"]["problem"].startswith(expected), message["summary"]


def test_an_intake_message_nested_thousands_deep_is_shown_as_unreadable():
    from ops.decode import summarize

    body = '{"type": "order_created", "data": ' + "[" * 5000 + "]" * 5000 + "}"
    summary = summarize(body, MessageKind.ORDER_INTAKE)
    assert summary["kind"] == "unknown"
    assert "deeper than 32 levels" in summary["problem"]


def test_an_ingest_the_s3_trigger_gave_up_on_is_decoded_as_lambdas_record(clients):
    stack = declare(StageConfig.load("dev"))
    outputs = Provisioner(clients).apply(stack)
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": stack.settings.uploads_bucket},
                    "object": {"key": "incoming/a.csv", "eTag": "abc"},
                },
            }
        ]
    }
    record = failure_record(
        event=event,
        outcome=Outcome(ERROR, error="ClientError: AccessDenied"),
        attempts=3,
        request_id="r-1",
        function_name="eventflow-dev-ingest_from_s3",
        region="us-east-1",
    )
    url = outputs.queues["ingest-failures"]["url"]
    clients.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

    message = peeked("ingest-failures", stage="dev")

    assert stack.carries(stack.failure_queue("ingest-failures").name) is (
        MessageKind.ASYNC_INVOKE_FAILURE
    )
    summary = message["summary"]
    assert (summary["kind"], summary["attempts"]) == ("async-failure", 3)
    assert summary["objects"][0]["key"] == "incoming/a.csv"
