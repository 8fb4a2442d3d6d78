"""How far behind each stream mapping is, published as Lambda's ``IteratorAge``.

Lambda publishes ``IteratorAge`` (namespace ``AWS/Lambda``, dimension
``FunctionName``, milliseconds) for stream mappings: how old the records it is
handing to the function are. The declaration's iterator-age alarm
(``infra.alarms``) watches its ``Maximum``. The local runtime publishes the same
metric to the local CloudWatch, from a monitor thread of its own, so that a
mapping stuck in a handler, or unable to read its stream at all, still reports:

* each second while the mapping has records it has not processed, the age of
  the oldest of them (``now - ApproximateCreationDateTime``);
* ``0`` for the next few seconds once it has caught up, so the newest figure
  says so; nothing while it stays idle (Lambda publishes nothing either).

The lag is measured with DynamoDB Streams' own API, as any consumer could: a
mapping that is caught up (its last read found nothing, nothing held, nothing
in flight) costs no call; otherwise an iterator is taken after the mapping's
checkpoint and the records from there to the end of the shard are counted. If
the mapping cannot read its stream, the table's current stream is asked for
(``DescribeTable``), so records written to a new stream (after a reset) count
too. If even that fails, the age is the time since reads began failing: a
mapping that cannot read is behind by at least that much.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from localcloud.runtime.metrics import MetricsPublisher
from localcloud.runtime.streams import PollerPosition, StreamPoller, table_name

log = logging.getLogger(__name__)

LAG_REPORT_SECONDS = 1.0
# Zeros published after catching up, so the newest datapoint says "caught up".
CLEAR_REPORTS = 3
# A probe counts at most this many pages of 1,000 records; beyond, the count is a floor.
MAX_PROBE_PAGES = 10


@dataclass(frozen=True)
class StreamLag:
    function: str
    stream_arn: str
    records: int | None  # not yet processed; None when it cannot be known
    complete: bool  # False: there may be more than ``records``
    oldest_age_ms: float  # 0 when nothing is waiting
    read_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _epoch(value: Any) -> float:
    """ApproximateCreationDateTime: a datetime from boto3, epoch seconds in a Lambda record."""
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def _count_after(streams: Any, args: dict[str, Any]) -> tuple[int, float | None, bool]:
    """(records, creation time of the first, complete) from an iterator to the shard's end."""
    iterator = streams.get_shard_iterator(**args)["ShardIterator"]
    count, first = 0, None
    for _ in range(MAX_PROBE_PAGES):
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        records = page.get("Records", [])
        if records and first is None:
            first = _epoch(records[0]["dynamodb"]["ApproximateCreationDateTime"])
        count += len(records)
        iterator = page.get("NextShardIterator")
        if not records or not iterator:
            return count, first, True
    return count, first, False


def _probe(position: PollerPosition, streams: Any, tables: Any) -> tuple[int, float | None, bool]:
    """(records not processed, creation time of the oldest, complete), read from the stream."""
    current = position.stream_arn
    if position.read_error:
        table = tables.describe_table(TableName=table_name(current))["Table"]
        current = table.get("LatestStreamArn") or current
    new_stream = current != position.stream_arn
    if new_stream:
        description = streams.describe_stream(StreamArn=current)["StreamDescription"]
        shards = [(s["ShardId"], None, None) for s in description["Shards"]]
    else:
        shards = [(s.shard_id, s.checkpoint, s) for s in position.shards]
    total, oldest, complete = 0, None, True
    for shard_id, checkpoint, known in shards:
        args: dict[str, Any] = {"StreamArn": current, "ShardId": shard_id}
        if checkpoint:
            args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=checkpoint)
        elif new_stream or position.starting_position == "TRIM_HORIZON":
            args["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            # LATEST and nothing processed yet: only what the mapping has read is its own.
            total += known.held
            if known.oldest_held is not None:
                oldest = min(oldest or known.oldest_held, known.oldest_held)
            continue
        count, first, whole = _count_after(streams, args)
        total += count
        complete &= whole
        if first is not None:
            oldest = first if oldest is None else min(oldest, first)
    return total, oldest, complete


def measure(poller: StreamPoller, streams: Any, tables: Any, now: float) -> StreamLag:
    """One mapping's lag, now."""
    position = poller.position()
    function = poller.function
    if position is None:  # not opened yet
        return StreamLag(function, poller.stream_arn, None, False, 0.0)
    error = position.read_error
    if not error and not position.busy and all(s.caught_up and not s.held for s in position.shards):
        return StreamLag(function, position.stream_arn, 0, True, 0.0)
    try:
        records, oldest, complete = _probe(position, streams, tables)
    except (ClientError, BotoCoreError) as probe_error:
        since = position.failing_since or now
        return StreamLag(
            function,
            position.stream_arn,
            None,
            False,
            max(0.0, now - since) * 1000,
            error or " ".join(str(probe_error).split())[:200],
        )
    age = max(0.0, now - oldest) * 1000 if oldest is not None and records else 0.0
    return StreamLag(function, position.stream_arn, records, complete, age, error)


class LagMonitor:
    """Measures every stream mapping each :data:`LAG_REPORT_SECONDS` and publishes IteratorAge."""

    def __init__(
        self,
        pollers: list[StreamPoller],
        streams: Any,
        tables: Any,
        metrics: MetricsPublisher,
        stopping: threading.Event,
        interval: float = LAG_REPORT_SECONDS,
    ):
        self._pollers = pollers
        self._streams = streams
        self._tables = tables
        self._metrics = metrics
        self._stopping = stopping
        self._interval = interval
        self._lock = threading.Lock()
        self._latest: dict[str, StreamLag] = {}
        self._zeros_left: dict[str, int] = {}
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="localcloud-stream-lag")

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.tick()
            except Exception:  # The monitor must outlive a surprise; say so once.
                log.warning("stream lag monitor failed", exc_info=not self._failed)
                self._failed = True

    def tick(self) -> None:
        for poller in self._pollers:
            lag = measure(poller, self._streams, self._tables, time.time())
            with self._lock:
                self._latest[poller.function] = lag
            self._report(poller, lag)

    def _report(self, poller: StreamPoller, lag: StreamLag) -> None:
        name = poller.source.function_arn.rsplit(":", 1)[-1]
        if lag.oldest_age_ms > 0:
            self._zeros_left[poller.function] = CLEAR_REPORTS
            self._metrics.iterator_age(name, lag.oldest_age_ms)
        elif self._zeros_left.get(poller.function, 0) > 0:
            self._zeros_left[poller.function] -= 1
            self._metrics.iterator_age(name, 0.0)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {function: lag.as_dict() for function, lag in self._latest.items()}
