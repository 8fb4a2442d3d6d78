"""DynamoDB key design for the orders workflow's tables (the one place that names keys).

Orders table
    partition key ``order_id``. Items carry ``customer_id`` and
    ``created_sort`` = ``{created_at}#{order_id}``, the keys of the
    ``by_customer`` index, which lists a customer's orders newest first.

Products table
    partition key ``product_id``.

Idempotency table
    partition key ``id``, for three kinds of record that expire through TTL
    (``expires_at``): an order's idempotency key (``order-key#{key}``,
    :mod:`chalicelib.orders.store`), a consumer's processed-event marker and
    a notification's claim (both ``{consumer}#{event_id}``,
    :mod:`chalicelib.orders.markers` and :mod:`chalicelib.orders.claims`).

Daily analytics table
    partition key ``date`` (``YYYY-MM-DD``, UTC), one item per day
    (:mod:`chalicelib.orders.analytics_store`).
"""

from __future__ import annotations

ORDER_PK = "order_id"
BY_CUSTOMER_INDEX = "by_customer"
BY_CUSTOMER_PK = "customer_id"
BY_CUSTOMER_SK = "created_sort"

PRODUCT_PK = "product_id"

IDEMPOTENCY_PK = "id"
EXPIRES_AT = "expires_at"

ANALYTICS_PK = "date"

# The consumers of order events that keep records in the idempotency table,
# each under its own prefix (``marker_id``), which its IAM policy is held to.
INVENTORY_CONSUMER = "inventory"
NOTIFICATIONS_CONSUMER = "notifications"
ANALYTICS_CONSUMER = "analytics"


def key_record_id(idempotency_key: str) -> str:
    """The idempotency table's id of an order's idempotency key."""
    return f"order-key#{idempotency_key}"


def marker_id(consumer: str, event_id: str) -> str:
    """The idempotency table's id of ``consumer``'s marker or claim for an event."""
    return f"{consumer}#{event_id}"
