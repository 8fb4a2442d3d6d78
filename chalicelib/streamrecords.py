"""DynamoDB Streams records in the shape Lambda hands them to a function.

``GetRecords`` (boto3) returns bytes and datetimes and omits the stream ARN;
Lambda's event carries base64 strings, epoch seconds and ``eventSourceARN``.
Pure functions over the standard library, so that the operator CLI (``ops``)
and the local cloud can both shape records without importing each other.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any


def _plain(value: Any) -> Any:
    """boto3 gives bytes and datetimes where Lambda's JSON has base64 and epoch seconds."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def lambda_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams record as Lambda puts it into ``event["Records"]``."""
    record = _plain(raw)
    record["eventSourceARN"] = stream_arn  # GetRecords omits it; Lambda adds it
    return record
