"""On-failure destinations of asynchronous invocations, as Lambda writes them.

When Lambda has retried an asynchronous event (S3, SNS) as often as the
function's settings allow, it sends a *record* of it to the on-failure
destination and moves on: the event itself, what the function answered, and
how many times it tried. The local runtime does the same when the stack
declares :class:`~infra.functions.AsyncInvokeSettings` for the function;
``ops dlq peek`` and ``ops dlq replay`` read these records.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from localcloud.runtime.context import ACCOUNT_ID
from localcloud.runtime.invoke import TIMEOUT, Outcome


def failure_record(
    *,
    event: dict[str, Any],
    outcome: Outcome,
    attempts: int,
    request_id: str,
    function_name: str,
    region: str,
) -> dict[str, Any]:
    """The record Lambda sends after the last failed attempt (condition RetriesExhausted)."""
    if outcome.status == TIMEOUT:
        error_type, message = "Sandbox.Timedout", outcome.error or ""
    else:
        error_type, _, message = (outcome.error or "").partition(": ")
    now = datetime.now(UTC)
    return {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorMessage": message, "errorType": error_type},
    }


class SqsDestination:
    """Sends failure records to one SQS queue."""

    def __init__(self, sqs: Any, url: str, function_name: str, region: str):
        self.sqs, self.url = sqs, url
        self.function_name, self.region = function_name, region

    def __call__(
        self, event: dict[str, Any], outcome: Outcome, attempts: int, request_id: str
    ) -> None:
        record = failure_record(
            event=event,
            outcome=outcome,
            attempts=attempts,
            request_id=request_id,
            function_name=self.function_name,
            region=self.region,
        )
        self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps(record))
