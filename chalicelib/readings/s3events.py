"""Turns S3 notifications, direct or delivered through SQS, into object references."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from chalicelib import jsontext
from chalicelib.config import REJECTS_PREFIX, UPLOADS_PREFIX
from chalicelib.errors import EventflowError
from chalicelib.readings.jobs import ObjectRef


class NotificationFormatError(EventflowError):
    """An SQS message on the S3-events queue is not an S3 notification."""


def is_ingestible(key: str) -> bool:
    # Only uploads: rejects reports live in the same bucket and must never loop back.
    return (
        key.startswith(UPLOADS_PREFIX)
        and not key.startswith(REJECTS_PREFIX)
        and key.lower().endswith(".csv")
    )


def refs_from_records(records: list[dict[str, Any]]) -> list[ObjectRef]:
    """Every ObjectCreated record for an ingestible key; S3 URL-encodes keys in events."""
    refs = []
    for record in records:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        key = unquote_plus(s3["object"]["key"])
        if not is_ingestible(key):
            continue
        refs.append(
            ObjectRef(
                bucket=s3["bucket"]["name"],
                key=key,
                version_id=s3["object"].get("versionId") or None,
                etag=s3["object"].get("eTag") or None,
            )
        )
    return refs


def refs_from_sqs_body(body: str) -> list[ObjectRef]:
    """An S3 notification delivered as an SQS message body; ``s3:TestEvent`` yields nothing."""
    try:
        message = jsontext.loads(body)
    except ValueError:
        raise NotificationFormatError("message body is not JSON") from None
    if not isinstance(message, dict):
        raise NotificationFormatError("message body is not an S3 notification")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise NotificationFormatError("message body has no Records")
    try:
        return refs_from_records(records)
    except (KeyError, TypeError) as error:
        raise NotificationFormatError(f"S3 record is malformed: {error!r}") from None
