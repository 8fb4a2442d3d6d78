"""Turns the Chalice app's registered event sources into pollers.

The app is the single source of truth for *which* functions consume *what*
(``app.event_sources``); the resource declaration adds what Chalice cannot
express (``Stack.event_source``). Each source appears once, keyed by the
function name (Chalice allows one event source per function).
"""

from __future__ import annotations

import logging
from typing import Any

from chalice.app import DynamoDBEventConfig, S3EventConfig, SNSEventConfig, SQSEventConfig

from localcloud.runtime.filters import RecordFilter
from localcloud.runtime.notifications import s3_source, sns_source
from localcloud.runtime.poller import Poller
from localcloud.runtime.sqs import QueueSource, SqsPoller
from localcloud.runtime.streams import StreamPoller, StreamSource
from localcloud.runtime.wiring import Wiring

log = logging.getLogger(__name__)

# Lambda's own default is to scale out to many concurrent batches; locally a
# few keep ordering effects visible without starving two cores.
DEFAULT_CONCURRENCY = 4


def discover(app: Any) -> list[Any]:
    """The app's event sources that the runtime can run, each once."""
    seen: dict[str, Any] = {}
    for config in app.event_sources:
        supported = (SQSEventConfig, DynamoDBEventConfig, S3EventConfig, SNSEventConfig)
        if not isinstance(config, supported):
            log.info("event source %s (%s) is not run locally", config.name, type(config).__name__)
            continue
        seen.setdefault(config.name, config)
    return list(seen.values())


def build_pollers(wiring: Wiring) -> list[Poller]:
    return [_poller(config, wiring) for config in discover(wiring.app)]


def _poller(config: Any, wiring: Wiring) -> Poller:
    function = config.name
    settings = wiring.settings(function)
    invoker = wiring.invoker(function)
    sqs = wiring.clients("sqs")
    if isinstance(config, SQSEventConfig):
        name = config.queue or config.queue_arn.rsplit(":", 1)[-1]
        queue = wiring.queue_by_name(name)
        source = QueueSource(
            function=function,
            queue_name=name,
            url=queue["url"],
            arn=queue["arn"],
            batch_size=config.batch_size,
            window_seconds=config.maximum_batching_window_in_seconds or 0,
            # The declared bound (infra.stack), else the decorator's.
            concurrency=(
                settings.maximum_concurrency or config.maximum_concurrency or DEFAULT_CONCURRENCY
            ),
            report_batch_item_failures=settings.report_batch_item_failures,
            record_filter=RecordFilter(settings.filter_patterns),
        )
    elif isinstance(config, S3EventConfig):
        source = s3_source(config, wiring, DEFAULT_CONCURRENCY)
    elif isinstance(config, SNSEventConfig):
        source = sns_source(config, wiring, DEFAULT_CONCURRENCY)
    else:
        return StreamPoller(
            StreamSource.from_config(config, settings, wiring),
            invoker,
            wiring.clients("dynamodbstreams"),
            wiring.clients("dynamodb"),
            sqs,
            wiring.stats,
            wiring.stopping,
            wiring.poll_interval,
        )
    return SqsPoller(
        source, invoker, sqs, wiring.region, wiring.stats, wiring.stopping, wiring.poll_interval
    )
