"""Small helpers over the low-level DynamoDB client."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.clock import Backoff
from chalicelib.errors import UnprocessedItemsError

BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def is_condition_failure(error: ClientError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


def cancellation_codes(error: ClientError) -> list[str]:
    """Per item of a cancelled TransactWriteItems: ``ConditionalCheckFailed``,
    ``TransactionConflict``, ``None``..., in the order of the request's items."""
    if error_code(error) != "TransactionCanceledException":
        return []
    reasons = error.response.get("CancellationReasons", [])
    return [reason.get("Code") or "None" for reason in reasons]


def batch_put(
    client: Any,
    table: str,
    items: Iterable[dict[str, Any]],
    key_names: tuple[str, ...],
    backoff: Backoff,
) -> int:
    """Put every item, 25 per BatchWriteItem, retrying UnprocessedItems with backoff.

    BatchWriteItem rejects a request that names one key twice, so within each
    request the last item for a key wins, as it would with sequential puts.
    Returns the number of BatchWriteItem calls made. Raises
    :class:`UnprocessedItemsError` when items are still unprocessed after the
    last attempt; every put is idempotent, so the caller may simply retry.
    """
    calls = 0
    batch: dict[tuple, dict[str, Any]] = {}
    for item in items:
        key = tuple(item[name]["S"] for name in key_names)
        batch.pop(key, None)
        batch[key] = item
        if len(batch) == BATCH_WRITE_LIMIT:
            calls += _write_batch(client, table, list(batch.values()), backoff)
            batch = {}
    if batch:
        calls += _write_batch(client, table, list(batch.values()), backoff)
    return calls


def _write_batch(client: Any, table: str, items: list[dict[str, Any]], backoff: Backoff) -> int:
    requests = {table: [{"PutRequest": {"Item": item}} for item in items]}
    for attempt in range(1, backoff.attempts + 1):
        response = client.batch_write_item(RequestItems=requests)
        requests = response.get("UnprocessedItems") or {}
        if not requests:
            return attempt
        if attempt < backoff.attempts:
            backoff.wait(attempt)
    left = sum(len(v) for v in requests.values())
    raise UnprocessedItemsError(
        f"{left} item(s) still unprocessed after {backoff.attempts} BatchWriteItem attempts"
    )


def batch_get(
    client: Any,
    table: str,
    keys: list[dict[str, Any]],
    attributes: tuple[str, ...],
    backoff: Backoff,
) -> list[dict[str, Any]]:
    """The items that exist among ``keys`` (strongly consistent), with ``attributes`` only.

    100 keys per BatchGetItem; UnprocessedKeys are retried with backoff, and
    :class:`UnprocessedItemsError` is raised when some are still left after
    the last attempt.
    """
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request = {
            table: {
                "Keys": keys[start : start + BATCH_GET_LIMIT],
                "ConsistentRead": True,
                "ProjectionExpression": ", ".join(names),
                "ExpressionAttributeNames": names,
            }
        }
        for attempt in range(1, backoff.attempts + 1):
            response = client.batch_get_item(RequestItems=request)
            found.extend(response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            if attempt < backoff.attempts:
                backoff.wait(attempt)
        else:
            left = sum(len(v["Keys"]) for v in request.values())
            raise UnprocessedItemsError(
                f"{left} key(s) still unprocessed after {backoff.attempts} BatchGetItem attempts"
            )
    return found
