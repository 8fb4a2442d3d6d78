"""Every eventflow resource type, and the :class:`Stack` that holds a stage's resources.

A stage's stack is declared by its domains (``infra/stack/``) as data. The
provisioner (:mod:`infra.provision`) turns it into boto3 calls, and the
renderers (:mod:`infra.cloudformation`, :mod:`infra.terraform`) into
templates, from the same objects. Nothing here talks to AWS, so a stack can
be inspected and tested on its own. What Chalice creates (functions, their
mappings, the API) is modelled in :mod:`infra.functions`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib.config import SQS_RETRY_BASE_SECONDS, Settings, dlq_name
from infra.functions import Api, AsyncInvokeSettings, EventSourceSettings, Function

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
      topics it encrypts: the functions granted it through SNS (a
      ``KeyAccess`` with ``via_service="sns"``; ``infra.stack`` finds them);
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


class UnrenderableResource(TypeError):
    """The stack holds a resource type that a renderer does not know."""


def _by_key(resources, key):
    for resource in resources:
        if resource.key == key:
            return resource
    raise KeyError(f"no resource declared with key {key!r}")
