"""What a stream mapping sends to its on-failure destination when it discards a batch."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from localcloud.runtime.streamreader import sequence_number

# The conditions under which Lambda discards a stream batch.
RETRY_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


def failure_record(
    function_arn: str,
    stream_arn: str,
    shard_id: str,
    attempts: int,
    batch: list[dict[str, Any]],
    condition: str,
) -> dict[str, Any]:
    """What Lambda sends to a stream mapping's on-failure destination."""

    def iso(record: dict[str, Any]) -> str:
        seconds = record["dynamodb"].get("ApproximateCreationDateTime", time.time())
        return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()

    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": sequence_number(batch[0]),
            "endSequenceNumber": sequence_number(batch[-1]),
            "approximateArrivalOfFirstRecord": iso(batch[0]),
            "approximateArrivalOfLastRecord": iso(batch[-1]),
            "batchSize": len(batch),
            "streamArn": stream_arn,
        },
    }
