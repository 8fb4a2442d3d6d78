"""moto paths that replace or rebuild what a poller holds, which the local cloud leaves
alone because eventflow does not reach them (docs/local-cloud-semantics.md, "moto
paths that replace what a poller holds"). Each test pins moto's behaviour on a real
server, so that the table's "why harmless" stays true, or fails when moto changes.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from chalicelib.clock import Clock
from chalicelib.orders.store import ORDER_PK, OrderStore, StaleOrder
from localcloud import motoprocess
from localcloud.motopatch import applied
from tests.localcloud.moto_patch_harness import ACCOUNT, REGION, _endpoint, client  # noqa: F401


@pytest.fixture(autouse=True)
def prepared():
    with applied(*motoprocess.patches()):
        yield


def _streamed(ddb, streams, name: str, key: str = "pk") -> str:
    """Create ``name`` with a stream; an iterator at its end."""
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]


def _events(streams, iterator: str) -> list[tuple[str, list[str]]]:
    records = streams.get_records(ShardIterator=iterator)["Records"]
    return [(r["eventName"], sorted(r["dynamodb"].get("NewImage", {}))) for r in records]


def test_moto_emits_two_inserts_for_an_update_that_creates_an_item(endpoint):
    """DynamoDB emits one INSERT; moto emits the keys alone, then the whole item."""
    ddb, streams = client(endpoint, "dynamodb"), client(endpoint, "dynamodbstreams")
    iterator = _streamed(ddb, streams, "upserted")
    ddb.update_item(
        TableName="upserted",
        Key={"pk": {"S": "new"}},
        UpdateExpression="SET n = :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    assert _events(streams, iterator) == [("INSERT", ["pk"]), ("INSERT", ["n", "pk"])]


def test_an_order_update_never_creates_an_order_so_never_reaches_it(endpoint):
    """Every update eventflow makes on the orders table (the only table with a stream)
    is conditional on an existing order: on a missing one it fails and records nothing."""
    ddb, streams = client(endpoint, "dynamodb"), client(endpoint, "dynamodbstreams")
    iterator = _streamed(ddb, streams, "orders-paths", key=ORDER_PK)
    store = OrderStore(ddb, "orders-paths", "unused", Clock())
    with pytest.raises(StaleOrder):
        store.set_status("missing", expected_status="PENDING", expected_version=1, status="X")
    assert _events(streams, iterator) == []


def test_a_recreated_table_leaves_an_old_iterator_reading_nothing(endpoint):
    """Why `make run` must be restarted after a teardown: the new table's stream has the
    same shard id and first sequence number, and the old iterator never sees it."""
    ddb, streams = client(endpoint, "dynamodb"), client(endpoint, "dynamodbstreams")
    iterator = _streamed(ddb, streams, "recreated")
    ddb.delete_table(TableName="recreated")
    fresh = _streamed(ddb, streams, "recreated")
    ddb.put_item(TableName="recreated", Item={"pk": {"S": "after"}})
    assert _events(streams, iterator) == []
    assert _events(streams, fresh) == [("INSERT", ["pk"])]


def test_a_table_that_had_a_stream_cannot_get_a_new_shard(endpoint):
    """UpdateTable cannot replace the shard an iterator reads: enabling a stream again is
    refused, and disabling one breaks every later write (eventflow does neither)."""
    ddb, streams = client(endpoint, "dynamodb"), client(endpoint, "dynamodbstreams")
    _streamed(ddb, streams, "restreamed")
    with pytest.raises(ClientError) as again:
        ddb.update_table(
            TableName="restreamed",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
    assert again.value.response["Error"]["Code"] == "ResourceInUseException"
    ddb.update_table(TableName="restreamed", StreamSpecification={"StreamEnabled": False})
    with pytest.raises(ClientError) as broken:
        ddb.put_item(TableName="restreamed", Item={"pk": {"S": "after"}})
    assert broken.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_an_existing_queue_is_changed_in_place_keeping_its_messages(endpoint):
    """Provisioning again (create_queue, set_queue_attributes) under running pollers
    keeps the queue object that long polls wait on, and its messages."""
    from moto.sqs.models import sqs_backends

    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="reprovisioned")["QueueUrl"]
    before = sqs_backends[ACCOUNT][REGION].queues["reprovisioned"]
    sqs.send_message(QueueUrl=url, MessageBody="kept")
    assert sqs.create_queue(QueueName="reprovisioned")["QueueUrl"] == url
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "7"})
    assert sqs_backends[ACCOUNT][REGION].queues["reprovisioned"] is before
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["kept"]


def test_an_existing_topic_is_returned_not_replaced(endpoint):
    sns = client(endpoint, "sns")
    arn = sns.create_topic(Name="reprovisioned")["TopicArn"]
    queue = client(endpoint, "sqs").create_queue(QueueName="subscriber")["QueueUrl"]
    sns.subscribe(
        TopicArn=arn, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:subscriber"
    )
    assert sns.create_topic(Name="reprovisioned")["TopicArn"] == arn
    assert len(sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]) == 1
    assert queue
