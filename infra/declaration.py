"""Every eventflow resource, declared once, as data.

The provisioner (``infra.provision``) turns a :class:`Stack` into boto3 calls;
the packaging renderers derive CloudFormation and Terraform from the same
objects. Nothing here talks to AWS, so the declaration can be inspected and
tested on its own.

Settings that Chalice's decorators cannot express (ReportBatchItemFailures,
filter criteria, bisect, retry bounds, on-failure destinations) are declared
here as :class:`EventSourceSettings`, next to the resources they attach to;
so are the retries and on-failure destination of functions that S3 or SNS
invoke asynchronously (:class:`AsyncInvokeSettings`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import StrEnum

from chalicelib.concurrency import MAXIMUM_CONCURRENCY
from chalicelib.config import (
    REJECTS_PREFIX,
    SQS_RETRY_BASE_SECONDS,
    UPLOADS_PREFIX,
    Settings,
    dlq_name,
)
from chalicelib.orders import analytics as order_analytics
from chalicelib.orders import store as order_keys
from chalicelib.orders.states import EventType
from chalicelib.readings import keys
from infra import limits
from infra.stageconfig import StageConfig

# SQS redrives a message to its DLQ after this many receives.
MAX_RECEIVE_COUNT = 5
# AWS's advice: a queue's visibility timeout at least six times the timeout of
# the function that consumes it, so a throttled or retried batch is not
# redelivered while it is still being worked on.
VISIBILITY_TIMEOUT_FACTOR = 6
SOURCE_RETENTION_SECONDS = 4 * 24 * 3600
# The longest SQS allows: a DLQ must outlive the time it takes to notice it.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
ALERTS_TOPIC_KEY = "alerts"
# Bounds on a poison stream record: it is retried this often (bisecting the
# batch to isolate it), then described on the on-failure queue and skipped.
STREAM_RETRY_ATTEMPTS = 5
# DynamoDB keeps stream records 24 hours; older ones are gone anyway.
STREAM_MAX_RECORD_AGE_SECONDS = 24 * 3600
# Only these can become domain events (chalicelib.orders.events); Lambda drops
# the rest (REMOVE) before invoking the function.
ORDER_EVENT_FILTER = json.dumps({"eventName": ["INSERT", "MODIFY"]})
# The stage's customer-managed key: it encrypts the order-events topic (its
# messages carry customers' emails), the alerts topic, and the log groups
# (they name callers).
DATA_KEY = "data"


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: str = "S"


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    projection: str = "ALL"


@dataclass(frozen=True)
class Table:
    key: str
    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    indexes: tuple[Index, ...] = ()
    stream_view_type: str | None = None
    ttl_attribute: str | None = None
    # Continuous backups: a bad deploy or a bad ingest can be undone to the second.
    point_in_time_recovery: bool = True

    @property
    def attributes(self) -> tuple[KeyAttribute, ...]:
        """Every attribute that a key schema mentions, once each."""
        seen: dict[str, KeyAttribute] = {}
        for attr in (self.partition_key, self.sort_key, *self._index_keys()):
            if attr is not None:
                seen.setdefault(attr.name, attr)
        return tuple(seen.values())

    def _index_keys(self) -> list[KeyAttribute | None]:
        return [k for index in self.indexes for k in (index.partition_key, index.sort_key)]


class MessageKind(StrEnum):
    """What a queue's messages are; ``ops dlq peek`` decodes a queue's messages as its kind."""

    READINGS_CHUNK = "readings-chunk"  # chalicelib.readings.chunks
    S3_EVENT = "s3-event"  # S3's notification of an upload
    ORDER_INTAKE = "order-intake"  # the partner feed, chalicelib.orders.intake
    ORDER_EVENT = "order-event"  # a domain event, raw from SNS (chalicelib.orders.events)
    STREAM_BATCH_FAILURE = "stream-batch-failure"  # Lambda's on-failure record of a stream batch
    ASYNC_INVOKE_FAILURE = "async-invoke-failure"  # Lambda's record of an event it gave up on


@dataclass(frozen=True)
class Queue:
    """A queue together with its dead-letter queue; one cannot be declared without the other."""

    key: str
    name: str
    visibility_timeout: int
    max_receive_count: int = MAX_RECEIVE_COUNT
    retention_seconds: int = SOURCE_RETENTION_SECONDS
    dlq_retention_seconds: int = DLQ_RETENTION_SECONDS
    # What it and its DLQ hold; None only in tests' ad hoc stacks.
    carries: MessageKind | None = None

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")

    @property
    def dlq_key(self) -> str:
        return f"{self.key}-dlq"

    @property
    def retry_backoff_seconds(self) -> tuple[int, int]:
        """(base, cap) of the backoff its consumers give failed messages (chalicelib.batch).

        The cap is this queue's visibility timeout, which the function reads
        from the queue; the base is shipped with the functions.
        """
        return SQS_RETRY_BASE_SECONDS, self.visibility_timeout

    @property
    def dlq_name(self) -> str:
        return dlq_name(self.name)


@dataclass(frozen=True)
class FailureQueue:
    """Where Lambda sends what it gave up on: the events of asynchronous invocations,
    or the description of a stream batch (an on-failure destination).

    It has no consumer, so no DLQ of its own: it is the dead-letter store. It
    keeps messages as long as SQS allows, and an alarm fires as soon as it
    holds one (``infra.alarms``).
    """

    key: str
    name: str
    retention_seconds: int = DLQ_RETENTION_SECONDS


@dataclass(frozen=True)
class QueueNotification:
    """S3 sends ObjectCreated events for matching keys to a queue."""

    queue_key: str
    prefix: str
    suffix: str
    events: tuple[str, ...] = ("s3:ObjectCreated:*",)


@dataclass(frozen=True)
class Bucket:
    """A private, encrypted bucket; every request to it must use TLS."""

    key: str
    name: str
    queue_notifications: tuple[QueueNotification, ...] = ()
    # Versioning lets an overwritten or deleted upload be recovered; the
    # lifecycle below keeps the old versions from accumulating forever.
    versioned: bool = True
    noncurrent_version_days: int = 30
    abort_incomplete_upload_days: int = 1
    tls_only: bool = True
    # (prefix, days): the current version of an object under the prefix
    # expires after that many days (in a versioned bucket it becomes an old
    # version, which the rule above removes later).
    current_version_days: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Topic:
    """An SNS topic; alarms notify the ``alerts`` topic.

    A FIFO topic (name ending ``.fifo``) keeps each message group in order and
    drops repeated deduplication ids for five minutes.
    """

    key: str
    name: str
    # A :class:`Key` that encrypts the topic's messages at rest, if any.
    kms_key: str | None = None

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")


@dataclass(frozen=True)
class Key:
    """A customer-managed KMS key, rotated yearly; its policy (:mod:`infra.keys`) lets

    * the account's administrators manage it, but not use it;
    * ``sns_publishers`` (function names) use it only through SNS, for the
      topics it encrypts, which their own IAM policies must allow too;
    * SNS itself use it, for this account's topics;
    * CloudWatch use it, so alarms can publish to a topic it encrypts;
    * CloudWatch Logs use it for the log groups it encrypts.
    """

    key: str
    alias: str
    description: str
    sns_publishers: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogGroup:
    """A CloudWatch Logs group, created before anything writes to it, with a retention.

    Functions may not create log groups (``infra.iam``), so none is ever left
    without one.
    """

    key: str
    name: str
    retention_days: int
    kms_key: str | None = None


@dataclass(frozen=True)
class Api:
    """The REST API's stage (Chalice creates the API): throttling and access logs."""

    stage_name: str
    rate_limit: float
    burst_limit: int
    access_log_group: str
    # One JSON line per request: who (the caller's IAM principal), what (the
    # route template, not the path with its ids), when, and the outcome.
    ACCESS_LOG_FORMAT = json.dumps(
        {
            "requestId": "$context.requestId",
            "time": "$context.requestTimeEpoch",
            "httpMethod": "$context.httpMethod",
            "route": "$context.resourcePath",
            "status": "$context.status",
            "latencyMs": "$context.responseLatency",
            "caller": "$context.identity.caller",
            "userArn": "$context.identity.userArn",
            "sourceIp": "$context.identity.sourceIp",
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class Subscription:
    """A queue subscribed to a topic, with raw delivery and an optional filter policy.

    Raw delivery hands the consumer the published message itself as the SQS
    body, and its message attributes as SQS message attributes. The queue's
    policy lets this topic, and only it, send to the queue.
    """

    key: str
    topic_key: str
    queue_key: str
    filter_policy: dict | None = None

    @property
    def filter_policy_json(self) -> str | None:
        return json.dumps(self.filter_policy, sort_keys=True) if self.filter_policy else None


@dataclass(frozen=True)
class EmailIdentity:
    """An SES identity that mail is sent from; SES sends only from verified ones."""

    key: str
    email: str


@dataclass(frozen=True)
class Function:
    """A Lambda function that Chalice creates; declared for IAM, alarms and the dashboard.

    ``name`` is Chalice's function name (``api_handler`` for the REST API), and
    ``physical_name`` the deployed name: ``eventflow-{stage}-{name}``, except
    ``eventflow-{stage}`` for the API handler.
    """

    name: str
    physical_name: str
    timeout: int
    memory_size: int
    # From .chalice/config.json (JSON holds no comments), which Chalice
    # renders in every path. Only prod reserves: each SQS consumer exactly its
    # MaximumConcurrency (less throttles the poller, and throttled messages
    # count as receives on the way to the DLQ), the API 20 so the workers
    # cannot starve it nor it them, the stream publisher 10 (one invocation
    # per shard). dev reserves nothing: a new account's quota is 10, and AWS
    # keeps 100 unreserved. docs/deploy.md has the table.
    reserved_concurrency: int | None = None
    # X-Ray active tracing (the stage's "xray" in .chalice/config.json).
    tracing: bool = False

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.physical_name}"


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch alarm on one metric; it notifies ``topic_key`` on ALARM and OK."""

    key: str
    name: str
    description: str
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period: int
    evaluation_periods: int
    threshold: float
    comparison: str
    topic_key: str
    treat_missing_data: str = "notBreaching"


@dataclass(frozen=True)
class Dashboard:
    """A CloudWatch dashboard; ``body(region)`` is its JSON, for a region."""

    key: str
    name: str
    widgets: tuple[dict, ...]

    # Renderers that cannot know the region yet (CloudFormation, Terraform)
    # pass their own expression for it, which this placeholder marks.
    REGION_PLACEHOLDER = "@@REGION@@"

    def body(self, region: str = REGION_PLACEHOLDER) -> str:
        text = json.dumps({"widgets": list(self.widgets)}, sort_keys=True)
        return text.replace(self.REGION_PLACEHOLDER, region)


@dataclass(frozen=True)
class EventSourceSettings:
    """How Lambda polls one event source for one function, beyond what Chalice sets."""

    function: str
    source_key: str
    report_batch_item_failures: bool = True
    filter_patterns: tuple[str, ...] = ()
    bisect_batch_on_error: bool | None = None
    maximum_retry_attempts: int | None = None
    maximum_record_age_seconds: int | None = None
    on_failure_queue_key: str | None = None
    # SQS only: at most this many batches at once (chalicelib.concurrency).
    maximum_concurrency: int | None = None

    def stream_retry_settings(self) -> dict[str, bool | int]:
        """The stream-only retry settings that are set, under Lambda's names.

        The Lambda API and CloudFormation share these names; Terraform renames them.
        """
        values = {
            "BisectBatchOnFunctionError": self.bisect_batch_on_error,
            "MaximumRetryAttempts": self.maximum_retry_attempts,
            "MaximumRecordAgeInSeconds": self.maximum_record_age_seconds,
        }
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class AsyncInvokeSettings:
    """How Lambda retries a function's asynchronous invocations (S3, SNS), and where
    the events it gives up on go: a :class:`FailureQueue`, as Lambda's on-failure
    destination record (the event, the error, the attempts)."""

    function: str
    on_failure_queue_key: str
    # Lambda's default, written down so every renderer sets the same value.
    maximum_retry_attempts: int = 2
    maximum_event_age_seconds: int | None = None


@dataclass(frozen=True)
class Stack:
    stage: str
    settings: Settings
    tables: tuple[Table, ...]
    queues: tuple[Queue, ...]
    buckets: tuple[Bucket, ...]
    event_sources: tuple[EventSourceSettings, ...] = field(default=())
    topics: tuple[Topic, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    email_identities: tuple[EmailIdentity, ...] = ()
    functions: tuple[Function, ...] = ()
    alarms: tuple[Alarm, ...] = ()
    dashboards: tuple[Dashboard, ...] = ()
    failure_queues: tuple[FailureQueue, ...] = ()
    async_invokes: tuple[AsyncInvokeSettings, ...] = ()
    keys: tuple[Key, ...] = ()
    log_groups: tuple[LogGroup, ...] = ()
    api: Api | None = None

    @property
    def resources(self) -> tuple[object, ...]:
        """Every declared resource, in an order that creates dependencies first."""
        return (
            *self.keys,
            *self.log_groups,
            *self.queues,
            *self.failure_queues,
            *self.tables,
            *self.topics,
            *self.subscriptions,
            *self.email_identities,
            *self.buckets,
            *self.alarms,
            *self.dashboards,
        )

    def queue(self, key: str) -> Queue:
        return _by_key(self.queues, key)

    def carries(self, name: str) -> MessageKind | None:
        """What the queue called ``name`` (a queue, its DLQ, or an on-failure queue) holds.

        An on-failure queue holds what Lambda writes there, so its kind follows
        from what names it as a destination: a stream mapping or an
        asynchronously invoked function.
        """
        for queue in self.queues:
            if name in (queue.name, queue.dlq_name):
                return queue.carries
        for failures in self.failure_queues:
            if name != failures.name:
                continue
            if any(s.on_failure_queue_key == failures.key for s in self.event_sources):
                return MessageKind.STREAM_BATCH_FAILURE
            if any(a.on_failure_queue_key == failures.key for a in self.async_invokes):
                return MessageKind.ASYNC_INVOKE_FAILURE
        return None

    def failure_queue(self, key: str) -> FailureQueue:
        return _by_key(self.failure_queues, key)

    def async_invoke(self, function: str) -> AsyncInvokeSettings | None:
        """The function's asynchronous-invocation settings, if it is invoked that way."""
        return next((s for s in self.async_invokes if s.function == function), None)

    def table(self, key: str) -> Table:
        return _by_key(self.tables, key)

    def kms_key(self, key: str) -> Key:
        return _by_key(self.keys, key)

    def log_group(self, key: str) -> LogGroup:
        return _by_key(self.log_groups, key)

    def bucket(self, key: str) -> Bucket:
        return _by_key(self.buckets, key)

    def topic(self, key: str) -> Topic:
        return _by_key(self.topics, key)

    def email_identity(self, key: str) -> EmailIdentity:
        return _by_key(self.email_identities, key)

    def function(self, name: str) -> Function:
        for function in self.functions:
            if function.name == name:
                return function
        raise KeyError(f"no function declared named {name!r}")

    def event_source(self, function: str) -> EventSourceSettings:
        for source in self.event_sources:
            if source.function == function:
                return source
        raise KeyError(f"no event-source settings for function {function!r}")


def _by_key(resources, key):
    for resource in resources:
        if resource.key == key:
            return resource
    raise KeyError(f"no resource declared with key {key!r}")


def sqs_source(function: str, queue_key: str) -> EventSourceSettings:
    """A queue's mapping, bounded by the function's MaximumConcurrency."""
    return EventSourceSettings(
        function=function,
        source_key=queue_key,
        maximum_concurrency=MAXIMUM_CONCURRENCY[function],
    )


def declare(config: StageConfig) -> Stack:
    """The stage's whole stack."""
    settings = config.settings()
    stage_limits = limits.for_stage(config.stage)

    readings = Table(
        key="readings",
        name=settings.readings_table,
        partition_key=KeyAttribute(keys.READING_PK),
        sort_key=KeyAttribute(keys.READING_SK),
        indexes=(
            Index(
                name=keys.BY_DATE_INDEX,
                partition_key=KeyAttribute(keys.BY_DATE_PK),
                sort_key=KeyAttribute(keys.BY_DATE_SK),
            ),
        ),
    )
    ingests = Table(
        key="ingests",
        name=settings.ingests_table,
        partition_key=KeyAttribute(keys.JOB_PK),
        indexes=(
            Index(
                name=keys.JOBS_BY_START_INDEX,
                partition_key=KeyAttribute(keys.JOBS_BY_START_PK),
                sort_key=KeyAttribute(keys.JOBS_BY_START_SK),
            ),
        ),
        ttl_attribute=keys.EXPIRES_AT,
    )

    ingest_queue = Queue(
        key="ingest",
        name=settings.ingest_queue,
        visibility_timeout=VISIBILITY_TIMEOUT_FACTOR * config.lambda_timeout("write_readings"),
        carries=MessageKind.READINGS_CHUNK,
    )
    s3_events_queue = Queue(
        key="s3-events",
        name=settings.s3_events_queue,
        visibility_timeout=VISIBILITY_TIMEOUT_FACTOR * config.lambda_timeout("ingest_from_queue"),
        carries=MessageKind.S3_EVENT,
    )

    queues = [ingest_queue]
    notifications: tuple[QueueNotification, ...] = ()
    event_sources = [sqs_source("write_readings", "ingest")]
    if settings.ingest_trigger == "sqs":
        # Stages that package for CloudFormation cannot use on_s3_event, so S3
        # notifies a queue instead, which also gives S3 events retries and a DLQ.
        queues.append(s3_events_queue)
        notifications = (
            QueueNotification(queue_key="s3-events", prefix=UPLOADS_PREFIX, suffix=".csv"),
        )
        event_sources.append(sqs_source("ingest_from_queue", "s3-events"))
    uploads = Bucket(
        key="uploads",
        name=settings.uploads_bucket,
        queue_notifications=notifications,
        # The local cloud serves S3 over plain HTTP on 127.0.0.1, where a
        # TLS-only policy would deny every request (moto enforces it).
        tls_only=config.stage != "local",
        current_version_days=tuple(
            (prefix, stage_limits.upload_retention_days)
            for prefix in (UPLOADS_PREFIX, REJECTS_PREFIX)
        ),
    )
    alerts = Topic(key=ALERTS_TOPIC_KEY, name=settings.name("alerts"), kms_key=DATA_KEY)

    def function(name: str) -> Function:
        return Function(
            name=name,
            # Chalice names the REST API's function after the app and stage alone.
            physical_name=settings.name(name) if name != "api_handler" else settings.name("")[:-1],
            timeout=config.lambda_timeout(name),
            memory_size=config.lambda_memory_size(name),
            reserved_concurrency=config.reserved_concurrency(name),
            tracing=config.xray(name),
        )

    ingest_function = "ingest_from_queue" if settings.ingest_trigger == "sqs" else "ingest_from_s3"
    functions = [function(name) for name in ("api_handler", ingest_function, "write_readings")]

    products = Table(
        key="products",
        name=settings.products_table,
        partition_key=KeyAttribute("product_id"),
    )
    orders = Table(
        key="orders",
        name=settings.orders_table,
        partition_key=KeyAttribute(order_keys.ORDER_PK),
        indexes=(
            Index(
                name=order_keys.BY_CUSTOMER_INDEX,
                partition_key=KeyAttribute(order_keys.BY_CUSTOMER_PK),
                sort_key=KeyAttribute(order_keys.BY_CUSTOMER_SK),
            ),
        ),
        stream_view_type="NEW_AND_OLD_IMAGES",
    )
    idempotency = Table(
        key="idempotency",
        name=settings.idempotency_table,
        partition_key=KeyAttribute(order_keys.IDEMPOTENCY_PK),
        ttl_attribute=order_keys.EXPIRES_AT,
    )
    order_intake = Queue(
        key="order-intake",
        name=settings.order_intake_queue,
        visibility_timeout=VISIBILITY_TIMEOUT_FACTOR * config.lambda_timeout("intake_orders"),
        carries=MessageKind.ORDER_INTAKE,
    )
    # Lambda describes stream batches it gave up on here (the on-failure
    # destination); nothing consumes it, so its alarm fires on any message.
    order_events_failed = FailureQueue(
        key="order-events-failed", name=settings.order_events_failed_queue
    )
    order_events = Topic(key="order-events", name=settings.order_events_topic, kms_key=DATA_KEY)
    queues.append(order_intake)
    event_sources += [
        sqs_source("intake_orders", "order-intake"),
        EventSourceSettings(
            function="publish_order_events",
            source_key="orders",
            filter_patterns=(ORDER_EVENT_FILTER,),
            bisect_batch_on_error=True,
            maximum_retry_attempts=STREAM_RETRY_ATTEMPTS,
            maximum_record_age_seconds=STREAM_MAX_RECORD_AGE_SECONDS,
            on_failure_queue_key="order-events-failed",
        ),
    ]
    functions += [function("intake_orders"), function("publish_order_events")]

    # The order-events topic's consumers: (queue key, queue name, function, filter
    # policy). Each gets its queue (and DLQ), a raw-delivery subscription, its
    # mapping and its function; SNS FIFO topics deliver to FIFO and standard queues.
    every_event = {"event_type": sorted(str(kind) for kind in EventType)}
    order_event_consumers = (
        # FIFO, as the topic: grouped by order, so an order's events are applied
        # in order. Created (PENDING), cancelled and shipped move stock; nothing else does.
        (
            "inventory",
            settings.inventory_queue,
            "update_inventory",
            {"new_status": ["PENDING", "CANCELLED", "SHIPPED"]},
        ),
        # Standard: emails need no order, and the claim per event_id
        # (chalicelib.orders.claims) makes the queue's duplicates harmless. Every
        # event type is an email; a type added later needs its template first.
        ("notifications", settings.notifications_queue, "send_notifications", every_event),
        # Standard: counters commute, so delivery order does not matter; every
        # event passes (each type is counted, or knowingly not).
        ("analytics", settings.analytics_queue, "update_analytics", every_event),
    )
    subscriptions: list[Subscription] = []
    for key, queue_name, function_name, filter_policy in order_event_consumers:
        timeout = VISIBILITY_TIMEOUT_FACTOR * config.lambda_timeout(function_name)
        queues.append(
            Queue(
                key=key,
                name=queue_name,
                visibility_timeout=timeout,
                carries=MessageKind.ORDER_EVENT,
            )
        )
        subscriptions.append(
            Subscription(
                key=key, topic_key="order-events", queue_key=key, filter_policy=filter_policy
            )
        )
        event_sources.append(sqs_source(function_name, key))
        functions.append(function(function_name))
    # The address the notifications' emails come from (chalicelib.orders.notifications).
    email_identities = (EmailIdentity(key="sender", email=settings.mail_from),)
    daily_analytics = Table(
        key="daily-analytics",
        name=settings.analytics_table,
        partition_key=KeyAttribute(order_analytics.ANALYTICS_PK),
    )
    failure_queues: tuple[FailureQueue, ...] = (order_events_failed,)

    async_invokes: tuple[AsyncInvokeSettings, ...] = ()
    if settings.ingest_trigger == "s3":
        # S3 invokes ingest_from_s3 asynchronously: what Lambda gives up on
        # after its retries must land somewhere an operator can see and replay.
        failure_queues += (
            FailureQueue(key="ingest-failures", name=settings.name("ingest-failures")),
        )
        async_invokes = (
            AsyncInvokeSettings(function="ingest_from_s3", on_failure_queue_key="ingest-failures"),
        )

    data_key = Key(
        key=DATA_KEY,
        alias=f"alias/{settings.name('data')}",
        description=f"eventflow {config.stage}: the SNS topics and the log groups",
        sns_publishers=("publish_order_events",),
    )
    log_retention = stage_limits.log_retention_days
    log_groups = [
        LogGroup(key=f"{f.name}-logs", name=f.log_group, retention_days=log_retention)
        for f in functions
    ]
    api = None
    if any(f.name == "api_handler" for f in functions):
        access = LogGroup(
            key="api-access-logs",
            name=f"/aws/apigateway/{settings.name('api-access')}",
            retention_days=log_retention,
        )
        log_groups.append(access)
        api = Api(
            stage_name=config.api_gateway_stage(),
            rate_limit=stage_limits.api_rate_limit,
            burst_limit=stage_limits.api_burst_limit,
            access_log_group=access.key,
        )
    log_groups = [replace(group, kms_key=DATA_KEY) for group in log_groups]

    stack = Stack(
        stage=config.stage,
        settings=settings,
        tables=(readings, ingests, products, orders, idempotency, daily_analytics),
        queues=tuple(queues),
        buckets=(uploads,),
        event_sources=tuple(event_sources),
        topics=(alerts, order_events),
        subscriptions=tuple(subscriptions),
        email_identities=email_identities,
        functions=tuple(functions),
        failure_queues=failure_queues,
        async_invokes=async_invokes,
        keys=(data_key,),
        log_groups=tuple(log_groups),
        api=api,
    )
    # Alarms and the dashboard are derived from the resources above, so a new
    # queue or function is watched without anyone remembering to add it.
    # Imported here because infra.alarms builds on this module's classes.
    from infra import alarms

    return replace(stack, alarms=alarms.derive(stack), dashboards=(alarms.dashboard(stack),))
