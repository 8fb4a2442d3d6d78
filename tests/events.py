"""Lambda-shaped event builders with unique message ids (Chalice's share one id)."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote_plus

INGEST_QUEUE = "eventflow-local-ingest"
S3_EVENTS_QUEUE = "eventflow-local-s3-events"


def sqs_record(
    body: str,
    receive_count: int = 1,
    message_id: str | None = None,
    queue: str = INGEST_QUEUE,
) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1717200000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1717200000001",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
        "awsRegion": "us-east-1",
    }


def sqs_event(*bodies: str, queue: str = INGEST_QUEUE) -> dict[str, Any]:
    """An SQS event from ``queue`` (the ingest queue, or ``S3_EVENTS_QUEUE``)."""
    return {"Records": [sqs_record(body, queue=queue) for body in bodies]}


def s3_record(
    bucket: str,
    key: str,
    etag: str,
    event: str = "ObjectCreated:Put",
    version_id: str | None = None,
) -> dict[str, Any]:
    """An S3 event record; AWS adds ``versionId`` for a versioned bucket (moto does not)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": event,
        "s3": {
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            # S3 URL-encodes keys in notifications.
            "object": {"key": quote_plus(key), "eTag": etag, "size": 1},
        },
    }
    if version_id is not None:
        record["s3"]["object"]["versionId"] = version_id
    return record


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def s3_notification_body(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})
