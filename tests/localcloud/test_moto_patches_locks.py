"""Each lock of ``localcloud.motolocks`` keeps apart two requests that moto alone mixes up.

Every test runs one race against a real moto server twice: with everything
``motoprocess.prepare()`` installs, and with everything but the lock under
test. Without the lock the fault happens on every run (the first request is
held inside moto until the second has finished); with it, the second request
waits for the lock and the fault is gone. So a lock that stops applying, or
one that stops being needed, fails here.
"""

from __future__ import annotations

import json

import pytest
from moto.s3.utils import _VersionedKeyStore
from moto.sns.models import SNSBackend
from moto.sqs.models import Message

from localcloud import motolocks, mototransactions
from localcloud.motopatch import Patch, applied
from tests.localcloud.moto_patch_harness import (  # noqa: F401
    ACCOUNT,
    REGION,
    Hold,
    _endpoint,
    after_a_wait,
    client,
    every_patch_but,
    race,
)

WITH_AND_WITHOUT = pytest.mark.parametrize("with_lock", [True, False], ids=["locked", "unlocked"])


def installed(lock: Patch, with_lock: bool):
    return applied(*every_patch_but() if with_lock else every_patch_but(lock))


def _table(ddb, name: str, stream: bool = False) -> None:
    extra = {}
    if stream:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


@WITH_AND_WITHOUT
def test_dynamodb_two_only_if_absent_transactions_on_one_key_let_one_through(
    endpoint, monkeypatch, with_lock
):
    """DynamoDB: of two transactions that each create one key only if it is absent,
    exactly one succeeds (the Idempotency-Key race of POST /orders)."""
    ddb = client(endpoint, "dynamodb")
    name = f"claims-{with_lock}"
    _table(ddb, name)
    hold = Hold(monkeypatch, mototransactions, "_apply")  # checked, not yet written

    def claim() -> None:
        client(endpoint, "dynamodb").transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": name,
                        "Item": {"pk": {"S": "key"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            ]
        )

    with installed(motolocks.DYNAMODB_REQUESTS, with_lock):
        first, second, waited = race(hold, claim, claim, motolocks.DYNAMODB)
    succeeded = [o for o in (first, second) if o.error is None]
    assert waited == with_lock
    assert len(succeeded) == (1 if with_lock else 2)


@WITH_AND_WITHOUT
def test_streams_a_reader_never_sees_a_transaction_that_was_undone(
    endpoint, monkeypatch, with_lock
):
    """DynamoDB Streams: a cancelled transaction emits nothing, even for a reader that
    reads while it is being undone."""
    ddb, streams = client(endpoint, "dynamodb"), client(endpoint, "dynamodbstreams")
    name = f"streamed-{with_lock}"
    _table(ddb, name, stream=True)
    ddb.put_item(TableName=name, Item={"pk": {"S": "counter"}})  # no "n" to add to
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    # Held after its first write; the second is refused and the first undone.
    hold = Hold(monkeypatch, mototransactions, "_write", after=True)

    def refused_half_way() -> None:
        client(endpoint, "dynamodb").transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {"pk": {"S": "ghost"}}}},
                {
                    "Update": {
                        "TableName": name,
                        "Key": {"pk": {"S": "counter"}},
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )

    def read():
        return client(endpoint, "dynamodbstreams").get_records(ShardIterator=iterator)["Records"]

    with installed(motolocks.STREAM_REQUESTS, with_lock):
        first, second, waited = race(hold, refused_half_way, read, motolocks.DYNAMODB)
    assert first.error is not None  # cancelled: nothing stored
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "ghost"}})
    seen = [r["dynamodb"]["Keys"]["pk"]["S"] for r in second.value]
    assert waited == with_lock
    assert seen == ([] if with_lock else ["ghost"])


@WITH_AND_WITHOUT
def test_sqs_two_receives_never_get_one_message_both(endpoint, monkeypatch, with_lock):
    """SQS: a received message is invisible to every other receive for its visibility
    timeout."""
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName=f"receives-{with_lock}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="once")
    hold = Hold(monkeypatch, Message, "mark_received")  # chosen, not yet marked

    def receive():
        own = client(endpoint, "sqs")
        return own.receive_message(QueueUrl=url, VisibilityTimeout=60).get("Messages", [])

    with installed(motolocks.SQS_REQUESTS, with_lock):
        first, second, waited = race(hold, receive, receive, motolocks.SQS)
    bodies = [m["Body"] for m in first.value + second.value]
    assert waited == with_lock
    assert bodies == (["once"] if with_lock else ["once", "once"])


class _QueueCondition:
    """A queue's own condition (moto appends a message under it), with a point to hold
    a sender at: its duplicate check done, its message not yet appended."""

    def __init__(self, condition):
        self._condition = condition

    def entering(self) -> None:
        pass

    def __enter__(self):
        self.entering()
        return self._condition.__enter__()

    def __exit__(self, *exc):
        return self._condition.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._condition, name)


