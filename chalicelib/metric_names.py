"""The names of the EMF metrics the functions publish (:func:`chalicelib.observability.count`).

One constant per metric, so a handler, the operator's status view
(``ops/status.py``) and the local console read the same name. ``infra/alarms.py``
spells the names it alarms and charts on out as text; ``tests/test_metric_names.py``
checks that each of those is a name defined here. The analytics consumer's
per-counter metrics are derived from its counters (``chalicelib.orders.analytics``).
"""

from __future__ import annotations

# Orders: the API and the partner intake queue.
ORDERS_PLACED = "OrdersPlaced"
INTAKE_REJECTED = "IntakeRejected"
INTAKE_FAILURES = "IntakeFailures"

# Orders: the stream publisher.
ORDER_EVENTS_PUBLISHED = "OrderEventsPublished"
ORDER_EVENT_RECORDS_FAILED = "OrderEventRecordsFailed"

# Orders: the three order-event consumers.
INVENTORY_FAILURES = "InventoryFailures"
NOTIFICATION_FAILURES = "NotificationFailures"
ANALYTICS_FAILURES = "AnalyticsFailures"
NOTIFICATIONS_SENT = "NotificationsSent"
NOTIFICATIONS_BUSY = "NotificationsBusy"
NOTIFICATIONS_RECLAIMED = "NotificationsReclaimed"
NOTIFICATIONS_REJECTED = "NotificationsRejected"
NOTIFICATIONS_LEASE_LOST = "NotificationsLeaseLost"
REVENUE = "Revenue"

# Readings: the ingest and the chunk writer.
ROWS_ACCEPTED = "RowsAccepted"
ROWS_REJECTED = "RowsRejected"
ROWS_WRITTEN = "RowsWritten"
CHUNK_FAILURES = "ChunkFailures"


def inventory_outcome(outcome: str) -> str:
    """The metric an applied inventory outcome counts: ``reserved`` → ``InventoryReserved``."""
    return f"Inventory{outcome.title()}"
