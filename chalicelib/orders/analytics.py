"""The analytics consumer: orders and revenue per UTC day, each event counted exactly once.

Every order event advances at most one day's item of the ``daily-analytics``
table, the day (UTC) on which the change happened (the event's ``occurred_at``):

* ``ORDER_CREATED`` → ``orders_created``;
* a move to CONFIRMED → ``orders_confirmed``, and ``revenue`` grows by the total;
* a move to REJECTED → ``orders_rejected``;
* ``ORDER_CANCELLED`` → ``orders_cancelled``; when the order had been confirmed
  (its old status is one that only a confirmed order reaches, see
  :data:`EARNING`), ``revenue`` shrinks by its total again;
* anything else (SHIPPED, DELIVERED) changes no counter and writes nothing.

So revenue is the sum of the totals of orders confirmed and not cancelled
since, booked on the day of each change: a cancellation takes its amount off
the day it happened, which may leave that day's revenue negative.

Exactly once: the counter's ``ADD`` and the processed-event marker
``analytics#{event_id}`` (:mod:`chalicelib.orders.markers`) commit in one
``TransactWriteItems``. A redelivered event's marker exists, its transaction
is cancelled whole, and nothing moves. botocore's own retry after a lost
response reuses the transaction's token: AWS then answers success, moto a
marker condition failure; either way the counter moved once (the metrics of
that one event may be lost in the second case, never doubled).

Metrics (EMF) are published only for a transaction that applied, so they count
each event once too, with the caveat just given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib import metric_names
from chalicelib.clock import Backoff
from chalicelib.observability import count, logger, measure
from chalicelib.orders import analytics_store, keys, markers
from chalicelib.orders.analytics_store import COUNTERS, AnalyticsStore
from chalicelib.orders.events import EventFormatError, OrderEvent
from chalicelib.orders.states import TRANSITIONS, EventType, Status

# Read from here by infra's declaration (the table's key) and the status view.
ANALYTICS_PK = keys.ANALYTICS_PK
REVENUE = analytics_store.REVENUE

CONSUMER = keys.ANALYTICS_CONSUMER
# Attempts at one transaction before the message is failed (SQS redelivers it
# after a backoff): every event of a day updates that day's one item, so
# concurrent invocations conflict on it, and a few quick retries keep a busy
# day from spending the message's receives (maxReceiveCount) on conflicts.
MAX_ATTEMPTS = 4


def _earning() -> frozenset[Status]:
    """CONFIRMED and every status only reachable through it (not by cancelling):
    an order in one of these has its total in the revenue."""
    found, todo = set(), [Status.CONFIRMED]
    while todo:
        status = todo.pop()
        if status in found or status is Status.CANCELLED:
            continue
        found.add(status)
        todo += TRANSITIONS.get(status, {})
    return frozenset(found)


EARNING = _earning()


@dataclass(frozen=True)
class Change:
    """What one event does to one day: a counter +1, and revenue by ``revenue``."""

    day: str
    counter: str
    revenue: Decimal = Decimal(0)

    @property
    def metric(self) -> str:
        return metric_names.analytics_counter(self.counter)


REVENUE_METRIC = metric_names.REVENUE
# Everything this consumer publishes, each only for an event it applied.
METRICS = (*(metric_names.analytics_counter(counter) for counter in COUNTERS), REVENUE_METRIC)


def event_day(occurred_at: str) -> str:
    """The UTC calendar day (``YYYY-MM-DD``) of an event's ``occurred_at``."""
    try:
        moment = datetime.fromisoformat(occurred_at)
    except (TypeError, ValueError):
        raise EventFormatError(f"occurred_at {occurred_at!r} is not an ISO time") from None
    if moment.tzinfo is None:
        raise EventFormatError(f"occurred_at {occurred_at!r} has no time zone")
    return moment.astimezone(UTC).date().isoformat()


def _total(event: OrderEvent) -> Decimal:
    try:
        total = Decimal(event.total)
    except (TypeError, InvalidOperation):
        raise EventFormatError(f"total {event.total!r} is not an amount") from None
    if not total.is_finite() or total < 0:
        raise EventFormatError(f"total {event.total!r} is not an amount")
    return total


def change_for(event: OrderEvent) -> Change | None:
    """The counter an event advances, or None for an event that counts nothing.

    Raises :class:`EventFormatError` for an event whose time or total is unreadable.
    """
    new = Status(event.new_status)
    if event.event_type == EventType.ORDER_CREATED:
        counter, revenue = "orders_created", Decimal(0)
    elif new is Status.CONFIRMED:
        counter, revenue = "orders_confirmed", _total(event)
    elif new is Status.REJECTED:
        counter, revenue = "orders_rejected", Decimal(0)
    elif new is Status.CANCELLED:
        earned = event.old_status is not None and Status(event.old_status) in EARNING
        counter, revenue = "orders_cancelled", -_total(event) if earned else Decimal(0)
    else:
        return None
    return Change(event_day(event.occurred_at), counter, revenue)


def apply(event: OrderEvent, services) -> str:
    """Count one event; returns ``counted``, ``nothing`` (counts nothing) or
    ``duplicate`` (counted before).

    Raises the ``ClientError`` of a transaction that kept conflicting or being
    throttled, so that the message fails and SQS delivers it again later.
    """
    change = change_for(event)
    if change is None:
        return "nothing"
    applied = markers.commit_once(
        services.clients.dynamodb,
        markers.event_marker(CONSUMER, event.event_id, services),
        [_store(services).counter_update(change.day, change.counter, change.revenue)],
        attempts=MAX_ATTEMPTS,
        backoff=Backoff(services.clock),
    )
    if not applied:
        return "duplicate"
    count(change.metric, 1)
    if change.revenue:
        measure(REVENUE_METRIC, change.revenue)
    logger.info(
        "analytics counted",
        extra={"day": change.day, "counter": change.counter, "revenue": str(change.revenue)},
    )
    return "counted"


def _store(services) -> AnalyticsStore:
    return AnalyticsStore(services.clients.dynamodb, services.settings.analytics_table)


def daily(dynamodb: Any, table: str, day: date) -> dict[str, Any]:
    """A day's counters, zeros for a day with nothing; revenue as ``"12.50"``."""
    return AnalyticsStore(dynamodb, table).daily(day)
