"""Everything a poller needs from the runtime, in one place."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from infra.functions import EventSourceSettings
from infra.outputs import Outputs
from infra.resources import Stack
from infra.stageconfig import StageConfig
from localcloud.runtime.capture import ThreadStdout
from localcloud.runtime.environ import Environment
from localcloud.runtime.invoke import Invoker, Stats
from localcloud.runtime.metrics import MetricsPublisher


@dataclass
class Wiring:
    app: Any
    stage_config: StageConfig
    stack: Stack
    outputs: Outputs
    clients: Any
    stats: Stats
    metrics: MetricsPublisher
    environment: Environment
    stdout: ThreadStdout
    stopping: threading.Event
    poll_interval: float
    _invokers: dict[str, Invoker] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return self.outputs.region

    def full_name(self, function: str) -> str:
        """Chalice names a function ``{app_name}-{stage}-{function}``."""
        return f"{self.app.app_name}-{self.stack.stage}-{function}"

    def settings(self, function: str) -> EventSourceSettings:
        """The declared mapping settings, or AWS's defaults for an undeclared function."""
        try:
            return self.stack.event_source(function)
        except KeyError:
            return EventSourceSettings(
                function=function, source_key="", report_batch_item_failures=False
            )

    def invoker(self, function: str) -> Invoker:
        invoker = self._invokers.get(function)
        if invoker is None:
            env = self.stage_config.environment(function)
            invoker = Invoker(
                function=function,
                handler=self.app.handler_map[function],
                full_name=self.full_name(function),
                timeout_seconds=self.stage_config.lambda_timeout(function),
                memory_mb=self.stage_config.lambda_memory_size(function),
                region=self.region,
                environment=self.environment,
                env_overrides=self.environment.overrides(env),
                stdout=self.stdout,
                stats=self.stats,
                metrics=self.metrics,
                stopping=self.stopping,
                poll_interval=self.poll_interval,
            )
            self._invokers[function] = invoker
        return invoker

    def queue_by_name(self, name: str) -> dict[str, str]:
        """A declared queue's outputs by physical name, else looked up in the cloud."""
        for output in self.outputs.queues.values():
            if output["name"] == name:
                return output
        sqs = self.clients("sqs")
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return {"name": name, "url": url, "arn": arn}