@WITH_AND_WITHOUT
def test_sqs_a_delivery_from_sns_and_a_send_with_one_deduplication_id_queue_one_message(
    endpoint, monkeypatch, with_lock
):
    """SQS FIFO: a message whose deduplication id is queued already is accepted and
    dropped, whether it comes from SendMessage or from an SNS FIFO topic."""
    from moto.sqs.models import sqs_backends

    sqs, sns = client(endpoint, "sqs"), client(endpoint, "sns")
    name = f"inventory-{with_lock}.fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    topic = sns.create_topic(Name=f"events-{with_lock}.fifo", Attributes={"FifoTopic": "true"})
    sns.subscribe(
        TopicArn=topic["TopicArn"],
        Protocol="sqs",
        Endpoint=queue_arn["Attributes"]["QueueArn"],
    )
    queue = sqs_backends[ACCOUNT][REGION].queues[name]
    condition = _QueueCondition(queue._messages_lock)
    monkeypatch.setattr(queue, "_messages_lock", condition)
    hold = Hold(monkeypatch, condition, "entering")
    same = {"MessageGroupId": "order-1", "MessageDeduplicationId": "event-1"}

    def deliver() -> None:
        client(endpoint, "sns").publish(TopicArn=topic["TopicArn"], Message="event", **same)

    def send() -> None:
        client(endpoint, "sqs").send_message(QueueUrl=url, MessageBody="event", **same)

    with installed(motolocks.SQS_ADDS_AND_WAITS, with_lock):
        first, second, waited = race(hold, deliver, send, motolocks.SQS)
    assert first.error is None and second.error is None
    depth = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert waited == with_lock
    assert int(depth["Attributes"]["ApproximateNumberOfMessages"]) == (1 if with_lock else 2)


@WITH_AND_WITHOUT
def test_s3_two_puts_of_one_key_keep_both_versions(endpoint, monkeypatch, with_lock):
    """S3: in a versioned bucket every PutObject of a key adds a version."""
    s3 = client(endpoint, "s3")
    bucket = f"uploads-{str(with_lock).lower()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # Held with the key's versions read, before the list is written back.
    hold = Hold(monkeypatch, _VersionedKeyStore, "setlist", when=lambda store, key, _: key == "k")

    def put(body: bytes):
        return lambda: client(endpoint, "s3").put_object(Bucket=bucket, Key="k", Body=body)

    with installed(motolocks.S3_REQUESTS, with_lock):
        first, second, waited = race(hold, put(b"one"), put(b"two"), motolocks.S3)
    assert first.error is None and second.error is None
    versions = s3.list_object_versions(Bucket=bucket, Prefix="k").get("Versions", [])
    assert waited == with_lock
    assert len(versions) == (2 if with_lock else 1)


@WITH_AND_WITHOUT
def test_sns_two_subscribes_of_one_endpoint_make_one_subscription(endpoint, monkeypatch, with_lock):
    """SNS: subscribing an endpoint that is subscribed already returns the existing
    subscription, so each message reaches the queue once."""
    sqs, sns = client(endpoint, "sqs"), client(endpoint, "sns")
    url = sqs.create_queue(QueueName=f"notifications-{with_lock}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    topic_arn = sns.create_topic(Name=f"order-events-{with_lock}")["TopicArn"]
    # Held once it found no subscription, before it adds one.
    hold = Hold(
        monkeypatch, SNSBackend, "_find_subscription", when=lambda found, *_: not found, after=True
    )

    def subscribe():
        own = client(endpoint, "sns")
        arn = queue_arn["Attributes"]["QueueArn"]
        return own.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    with installed(motolocks.SNS_REQUESTS, with_lock):
        first, second, waited = race(hold, subscribe, subscribe, motolocks.SNS)
        sns.publish(TopicArn=topic_arn, Message=json.dumps({"event": "created"}))
    assert first.error is None and second.error is None
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert waited == with_lock
    assert len(subscriptions) == (1 if with_lock else 2)
    assert len(received) == (1 if with_lock else 2)


@WITH_AND_WITHOUT
def test_sqs_a_long_poll_receives_a_message_sent_while_it_waits(endpoint, with_lock):
    """SQS: a receive with WaitTimeSeconds returns as soon as a message arrives."""
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName=f"long-poll-{with_lock}")["QueueUrl"]
    # Unlocked, the poll holds the SQS lock for all of its wait: a short one will do.
    wait = 20 if with_lock else 2

    def poll():
        own = client(endpoint, "sqs")
        return own.receive_message(QueueUrl=url, WaitTimeSeconds=wait).get("Messages", [])

    def send() -> None:
        client(endpoint, "sqs").send_message(QueueUrl=url, MessageBody="hello")

    with installed(motolocks.SQS_ADDS_AND_WAITS, with_lock):
        polled, sent, blocked = after_a_wait(poll, send, motolocks.SQS)
    assert polled.error is None and sent.error is None
    assert blocked == (not with_lock)
    assert [m["Body"] for m in polled.value] == (["hello"] if with_lock else [])
