"""Reads an orders table's real stream records (moto's) as Lambda would deliver them."""

from __future__ import annotations

from typing import Any

from localcloud.runtime.streams import lambda_record


def stream_records(services, after: str | None = None) -> list[dict[str, Any]]:
    """Every record of the orders table's stream, Lambda-shaped, after sequence ``after``."""
    ddb, streams = services.clients.dynamodb, services.clients("dynamodbstreams")
    arn = ddb.describe_table(TableName=services.settings.orders_table)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        args: dict[str, Any] = {"StreamArn": arn, "ShardId": shard["ShardId"]}
        if after:
            args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        else:
            args["ShardIteratorType"] = "TRIM_HORIZON"
        iterator = streams.get_shard_iterator(**args)["ShardIterator"]
        while iterator:
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += [lambda_record(r, arn) for r in response["Records"]]
            if not response["Records"]:
                break
            iterator = response.get("NextShardIterator")
    return records


def subscribe_queue(services, name: str, filter_policy: str | None = None) -> str:
    """A standard queue subscribed to the order-events topic with raw delivery; its URL."""
    sqs, sns = services.clients.sqs, services.clients.sns
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {"RawMessageDelivery": "true"}
    if filter_policy:
        attributes["FilterPolicy"] = filter_policy
    sns.subscribe(
        TopicArn=services.order_events_topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes=attributes,
    )
    return url


def received(services, url: str) -> list[dict[str, Any]]:
    sqs = services.clients.sqs
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return messages
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages += got
