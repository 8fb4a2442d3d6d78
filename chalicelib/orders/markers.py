"""Processed-event markers: how a consumer applies an event's effect exactly once.

A consumer commits its effect (stock moved, a counter advanced) in the same
``TransactWriteItems`` as a marker ``{consumer}#{event_id}`` that must not
exist yet. A redelivered event finds the marker and the whole transaction is
cancelled, so the effect happens once however often SQS delivers the event.

Markers live in the idempotency table and expire through its TTL after
:data:`MARKER_TTL`: longer than an event can live in a queue and its DLQ
(SQS keeps a message at most 14 days), so no redelivery outlives its marker.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.clock import Clock
from chalicelib.dynamo import to_item
from chalicelib.orders.store import EXPIRES_AT, IDEMPOTENCY_PK

MARKER_TTL = timedelta(days=15)


def marker_id(consumer: str, event_id: str) -> str:
    return f"{consumer}#{event_id}"


def put_marker(table: str, consumer: str, event_id: str, clock: Clock) -> dict[str, Any]:
    """The ``TransactWriteItems`` entry that claims ``event_id`` for ``consumer``, once."""
    return {
        "Put": {
            "TableName": table,
            "Item": to_item(
                {
                    IDEMPOTENCY_PK: marker_id(consumer, event_id),
                    "processed_at": clock.iso_now(),
                    EXPIRES_AT: int((clock.now() + MARKER_TTL).timestamp()),
                }
            ),
            "ConditionExpression": "attribute_not_exists(#id)",
            "ExpressionAttributeNames": {"#id": IDEMPOTENCY_PK},
        }
    }


def is_processed(client: Any, table: str, consumer: str, event_id: str) -> bool:
    item = client.get_item(
        TableName=table,
        Key=to_item({IDEMPOTENCY_PK: marker_id(consumer, event_id)}),
        ConsistentRead=True,
    ).get("Item")
    return item is not None
