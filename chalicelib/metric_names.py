"""The names of the EMF metrics the functions publish (:func:`chalicelib.observability.count`).

One constant per metric, so a handler, the alarms and the dashboard
(``infra/alarms.py``), the operator's status view (``ops/status.py``) and the
local console read the same name. Nothing here imports anything, so infra
and ops can read the names without loading what the functions run on.
"""

from __future__ import annotations

# The CloudWatch namespace of every EMF metric.
NAMESPACE = "eventflow"

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

# The analytics consumer: one metric per day counter
# (chalicelib.orders.analytics_store.COUNTERS), named by analytics_counter.
ORDERS_CREATED = "OrdersCreated"
ORDERS_CONFIRMED = "OrdersConfirmed"
ORDERS_REJECTED = "OrdersRejected"
ORDERS_CANCELLED = "OrdersCancelled"
ANALYTICS_COUNTS = (ORDERS_CREATED, ORDERS_CONFIRMED, ORDERS_REJECTED, ORDERS_CANCELLED)

# Readings: the ingest and the chunk writer.
ROWS_ACCEPTED = "RowsAccepted"
ROWS_REJECTED = "RowsRejected"
ROWS_WRITTEN = "RowsWritten"
CHUNK_FAILURES = "ChunkFailures"


def inventory_outcome(outcome: str) -> str:
    """The metric an applied inventory outcome counts: ``reserved`` → ``InventoryReserved``."""
    return f"Inventory{outcome.title()}"


def analytics_counter(counter: str) -> str:
    """The metric a day counter is published as: ``orders_confirmed`` → ``OrdersConfirmed``."""
    return "".join(part.title() for part in counter.split("_"))
