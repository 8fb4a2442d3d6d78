"""The orders workflow's Lambda handler bodies: plain event dicts in, partial
batch responses out.

* ``intake_orders`` consumes the partner FIFO queue through
  :func:`chalicelib.batch.consume` (Powertools' ``SqsFifoPartialProcessor``,
  and backoff of what failed): once a message of a customer's group fails, its
  later messages in the batch fail too (none may overtake it), while other
  customers' groups go on. A message that can never succeed is moved to the
  DLQ with its reason and counts as handled (see :mod:`chalicelib.orders.intake`).
* ``update_inventory`` applies order events to stock (:mod:`chalicelib.orders.inventory`),
  from a FIFO queue grouped by order, so an order's events are applied in order.
* ``send_notifications`` emails the customer once per order event
  (:mod:`chalicelib.orders.notifications`), from a standard queue.
* ``publish_order_events`` turns the orders table's stream records into
  domain events on the SNS topic and reports, by sequence number, the records
  from the first one it could not publish.
* ``update_analytics`` counts order events per day (:mod:`chalicelib.orders.analytics`),
  from a standard queue.

Every SQS consumer here runs :func:`chalicelib.batch.consume`, which picks the
FIFO processor from the queue's ARN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib import leases, metric_names
from chalicelib.lazy import lazy
from chalicelib.observability import correlated, count, invocation, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from chalicelib.orders.intake import RejectedMessage

# Imported at first use (app.py imports this module; see chalicelib/lazy.py):
# each handler's cold start pays only for its own domain modules, and the
# stream handler never loads Powertools' batch processors.
batch = lazy("chalicelib.batch")
events = lazy("chalicelib.orders.events")
intake = lazy("chalicelib.orders.intake")
inventory = lazy("chalicelib.orders.inventory")
notifications = lazy("chalicelib.orders.notifications")
claims = lazy("chalicelib.orders.claims")
analytics = lazy("chalicelib.orders.analytics")

REJECTION_ATTRIBUTES = ("eventflow_rejected_code", "eventflow_rejected_reason")


def intake_orders(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    def apply(record: SQSRecord) -> None:
        try:
            order = intake.handle(record.body, services)
        except intake.RejectedMessage as rejected:
            count(metric_names.INTAKE_REJECTED, 1)
            logger.warning("intake message rejected", extra={"reason": str(rejected)})
            _dead_letter(record, rejected, services)
            return
        logger.info("intake message applied", extra={"order_id": order["order_id"]})

    # A FIFO queue: failed groups back off together (chalicelib.batch).
    return batch.consume(
        "intake_orders",
        event,
        context,
        services,
        apply,
        failure_metric=metric_names.INTAKE_FAILURES,
        failure_log="intake message failed; SQS will redeliver it",
    )


def _dead_letter(record: SQSRecord, rejected: RejectedMessage, services) -> None:
    """Move a message that can never succeed to the intake DLQ, with why."""
    raw = record.raw_event
    attributes = {
        name: {
            "DataType": value["dataType"],
            **({"StringValue": value["stringValue"]} if "stringValue" in value else {}),
        }
        for name, value in (raw.get("messageAttributes") or {}).items()
        if name not in REJECTION_ATTRIBUTES and "stringValue" in value
    }
    attributes["eventflow_rejected_code"] = {"DataType": "String", "StringValue": rejected.code}
    attributes["eventflow_rejected_reason"] = {
        "DataType": "String",
        # Message attributes count towards SQS's size limit; the reason is a hint.
        "StringValue": rejected.reason[:1000] or rejected.code,
    }
    services.clients.sqs.send_message(
        QueueUrl=services.order_intake_dlq_url,
        MessageBody=record.body,
        MessageGroupId=raw["attributes"].get("MessageGroupId", "intake"),
        # A redelivered poison message is dropped by the DLQ's deduplication.
        MessageDeduplicationId=record.message_id,
        MessageAttributes=attributes,
    )


def publish_order_events(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    with invocation("publish_order_events", services.settings.stage):
        records = event.get("Records", [])
        pending: list[tuple[int, events.OrderEvent]] = []
        poison_at: int | None = None
        for index, record in enumerate(records):
            try:
                found = events.event_from_record(record)
            except events.EventFormatError:
                logger.exception("poison stream record", extra={"record_index": index})
                poison_at = index
                break
            if found is not None:
                pending.append((index, found))
        # The records before a poison one are checkpointed, so their events go out first.
        result = events.publish(
            services.clients.sns, services.order_events_topic_arn, [e for _, e in pending]
        )
        count(metric_names.ORDER_EVENTS_PUBLISHED, result.published)
        if result.failed_from is not None:
            first = pending[result.failed_from][0]
            logger.error(
                "publishing stopped; Lambda retries from the first unpublished record",
                extra={"error": result.error, "order_id": pending[result.failed_from][1].order_id},
            )
        elif poison_at is not None:
            first = poison_at
        else:
            return {"batchItemFailures": []}
        count(metric_names.ORDER_EVENT_RECORDS_FAILED, len(records) - first)
        return _failures(records[first:])


def _failures(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in records]
    }


def _consume_order_events(
    function: str,
    event: dict[str, Any],
    context: Any,
    services,
    handle: Callable[[Any], None],
    *,
    failure_metric: str,
    failure_log: str,
    expected: tuple[type[Exception], ...] = (),
) -> dict[str, Any]:
    """Parse each message as an order event and ``handle`` it with the order's
    correlation id, through :func:`chalicelib.batch.consume` (which counts, logs
    and reports the failures; ``expected`` ones are re-raised as they are).

    FIFO or not follows the queue's ARN: ``update_inventory``'s queue is FIFO,
    grouped by order, so an order's events are applied in order.
    """

    def apply(record: SQSRecord) -> None:
        order_event = events.parse_event(record.body)
        with correlated(order_id=order_event.order_id):
            handle(order_event)

    return batch.consume(
        function,
        event,
        context,
        services,
        apply,
        failure_metric=failure_metric,
        failure_log=failure_log,
        expected=expected,
    )


def update_inventory(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    return _consume_order_events(
        "update_inventory",
        event,
        context,
        services,
        lambda order_event: inventory.apply(order_event, services),
        failure_metric=metric_names.INVENTORY_FAILURES,
        failure_log="inventory event failed; SQS will redeliver it",
    )


# -- notifications -----------------------------------------------------------------


def send_notifications(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    # Claims made in this invocation stay exclusive as long as it may run.
    lease = leases.invocation_lease(context, claims.LEASE_MARGIN)

    def handle(order_event) -> None:
        try:
            outcome = notifications.apply(order_event, services, lease)
        except claims.ClaimHeld as held:
            # Not an error: the holder sends it. Retried after a backoff.
            count(metric_names.NOTIFICATIONS_BUSY, 1)
            logger.info("email held by another delivery; will retry", extra={
                "claim": held.key, "lease_until_ms": held.lease_until_ms})  # fmt: skip
            raise
        logger.info("notification handled", extra={"outcome": outcome})

    return _consume_order_events(
        "send_notifications",
        event,
        context,
        services,
        handle,
        failure_metric=metric_names.NOTIFICATION_FAILURES,
        failure_log="notification failed; SQS will redeliver it",
        expected=(claims.ClaimHeld,),
    )


# -- analytics consumer --------------------------------------------------------------


def update_analytics(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    """Count order events per day (:mod:`chalicelib.orders.analytics`), from a standard
    queue: counters commute, so the order of delivery does not matter, only that each
    event counts once. A message that is not an event fails until SQS moves it to the DLQ."""
    return _consume_order_events(
        "update_analytics",
        event,
        context,
        services,
        lambda order_event: analytics.apply(order_event, services),
        failure_metric=metric_names.ANALYTICS_FAILURES,
        failure_log="analytics event failed; SQS will redeliver it",
    )
