"""The local cloud's DynamoDB transactions are all or nothing, as DynamoDB's are
(``localcloud.mototransactions``), checked against moto itself."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from localcloud import mototransactions
from localcloud.motopatch import applied

CONFIG = Config(account_id_endpoint_mode="disabled", retries={"max_attempts": 1})


@pytest.fixture
def patched() -> Iterator[None]:
    with applied(mototransactions.TRANSACTIONS):
        yield


@pytest.fixture
def table() -> Iterator[tuple]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1", config=CONFIG)
        streams = boto3.client("dynamodbstreams", region_name="us-east-1", config=CONFIG)
        dynamodb.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        arn = dynamodb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        yield dynamodb, streams, arn


def _iterator(streams, arn: str) -> str:
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]


def _item(pk: str, sk: str = "-", **extra: dict) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}, **extra}


def _events(streams, iterator: str) -> list[tuple[str, str]]:
    records = streams.get_records(ShardIterator=iterator)["Records"]
    return [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records]


def _keys(dynamodb) -> list[str]:
    return sorted(i["pk"]["S"] for i in dynamodb.scan(TableName="t")["Items"])


def test_install_replaces_the_method_moto_calls_and_uninstall_restores_it():
    original = DynamoDBBackend.transact_write_items
    with applied(mototransactions.TRANSACTIONS):
        assert DynamoDBBackend.transact_write_items is not original
        assert mototransactions.TRANSACTIONS.installed()
    assert DynamoDBBackend.transact_write_items is original
    assert not mototransactions.TRANSACTIONS.installed()


def test_moto_alone_strands_open_iterators_on_a_cancelled_transaction(table):
    """The fault the patch removes, shown on moto as shipped (so that a moto that
    fixes it tells us the patch can go)."""
    dynamodb, streams, arn = table
    dynamodb.put_item(TableName="t", Item=_item("a"))
    iterator = _iterator(streams, arn)
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": _item("ghost")}},
                {
                    "Put": {
                        "TableName": "t",
                        "Item": _item("a"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    dynamodb.put_item(TableName="t", Item=_item("b"))
    assert _events(streams, iterator) == [("INSERT", "ghost")]


def test_a_cancelled_transaction_leaves_no_item_no_record_and_the_same_shard(table, patched):
    dynamodb, streams, arn = table
    dynamodb.put_item(TableName="t", Item=_item("a", n={"N": "1"}))
    iterator = _iterator(streams, arn)
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": _item("ghost")}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": _item("a"),
                        "UpdateExpression": "SET n = :two",
                        "ConditionExpression": "n = :zero",
                        "ExpressionAttributeValues": {":two": {"N": "2"}, ":zero": {"N": "0"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        )
    error = cancelled.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert error["CancellationReasons"] == [
        {"Code": "None"},
        {
            "Code": "ConditionalCheckFailed",
            "Message": "The conditional request failed",
            "Item": _item("a", n={"N": "1"}),
        },
    ]
    dynamodb.put_item(TableName="t", Item=_item("b"))
    assert _events(streams, iterator) == [("INSERT", "b")]
    assert _keys(dynamodb) == ["a", "b"]
    assert dynamodb.get_item(TableName="t", Key=_item("a"))["Item"]["n"] == {"N": "1"}


def test_a_write_refused_after_the_checks_is_undone_in_place(table, patched):
    """A condition can pass and a write still fail (an update expression invalid for
    the item): what the transaction wrote before it is put back, records removed."""
    dynamodb, streams, arn = table
    dynamodb.put_item(TableName="t", Item=_item("a", n={"S": "text"}))
    dynamodb.put_item(TableName="t", Item=_item("kept", v={"N": "1"}))
    iterator = _iterator(streams, arn)
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": _item("ghost")}},
                {"Put": {"TableName": "t", "Item": _item("kept", v={"N": "2"})}},
                {"Delete": {"TableName": "t", "Key": _item("a", sk="other")}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": _item("a"),
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )
    assert _keys(dynamodb) == ["a", "kept"]
    assert dynamodb.get_item(TableName="t", Key=_item("kept"))["Item"]["v"] == {"N": "1"}
    dynamodb.put_item(TableName="t", Item=_item("b"))
    assert _events(streams, iterator) == [("INSERT", "b")]


def test_a_committed_transaction_writes_everything_once(table, patched):
    dynamodb, streams, arn = table
    dynamodb.put_item(TableName="t", Item=_item("gone"))
    dynamodb.put_item(TableName="t", Item=_item("counter", n={"N": "1"}))
    dynamodb.put_item(TableName="t", Item=_item("guard"))
    iterator = _iterator(streams, arn)
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": "t",
                    "Item": _item("new"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Delete": {"TableName": "t", "Key": _item("gone")}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": _item("counter"),
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": "t",
                    "Key": _item("guard"),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ]
    )
    assert _events(streams, iterator) == [
        ("INSERT", "new"),
        ("REMOVE", "gone"),
        ("MODIFY", "counter"),
    ]
    assert _keys(dynamodb) == ["counter", "guard", "new"]
    assert dynamodb.get_item(TableName="t", Key=_item("counter"))["Item"]["n"] == {"N": "2"}


def test_structural_errors_are_raised_before_anything_is_written(table, patched):
    dynamodb, _, _ = table
    with pytest.raises(ClientError) as twice:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": _item("x")}},
                {"Delete": {"TableName": "t", "Key": _item("x")}},
            ]
        )
    assert twice.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as missing:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": _item("y")}},
                {"Put": {"TableName": "nope", "Item": _item("z")}},
            ]
        )
    assert missing.value.response["Error"]["Code"] in (
        "TransactionCanceledException",
        "ResourceNotFoundException",
    )
    assert _keys(dynamodb) == []
