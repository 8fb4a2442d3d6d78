"""The orders domain: placed orders, their stream, and the consumers of their events.

Orders are placed through the API or the partner feed (the ``order-intake``
queue). The orders table's stream feeds ``publish_order_events``, which
publishes each change as a domain event on the ``order-events`` topic; each
consumer in :func:`order_event_consumers` gets its own queue (and DLQ), a
raw-delivery subscription with its filter policy, its mapping and its
function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.orders import keys
from chalicelib.orders.states import EventType
from infra.functions import EventSourceSettings
from infra.grants import (
    Grant,
    IdentityAccess,
    KeyAccess,
    QueueAccess,
    TableAccess,
    TopicAccess,
)
from infra.resources import (
    DATA_KEY,
    EmailIdentity,
    FailureQueue,
    Index,
    KeyAttribute,
    MessageKind,
    Subscription,
    Table,
    Topic,
)
from infra.stack.parts import Domain, Stage

# Bounds on a poison stream record: it is retried this often (bisecting the
# batch to isolate it), then described on the on-failure queue and skipped.
STREAM_RETRY_ATTEMPTS = 5
# DynamoDB keeps stream records 24 hours; older ones are gone anyway.
STREAM_MAX_RECORD_AGE_SECONDS = 24 * 3600
# Only these can become domain events (chalicelib.orders.events); Lambda drops
# the rest (REMOVE) before invoking the function.
ORDER_EVENT_FILTER = json.dumps({"eventName": ["INSERT", "MODIFY"]})

# Each function's own records in the idempotency table, by key prefix.
ORDER_KEYS = keys.key_record_id("")
INVENTORY_MARKERS = keys.marker_id(keys.INVENTORY_CONSUMER, "")
ANALYTICS_MARKERS = keys.marker_id(keys.ANALYTICS_CONSUMER, "")
NOTIFICATION_CLAIMS = keys.marker_id(keys.NOTIFICATIONS_CONSUMER, "")

# Placing and moving orders (chalicelib.orders.service), from the API or the intake.
PLACE_ORDERS: tuple[Grant, ...] = (
    TableAccess("products", "BatchGetItem"),
    # The order and its idempotency key commit in one TransactWriteItems,
    # which IAM authorizes per item (PutItem on each table).
    TableAccess("orders", "GetItem PutItem UpdateItem"),
    TableAccess("idempotency", "GetItem PutItem", key_prefixes=(ORDER_KEYS,)),
)

API_GRANTS: tuple[Grant, ...] = (
    # PLACE_ORDERS, plus the product routes and the customer's orders query.
    TableAccess("products", "BatchGetItem GetItem UpdateItem"),
    TableAccess("orders", "GetItem PutItem UpdateItem Query", indexes=True),
    TableAccess("idempotency", "GetItem PutItem", key_prefixes=(ORDER_KEYS,)),
    # GET /analytics/daily/{date} reads one day's item.
    TableAccess("daily-analytics", "GetItem"),
)


@dataclass(frozen=True)
class OrderEventConsumer:
    """A consumer of the ``order-events`` topic: its queue, function, filter and grants.

    ``key`` names its queue and its subscription. The queue is FIFO when its
    name ends ``.fifo`` (an SNS FIFO topic delivers to FIFO and standard
    queues alike).
    """

    key: str
    queue_name: str
    function: str
    filter_policy: dict[str, Any]
    grants: tuple[Grant, ...]


def order_event_consumers(stage: Stage) -> tuple[OrderEventConsumer, ...]:
    settings = stage.settings
    every_event = {"event_type": sorted(str(kind) for kind in EventType)}
    return (
        # FIFO, as the topic: grouped by order, so an order's events are applied
        # in order. Created (PENDING), cancelled and shipped move stock; nothing else does.
        OrderEventConsumer(
            key="inventory",
            queue_name=settings.inventory_queue,
            function="update_inventory",
            filter_policy={"new_status": ["PENDING", "CANCELLED", "SHIPPED"]},
            grants=(
                # Reservation, release and consumption: the order, its products and
                # the event's marker in one TransactWriteItems (authorized per item).
                TableAccess("orders", "GetItem UpdateItem"),
                TableAccess("products", "BatchGetItem UpdateItem"),
                TableAccess("idempotency", "PutItem", key_prefixes=(INVENTORY_MARKERS,)),
            ),
        ),
        # Standard: emails need no order, and the claim per event_id
        # (chalicelib.orders.claims) makes the queue's duplicates harmless. Every
        # event type is an email; a type added later needs its template first.
        OrderEventConsumer(
            key="notifications",
            queue_name=settings.notifications_queue,
            function="send_notifications",
            filter_policy=every_event,
            grants=(
                # Claim the event, send as the sender identity, mark it sent; every
                # step on the claim is one conditional UpdateItem.
                TableAccess("idempotency", "UpdateItem", key_prefixes=(NOTIFICATION_CLAIMS,)),
                IdentityAccess("sender", "SendEmail"),
            ),
        ),
        # Standard: counters commute, so delivery order does not matter; every
        # event passes (each type is counted, or knowingly not).
        OrderEventConsumer(
            key="analytics",
            queue_name=settings.analytics_queue,
            function="update_analytics",
            filter_policy=every_event,
            grants=(
                # The day's counters (Update) and the event's marker (Put) commit in
                # one TransactWriteItems, authorized per item.
                TableAccess("daily-analytics", "UpdateItem"),
                TableAccess("idempotency", "PutItem", key_prefixes=(ANALYTICS_MARKERS,)),
            ),
        ),
    )


def declare(stage: Stage) -> Domain:
    settings = stage.settings
    products = Table(
        key="products", name=settings.products_table, partition_key=KeyAttribute(keys.PRODUCT_PK)
    )
    orders = Table(
        key="orders",
        name=settings.orders_table,
        partition_key=KeyAttribute(keys.ORDER_PK),
        indexes=(
            Index(
                name=keys.BY_CUSTOMER_INDEX,
                partition_key=KeyAttribute(keys.BY_CUSTOMER_PK),
                sort_key=KeyAttribute(keys.BY_CUSTOMER_SK),
            ),
        ),
        stream_view_type="NEW_AND_OLD_IMAGES",
    )
    idempotency = Table(
        key="idempotency",
        name=settings.idempotency_table,
        partition_key=KeyAttribute(keys.IDEMPOTENCY_PK),
        ttl_attribute=keys.EXPIRES_AT,
    )
    daily_analytics = Table(
        key="daily-analytics",
        name=settings.analytics_table,
        partition_key=KeyAttribute(keys.ANALYTICS_PK),
    )
    domain = Domain(
        tables=(products, orders, idempotency, daily_analytics),
        queues=(
            stage.queue(
                "order-intake",
                settings.order_intake_queue,
                "intake_orders",
                MessageKind.ORDER_INTAKE,
            ),
        ),
        # Lambda describes stream batches it gave up on here (the on-failure
        # destination); nothing consumes it, so its alarm fires on any message.
        failure_queues=(
            FailureQueue(key="order-events-failed", name=settings.order_events_failed_queue),
        ),
        topics=(Topic(key="order-events", name=settings.order_events_topic, kms_key=DATA_KEY),),
        # The address the notifications' emails come from (chalicelib.orders.notifications).
        email_identities=(EmailIdentity(key="sender", email=settings.mail_from),),
        functions=(
            stage.function(
                "intake_orders",
                (
                    *PLACE_ORDERS,
                    # A message no retry can fix goes to the DLQ at once, with its reason.
                    QueueAccess("order-intake", "SendMessage GetQueueUrl", dlq=True),
                ),
            ),
            stage.function(
                "publish_order_events",
                (
                    TopicAccess("order-events", "Publish"),
                    # The topic is encrypted: SNS encrypts each message with the caller's rights.
                    KeyAccess(DATA_KEY, "GenerateDataKey Decrypt", via_service="sns"),
                ),
            ),
        ),
        event_sources=(
            stage.sqs_source("intake_orders", "order-intake"),
            EventSourceSettings(
                function="publish_order_events",
                source_key="orders",
                filter_patterns=(ORDER_EVENT_FILTER,),
                bisect_batch_on_error=True,
                maximum_retry_attempts=STREAM_RETRY_ATTEMPTS,
                maximum_record_age_seconds=STREAM_MAX_RECORD_AGE_SECONDS,
                on_failure_queue_key="order-events-failed",
            ),
        ),
        api_grants=API_GRANTS,
    )
    for consumer in order_event_consumers(stage):
        domain += Domain(
            queues=(
                stage.queue(
                    consumer.key, consumer.queue_name, consumer.function, MessageKind.ORDER_EVENT
                ),
            ),
            subscriptions=(
                Subscription(
                    key=consumer.key,
                    topic_key="order-events",
                    queue_key=consumer.key,
                    filter_policy=consumer.filter_policy,
                ),
            ),
            functions=(stage.function(consumer.function, consumer.grants),),
            event_sources=(stage.sqs_source(consumer.function, consumer.key),),
        )
    return domain
