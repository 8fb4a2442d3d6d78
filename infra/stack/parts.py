"""What a domain's stack file declares, and the stage it declares it for.

A domain (:mod:`infra.stack.readings`, :mod:`infra.stack.orders`) returns a
:class:`Domain`: its tables, queues, topics, functions with their grants,
and the mappings between them. :func:`infra.stack.declare` joins the
domains into the stage's :class:`~infra.resources.Stack`, adds what they
share (the REST API's function, the alerts topic, the key, the log groups)
and derives the alarms and the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from chalicelib.concurrency import MAXIMUM_CONCURRENCY
from chalicelib.config import Settings
from infra import limits
from infra.functions import AsyncInvokeSettings, EventSourceSettings, Function
from infra.grants import Grant
from infra.resources import (
    VISIBILITY_TIMEOUT_FACTOR,
    Bucket,
    EmailIdentity,
    FailureQueue,
    MessageKind,
    Queue,
    Subscription,
    Table,
    Topic,
)
from infra.stageconfig import StageConfig

API_FUNCTION = "api_handler"


@dataclass(frozen=True)
class Domain:
    """One domain's part of a stage's stack, in the order each kind is created."""

    tables: tuple[Table, ...] = ()
    queues: tuple[Queue, ...] = ()
    failure_queues: tuple[FailureQueue, ...] = ()
    buckets: tuple[Bucket, ...] = ()
    topics: tuple[Topic, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    email_identities: tuple[EmailIdentity, ...] = ()
    functions: tuple[Function, ...] = ()
    event_sources: tuple[EventSourceSettings, ...] = ()
    async_invokes: tuple[AsyncInvokeSettings, ...] = ()
    # What the REST API's function (one for every domain's routes) does with
    # this domain's resources.
    api_grants: tuple[Grant, ...] = ()

    def __add__(self, other: Domain) -> Domain:
        return Domain(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


@dataclass(frozen=True)
class Stage:
    """A stage's configuration, as the stack files use it."""

    config: StageConfig
    settings: Settings
    limits: limits.StageLimits

    @classmethod
    def load(cls, config: StageConfig) -> Stage:
        return cls(config, config.settings(), limits.for_stage(config.stage))

    @property
    def name(self) -> str:
        return self.config.stage

    def function(self, name: str, grants: tuple[Grant, ...] = ()) -> Function:
        """A function Chalice creates, with its settings from ``.chalice/config.json``."""
        config = self.config
        return Function(
            name=name,
            # Chalice names the REST API's function after the app and stage alone.
            physical_name=(
                self.settings.name(name) if name != API_FUNCTION else self.settings.name("")[:-1]
            ),
            timeout=config.lambda_timeout(name),
            memory_size=config.lambda_memory_size(name),
            reserved_concurrency=config.reserved_concurrency(name),
            tracing=config.xray(name),
            grants=grants,
        )

    def queue(self, key: str, name: str, consumer: str, carries: MessageKind) -> Queue:
        """A source queue (and its DLQ), hidden long enough for ``consumer`` to finish."""
        timeout = VISIBILITY_TIMEOUT_FACTOR * self.config.lambda_timeout(consumer)
        return Queue(key=key, name=name, visibility_timeout=timeout, carries=carries)

    @staticmethod
    def sqs_source(function: str, queue_key: str) -> EventSourceSettings:
        """A queue's mapping, bounded by the function's MaximumConcurrency."""
        return EventSourceSettings(
            function=function,
            source_key=queue_key,
            maximum_concurrency=MAXIMUM_CONCURRENCY[function],
        )
