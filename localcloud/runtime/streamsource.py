"""A stream event-source mapping's settings, as the stream poller applies them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localcloud.runtime.context import ACCOUNT_ID
from localcloud.runtime.filters import RecordFilter


@dataclass
class StreamSource:
    function: str
    function_arn: str
    stream_arn: str
    batch_size: int = 100
    starting_position: str = "LATEST"
    window_seconds: float = 0
    report_batch_item_failures: bool = False
    bisect_batch_on_error: bool = False
    maximum_retry_attempts: int | None = None
    maximum_record_age_seconds: int | None = None
    on_failure_url: str | None = None
    record_filter: RecordFilter = field(default_factory=lambda: RecordFilter(()))

    @classmethod
    def from_config(cls, config: Any, settings: Any, wiring: Any) -> StreamSource:
        on_failure = None
        if settings.on_failure_queue_key:
            on_failure = wiring.outputs.queues[settings.on_failure_queue_key]["url"]
        full_name = wiring.full_name(config.name)
        return cls(
            function=config.name,
            function_arn=f"arn:aws:lambda:{wiring.region}:{ACCOUNT_ID}:function:{full_name}",
            stream_arn=config.stream_arn,
            batch_size=config.batch_size,
            starting_position=config.starting_position,
            window_seconds=config.maximum_batching_window_in_seconds or 0,
            report_batch_item_failures=settings.report_batch_item_failures,
            bisect_batch_on_error=bool(settings.bisect_batch_on_error),
            maximum_retry_attempts=_bound(settings.maximum_retry_attempts),
            maximum_record_age_seconds=_bound(settings.maximum_record_age_seconds),
            on_failure_url=on_failure,
            record_filter=RecordFilter(settings.filter_patterns),
        )


def _bound(value: int | None) -> int | None:
    """-1 (AWS's default) and None both mean unbounded."""
    return None if value is None or value < 0 else value
