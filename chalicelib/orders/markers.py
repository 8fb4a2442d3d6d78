"""Processed-event markers: how a consumer applies an event's effect exactly once.

A consumer commits its effect (stock moved, a counter advanced) in the same
``TransactWriteItems`` as a marker ``{consumer}#{event_id}`` that must not
exist yet. A redelivered event finds the marker and the whole transaction is
cancelled, so the effect happens once however often SQS delivers the event.

:func:`commit_once` runs that transaction, the marker first, and tells a
redelivery (the marker exists) from a failure; a cancellation for a reason a
pause can clear (:data:`RETRYABLE`) is retried with backoff when asked.

Markers live in the idempotency table and expire through its TTL after
:data:`~chalicelib.config.MARKER_TTL`: longer than an event can live in a queue
and its DLQ (SQS keeps a message at most 14 days), so no redelivery outlives
its marker.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import Backoff, Clock
from chalicelib.config import MARKER_TTL
from chalicelib.dynamo import cancellation_codes, to_item
from chalicelib.orders.keys import EXPIRES_AT, IDEMPOTENCY_PK, marker_id

# Cancellation reasons that a retry after a pause can clear.
RETRYABLE = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


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


def event_marker(consumer: str, event_id: str, services: Any) -> dict[str, Any]:
    """:func:`put_marker` for ``consumer`` in the stage's idempotency table."""
    return put_marker(services.settings.idempotency_table, consumer, event_id, services.clock)


def commit_once(
    client: Any,
    marker: dict[str, Any],
    items: list[dict[str, Any]],
    *,
    attempts: int = 1,
    backoff: Backoff | None = None,
) -> bool:
    """Commit ``marker`` (first) and ``items`` in one ``TransactWriteItems``.

    Returns False, having changed nothing, when the marker exists: the event
    was applied before. A cancellation for a :data:`RETRYABLE` reason is tried
    again after ``backoff``, up to ``attempts`` tries in all.

    Raises the ``ClientError`` of any other failure, or of the last try.
    """
    attempt = 1
    while True:
        try:
            client.transact_write_items(TransactItems=[marker, *items])
            return True
        except ClientError as error:
            codes = cancellation_codes(error)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return False
            if attempt >= attempts or backoff is None or not RETRYABLE & set(codes):
                raise
        backoff.wait(attempt)
        attempt += 1
