"""``ops events``: replaying the batches the stream handler gave up on, and republishing."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from chalicelib.orders import events, service
from chalicelib.orders.model import OrderRequest
from chalicelib.orders.states import Actor, Status
from chalicelib.services import Services
from ops.__main__ import main
from tests.orders.helpers import order_body, seed_products
from tests.orders.streams import received, stream_records, subscribe_queue


@pytest.fixture
def shop(target):
    services = Services(target.stage_config.settings(), clients=target.clients)
    seed_products(services)
    return services


def ops(*args: str) -> tuple[int, str]:
    console = Console(record=True, width=200)
    code = main(["--stage", "local", *args], console=console)
    return code, console.export_text()


def failure_description(records, condition="RetryAttemptsExhausted") -> str:
    """What Lambda sends a stream mapping's on-failure destination (no records, a range)."""
    first, last = records[0], records[-1]
    return json.dumps(
        {
            "requestContext": {"condition": condition, "approximateInvokeCount": 6},
            "DDBStreamBatchInfo": {
                "shardId": "shard-from-lambda",
                "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
                "batchSize": len(records),
                "streamArn": first["eventSourceARN"],
            },
        }
    )


def test_replay_publishes_the_described_records_and_clears_the_description(target, shop):
    placed = [
        service.place_order(OrderRequest.model_validate(order_body(widget=n)), None, shop)[0]
        for n in (1, 2, 3)
    ]
    records = stream_records(shop)
    shard = target.clients("dynamodbstreams").describe_stream(
        StreamArn=records[0]["eventSourceARN"]
    )["StreamDescription"]["Shards"][0]["ShardId"]
    body = json.loads(failure_description(records[:2]))
    body["DDBStreamBatchInfo"]["shardId"] = shard
    failed_url = target.outputs.queues["order-events-failed"]["url"]
    target.clients.sqs.send_message(QueueUrl=failed_url, MessageBody=json.dumps(body))
    tap = subscribe_queue(shop, "tap-replay")

    code, shown = ops("events", "failed")
    assert code == 0 and "RetryAttemptsExhausted" in shown
    code, output = ops("events", "replay")
    assert code == 0, output
    got = [json.loads(m["Body"]) for m in received(shop, tap)]
    # Exactly the described range: the first two orders, not the third.
    assert [e["order_id"] for e in got] == [o["order_id"] for o in placed[:2]]
    assert ops("events", "replay", "--json")[0] == 0  # nothing left, nothing kept
    visible = target.clients.sqs.get_queue_attributes(
        QueueUrl=failed_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert visible == "0"


def test_an_unreadable_description_is_kept_and_the_command_fails(target, shop):
    failed_url = target.outputs.queues["order-events-failed"]["url"]
    target.clients.sqs.send_message(QueueUrl=failed_url, MessageBody='{"something": "else"}')
    code, output = ops("events", "replay")
    assert code == 1 and "unreadable description" in output


def test_a_kept_description_is_visible_again_as_soon_as_the_replay_ends(target, shop):
    # GIVEN a description the replay cannot use
    failed_url = target.outputs.queues["order-events-failed"]["url"]
    sqs = target.clients.sqs
    sqs.send_message(QueueUrl=failed_url, MessageBody='{"something": "else"}')
    # WHEN the replay keeps it
    code, output = ops("events", "replay")
    assert code == 1 and "kept" in output
    # THEN the next look (the alarm, `events failed`, another replay) sees it at once,
    # not after the replay's visibility timeout
    again = sqs.receive_message(QueueUrl=failed_url, WaitTimeSeconds=0, VisibilityTimeout=0)
    assert [m["Body"] for m in again.get("Messages", [])] == ['{"something": "else"}']
    code, output = ops("events", "replay", "--json")
    assert code == 1 and json.loads(output)["kept"][0]["reason"].startswith("unreadable")


def test_republish_rebuilds_the_latest_event_from_the_table(target, shop):
    order, _ = service.place_order(OrderRequest.model_validate(order_body()), None, shop)
    service.change_status(order["order_id"], Status.CANCELLED, Actor.CLIENT, shop)
    tap = subscribe_queue(shop, "tap-republish")
    code, _ = ops("events", "republish", order["order_id"])
    assert code == 0
    [event] = [json.loads(m["Body"]) for m in received(shop, tap)]
    # The same event the stream handler produced for version 2: same id, same body.
    from_stream = events.event_from_record(stream_records(shop)[-1])
    assert event == json.loads(from_stream.body())
    assert (event["event_type"], event["old_status"]) == ("ORDER_CANCELLED", "PENDING")
    assert ops("events", "republish", "0" * 32)[0] == 1


ODD_BODIES = ["not json at all", "[1, 2]", '"a string"', "[" * 5_000 + "]" * 5_000]


def test_descriptions_that_are_not_lambdas_are_listed_and_kept_not_a_crash(target, shop):
    # GIVEN bodies in the on-failure queue that Lambda never wrote (a test message,
    # another sender's JSON, a body nested deeper than Python's parser recurses)
    failed_url = target.outputs.queues["order-events-failed"]["url"]
    for body in ODD_BODIES:
        target.clients.sqs.send_message(QueueUrl=failed_url, MessageBody=body)
    # WHEN the operator looks at them and replays
    code, output = ops("events", "failed", "--json")
    # THEN each is listed with what is wrong with it
    assert code == 0, output
    batches = json.loads(output)["batches"]
    assert len(batches) == len(ODD_BODIES)
    assert all(b["problem"] for b in batches) and all(b["condition"] is None for b in batches)
    # AND the replay keeps each one, naming it unreadable, and fails
    code, output = ops("events", "replay", "--json")
    kept = json.loads(output)["kept"]
    assert code == 1 and len(kept) == len(ODD_BODIES)
    assert all(k["reason"].startswith("unreadable") for k in kept)
