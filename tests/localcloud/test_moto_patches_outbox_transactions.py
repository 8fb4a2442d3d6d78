"""The outbox's notes on each email (``localcloud.outbox``) and all-or-nothing
transactions (``localcloud.mototransactions``), each shown against a real moto
server with and without its patch."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest

from localcloud import mototransactions, outbox
from localcloud.motopatch import applied
from tests.localcloud.moto_patch_harness import (  # noqa: F401
    LIMIT_SECONDS,
    Outcome,
    _endpoint,
    client,
    every_patch_but,
)

WITH_AND_WITHOUT = pytest.mark.parametrize("patched", [True, False], ids=["patched", "moto"])


@WITH_AND_WITHOUT
def test_the_outbox_shows_both_body_parts_and_when_each_mail_was_sent(endpoint, patched):
    """SES keeps both parts of a message; moto keeps one (the HTML) and no time."""
    ses = client(endpoint, "ses")
    sender, to = "shop@example.com", f"ann-{patched}@example.com"
    ses.verify_email_identity(EmailAddress=sender)
    with applied(*every_patch_but() if patched else every_patch_but(outbox.SEND_EMAIL)):
        ses.send_email(
            Source=sender,
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": "Order received"},
                "Body": {"Text": {"Data": "plain"}, "Html": {"Data": "<p>html</p>"}},
            },
        )
    with urllib.request.urlopen(f"{endpoint}{outbox.PATH}?email={to}", timeout=10) as response:
        [mail] = json.load(response)["messages"]
    if patched:
        assert mail["Body"] == {"text_part": "plain", "html_part": "<p>html</p>"}
        assert mail["Timestamp"].endswith("Z")
    else:
        assert mail["Body"] == {"text_part": "<p>html</p>", "html_part": None}
        assert mail["Timestamp"] is None


def _reservation(table: str) -> dict:
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": "gadget"}},
            "UpdateExpression": "SET stock = stock - :one",
            "ConditionExpression": "stock >= :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


@WITH_AND_WITHOUT
def test_an_open_iterator_reads_on_after_two_clients_race_for_the_last_unit(endpoint, patched):
    """DynamoDB: the losing transaction changes nothing, so a stream reader that kept
    its iterator (as Lambda's poller does) sees the winner's write and every later one."""
    ddb, streams = client(endpoint, "dynamodb"), client(endpoint, "dynamodbstreams")
    table = f"products-{patched}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    ddb.put_item(TableName=table, Item={"pk": {"S": "gadget"}, "stock": {"N": "1"}})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
    )["ShardIterator"]
    start = threading.Barrier(2, timeout=LIMIT_SECONDS)

    def reserve() -> None:
        own = client(endpoint, "dynamodb")
        start.wait()
        own.transact_write_items(TransactItems=[_reservation(table)])

    patches = every_patch_but() if patched else every_patch_but(mototransactions.TRANSACTIONS)
    with applied(*patches):
        racers = [Outcome(reserve), Outcome(reserve)]
        for racer in racers:
            racer.thread.start()
        for racer in racers:
            racer.thread.join(LIMIT_SECONDS)
        ddb.put_item(TableName=table, Item={"pk": {"S": "widget"}, "stock": {"N": "5"}})
        records = streams.get_records(ShardIterator=iterator)["Records"]
    codes = sorted(r.error.response["Error"]["Code"] if r.error else "reserved" for r in racers)
    assert codes == ["TransactionCanceledException", "reserved"]
    stock = ddb.get_item(TableName=table, Key={"pk": {"S": "gadget"}})["Item"]["stock"]
    assert stock == {"N": "0"}
    seen = [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records]
    if patched:
        assert seen == [("MODIFY", "gadget"), ("INSERT", "widget")]
    else:  # stranded on the table object that the cancelled transaction replaced
        assert ("INSERT", "widget") not in seen
