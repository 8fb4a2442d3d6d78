"""What one AWS API call is billed as: the units that ``benchmarks/prices.json`` prices.

AWS does not bill calls but units, which a call's parameters decide:
DynamoDB bills request units per item (two per item in a transaction, half
for an eventually consistent read), SQS and SNS bill each 64 KiB chunk of a
request's payload as one request (FIFO queues and topics at their own rate),
S3 bills writes and reads at two rates, SES bills each recipient of an email.
:func:`units` maps one call to those units. It is a model, and says where it
simplifies: items are taken to be under 1 KiB (readings and orders are a few
hundred bytes), a Query or Scan to read under 4 KiB, and control-plane calls
(GetQueueUrl, DescribeTable...) and STS to be free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

CHUNK_BYTES = 64 * 1024

_DDB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
_DDB_READS = frozenset({"GetItem", "Query", "Scan"})
_SQS_PAYLOAD = frozenset({"SendMessage", "SendMessageBatch"})
_SQS_PLAIN = frozenset(
    {
        "ReceiveMessage",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
        "GetQueueAttributes",
        "GetQueueUrl",
        "PurgeQueue",
    }
)
_S3_TIER1 = frozenset(
    {
        "PutObject",
        "CopyObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "ListObjects",
        "ListObjectsV2",
    }
)
_S3_TIER2 = frozenset({"GetObject", "HeadObject"})
_FREE = frozenset({"sts", "dynamodbstreams"})


def chunks(payload_bytes: int) -> int:
    """SQS and SNS requests billed for a payload: one per started 64 KiB, at least one."""
    return max(1, math.ceil(payload_bytes / CHUNK_BYTES))


def _attribute_bytes(attributes: Mapping[str, Any] | None) -> int:
    # Message attributes count towards the billed payload: name, type and value.
    total = 0
    for name, value in (attributes or {}).items():
        total += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        total += len(str(value.get("StringValue", "")).encode())
        total += len(value.get("BinaryValue", b"") or b"")
    return total


def _message_bytes(entry: Mapping[str, Any], body_key: str) -> int:
    return len(str(entry.get(body_key, "")).encode()) + _attribute_bytes(
        entry.get("MessageAttributes")
    )


def _dynamodb(operation: str, params: Mapping[str, Any]) -> dict[str, float]:
    read = 1.0 if params.get("ConsistentRead") else 0.5
    if operation == "BatchWriteItem":
        return {"dynamodb.wru": float(sum(len(r) for r in params["RequestItems"].values()))}
    if operation in _DDB_WRITES:
        return {"dynamodb.wru": 1.0}
    if operation == "TransactWriteItems":
        return {"dynamodb.wru": 2.0 * len(params["TransactItems"])}
    if operation == "BatchGetItem":
        return {
            "dynamodb.rru": sum(
                len(t["Keys"]) * (1.0 if t.get("ConsistentRead") else 0.5)
                for t in params["RequestItems"].values()
            )
        }
    if operation == "TransactGetItems":
        return {"dynamodb.rru": 2.0 * len(params["TransactItems"])}
    if operation in _DDB_READS:
        return {"dynamodb.rru": read}
    return {}  # the control plane: DescribeTable and the like


def units(service: str, operation: str, params: Mapping[str, Any]) -> dict[str, float]:
    """The billed units of one call, by ``prices.json`` dimension; unknown calls say so."""
    if service in _FREE:
        return {}
    if service == "dynamodb":
        return _dynamodb(operation, params)
    if service == "sqs":
        kind = (
            "sqs.fifo_requests"
            if str(params.get("QueueUrl", "")).endswith(".fifo")
            else ("sqs.standard_requests")
        )
        if operation == "SendMessage":
            return {kind: float(chunks(_message_bytes(params, "MessageBody")))}
        if operation == "SendMessageBatch":
            payload = sum(_message_bytes(e, "MessageBody") for e in params["Entries"])
            return {kind: float(chunks(payload))}
        if operation in _SQS_PLAIN:
            return {kind: 1.0}
    if service == "sns" and operation in ("Publish", "PublishBatch"):
        fifo = str(params.get("TopicArn", "")).endswith(".fifo")
        kind = "sns.fifo_publish_requests" if fifo else "sns.standard_publish_requests"
        entries = params.get("PublishBatchRequestEntries") or [params]
        return {kind: float(chunks(sum(_message_bytes(e, "Message") for e in entries)))}
    if service == "s3":
        if operation in _S3_TIER1:
            return {"s3.tier1_requests": 1.0}
        if operation in _S3_TIER2:
            return {"s3.tier2_requests": 1.0}
    if service in ("ses", "sesv2") and operation in ("SendEmail", "SendRawEmail"):
        destination = params.get("Destination") or {}
        recipients = (
            sum(len(destination.get(k, [])) for k in ("ToAddresses", "CcAddresses", "BccAddresses"))
            or len(params.get("Destinations", []))
            or 1
        )
        return {"ses.emails": float(recipients)}
    return {f"unpriced.{service}.{operation}": 1.0}


def esm_sqs_units(messages: list[Mapping[str, Any]], fifo: bool) -> dict[str, float]:
    """What Lambda's own poller is billed for one batch it delivered: the receive
    (by the 64 KiB chunks it returned) and one DeleteMessageBatch."""
    kind = "sqs.fifo_requests" if fifo else "sqs.standard_requests"
    payload = sum(len(str(m.get("Body", m.get("body", ""))).encode()) for m in messages)
    return {kind: float(chunks(payload) + 1)}
