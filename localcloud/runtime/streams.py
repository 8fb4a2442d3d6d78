"""Polls a DynamoDB stream for one function, with Lambda's stream semantics.

* Order: each shard is read and invoked strictly in order, one batch at a time
  (ParallelizationFactor 1). moto has one shard that is never trimmed or split.
* Checkpointing: the position advances only past records that succeeded (or
  were discarded); it is kept per (function, stream, shard) for the life of the
  process, so a restarted runtime resumes after it (``AFTER_SEQUENCE_NUMBER``)
  instead of replaying, as a mapping does. moto keeps no state across
  processes, so neither do checkpoints.
* ReportBatchItemFailures: the checkpoint moves to just before the *lowest*
  reported sequence number and everything from there is retried.
* BisectBatchOnFunctionError: a batch that fails as a whole is split in two and
  each half retried; a split does not use up a retry attempt.
* MaximumRetryAttempts / MaximumRecordAgeInSeconds (-1 or unset: infinite):
  past either bound the batch is discarded, its description (shard, sequence
  range, condition) is sent to the on-failure queue if one is declared, and
  processing moves on.
* Filter criteria: records matching no pattern are skipped before batching.
* A refused read (an expired or unknown iterator, a 500, a stream that is
  gone): the poller logs one warning, re-describes the stream and re-opens
  each shard after the last record it holds, else after its checkpoint. If the
  table's stream is a new one (the table was recreated, e.g. by
  ``python -m localcloud reset``), the old checkpoints mean nothing on it: it
  reads the new stream from ``TRIM_HORIZON``. Until a read succeeds it retries
  with a growing pause, quietly.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.streamrecords import lambda_record
from localcloud.runtime.context import ACCOUNT_ID
from localcloud.runtime.filters import RecordFilter
from localcloud.runtime.invoke import ABORTED, Invoker, Stats
from localcloud.runtime.poller import Poller
from localcloud.runtime.responses import InvalidBatchResponse, failed_identifiers

log = logging.getLogger(__name__)

RETRY_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"
GET_RECORDS_LIMIT = 1000
# Pauses between attempts to re-open a stream that cannot be read: the first
# retry is at once (an expired iterator needs nothing else), then they grow.
REOPEN_PAUSE_SECONDS = 0.5
REOPEN_PAUSE_MAX_SECONDS = 5.0

# (function ARN, stream ARN, shard id) -> last checkpointed sequence number.
_CHECKPOINTS: dict[tuple[str, str, str], str] = {}
_CHECKPOINTS_LOCK = threading.Lock()


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


def _sequence(record: dict[str, Any]) -> str:
    return record["dynamodb"]["SequenceNumber"]


def table_name(stream_arn: str) -> str:
    """``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL`` -> NAME."""
    return stream_arn.split(":", 5)[5].split("/")[1]


class StreamUnreadable(Exception):
    """DynamoDB Streams refused a read; the cause is chained."""


@dataclass(frozen=True)
class ShardPosition:
    """Where a mapping stands on one shard, as the lag monitor needs it."""

    shard_id: str
    checkpoint: str | None
    held: int  # records read and not yet processed
    oldest_held: float | None  # ApproximateCreationDateTime (epoch s) of the first of them
    caught_up: bool


@dataclass(frozen=True)
class PollerPosition:
    stream_arn: str
    starting_position: str
    shards: tuple[ShardPosition, ...]
    busy: bool
    read_error: str | None
    failing_since: float | None  # time.time() of the first refused read in a row


def _one_line(message: str, limit: int = 200) -> str:
    """An error for a log line or a status cell (moto's 500 answers are whole HTML pages)."""
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    # Batches taken from the buffer (or halves of them) waiting to succeed, in order.
    batches: deque[list[dict[str, Any]]] = field(default_factory=deque)
    attempts: int = 0
    buffered_since: float | None = None
    caught_up: bool = False


def _last_held(shard: _Shard) -> str | None:
    """The sequence number of the last record the shard has read and still holds."""
    if shard.buffer:
        return _sequence(shard.buffer[-1])
    if shard.batches and shard.batches[-1]:
        return _sequence(shard.batches[-1][-1])
    return None


class StreamPoller(Poller):
    name = "stream"

    def __init__(
        self,
        source: StreamSource,
        invoker: Invoker,
        streams: Any,
        tables: Any,
        sqs: Any,
        stats: Stats,
        stopping: threading.Event,
        poll_interval: float,
    ):
        super().__init__(source.function, stopping, poll_interval)
        self.source = source
        self._invoker = invoker
        self._streams = streams
        self._sqs = sqs
        self._stats = stats
        self._tables = tables
        # The stream read: the declared one, until the table gets a new stream.
        self.stream_arn = source.stream_arn
        self._shards: list[_Shard] | None = None
        self._reopen = False
        self._read_error: str | None = None
        self._failing_since: float | None = None
        self._refusals = 0

    def _key(self, shard_id: str) -> tuple[str, str, str]:
        return (self.source.function_arn, self.stream_arn, shard_id)

    def checkpoint(self, shard_id: str) -> str | None:
        with _CHECKPOINTS_LOCK:
            return _CHECKPOINTS.get(self._key(shard_id))

    # -- opening and re-opening the stream ----------------------------------------

    def _open(self, previous: list[_Shard] | None) -> list[_Shard]:
        """Describe the stream and take an iterator for each shard.

        With ``previous`` (a re-open after a refused read), a shard goes on after
        the last record it holds or its checkpoint, keeping its batches and retry
        count; if the table now has another stream, everything starts afresh from
        ``TRIM_HORIZON`` of the new one.
        """
        try:
            if previous is None:
                self._adopt_current_stream()
            fresh_stream = previous is not None and self._follow_new_stream()
            if fresh_stream:
                previous = None
            description = self._streams.describe_stream(StreamArn=self.stream_arn)
            held = {s.shard_id: s for s in previous or ()}
            shards = []
            for shard in description["StreamDescription"]["Shards"]:
                shard_id = shard["ShardId"]
                kept = held.get(shard_id) or _Shard(shard_id=shard_id, iterator=None)
                after = _last_held(kept) or self.checkpoint(shard_id)
                args: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
                if after:
                    args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
                elif fresh_stream:
                    args["ShardIteratorType"] = "TRIM_HORIZON"
                else:
                    args["ShardIteratorType"] = self.source.starting_position
                kept.iterator = self._streams.get_shard_iterator(**args)["ShardIterator"]
                shards.append(kept)
        except (ClientError, BotoCoreError) as error:
            raise StreamUnreadable(str(error)) from error
        return shards

    def _adopt_current_stream(self) -> None:
        """Read the table's stream now, even if the app names an older one.

        ``app.py`` reads the stream ARN when it is imported, once per process.
        A process that runs a second local cloud (a test run, with a moto of its
        own) has a new table and stream by then; resuming after a checkpoint of
        the old stream would skip the new one's first records, whose sequence
        numbers restart where the old ones did. In AWS the mapping's ARN is the
        table's stream, and this changes nothing.
        """
        table = self._tables.describe_table(TableName=table_name(self.stream_arn))["Table"]
        current = table.get("LatestStreamArn")
        if current and current != self.stream_arn:
            log.info(
                "%s: reading table %s's current stream %s",
                self.function,
                table["TableName"],
                current,
            )
            self.stream_arn = current

    def _follow_new_stream(self) -> bool:
        """True (and the new stream adopted) if the table's stream is no longer the one read."""
        table = self._tables.describe_table(TableName=table_name(self.stream_arn))["Table"]
        current = table.get("LatestStreamArn")
        if not current or current == self.stream_arn:
            return False
        log.warning(
            "%s: table %s has a new stream %s; reading it from TRIM_HORIZON",
            self.function,
            table["TableName"],
            current,
        )
        self.stream_arn = current
        return True

    def poll(self) -> None:
        try:
            if self._shards is None or self._reopen:
                self._shards = self._open(self._shards)
                self._reopen = False
            progressed = False
            for shard in self._shards:
                if self._stopping.is_set():
                    return
                progressed |= self._step(shard)
        except StreamUnreadable as error:
            self._refused(error)
            return
        self._readable()
        if progressed:
            self._found_work()
        else:
            self._wait_idle()

    def _refused(self, error: StreamUnreadable) -> None:
        """A read failed: re-open at the next poll; one warning per run of failures."""
        self._reopen = True
        self._read_error = _one_line(str(error))
        if self._failing_since is None:
            self._failing_since = time.time()
            log.warning(
                "%s: cannot read stream %s (%s); re-opening it from the checkpoint",
                self.function,
                self.stream_arn,
                self._read_error,
            )
        else:
            log.debug("%s: stream still unreadable: %s", self.function, self._read_error)
        pause = REOPEN_PAUSE_SECONDS * 2 ** min(self._refusals, 8)
        self._refusals += 1
        if self._refusals > 1:
            self._stopping.wait(min(pause, REOPEN_PAUSE_MAX_SECONDS))

    def _readable(self) -> None:
        if self._failing_since is not None:
            log.info("%s: reading stream %s again", self.function, self.stream_arn)
        self._read_error, self._failing_since, self._refusals = None, None, 0

    def position(self) -> PollerPosition | None:
        """A consistent-enough copy of where this mapping stands (for the lag monitor)."""
        shards = self._shards
        if shards is None:
            return None
        positions = []
        for shard in list(shards):
            held = [r for batch in list(shard.batches) for r in batch] + list(shard.buffer)
            oldest = held[0]["dynamodb"].get("ApproximateCreationDateTime") if held else None
            positions.append(
                ShardPosition(
                    shard_id=shard.shard_id,
                    checkpoint=self.checkpoint(shard.shard_id),
                    held=len(held),
                    oldest_held=oldest,
                    caught_up=shard.caught_up,
                )
            )
        return PollerPosition(
            stream_arn=self.stream_arn,
            starting_position=self.source.starting_position,
            shards=tuple(positions),
            busy=self.busy,
            read_error=self._read_error,
            failing_since=self._failing_since,
        )

    def _step(self, shard: _Shard) -> bool:
        fetched = self._fetch(shard)
        batch = self._next_batch(shard)
        if batch is None:
            return fetched
        self._begin()
        try:
            self._process(shard, batch)
        finally:
            self._end()
        return True

    def _fetch(self, shard: _Shard) -> bool:
        if shard.iterator is None or len(shard.buffer) >= self.source.batch_size:
            return False
        try:
            response = self._streams.get_records(
                ShardIterator=shard.iterator, Limit=GET_RECORDS_LIMIT
            )
        except (ClientError, BotoCoreError) as error:
            raise StreamUnreadable(str(error)) from error
        shard.iterator = response.get("NextShardIterator")
        records = [lambda_record(r, self.stream_arn) for r in response.get("Records", [])]
        shard.caught_up = not records
        kept = [r for r in records if self.source.record_filter.matches(r)]
        if records and not kept and not shard.buffer and not shard.batches:
            # Everything fetched was filtered out: the checkpoint moves past it.
            self._checkpoint(shard, records[-1])
        if kept and not shard.buffer:
            shard.buffered_since = time.monotonic()
        shard.buffer.extend(kept)
        return bool(records)

    def _next_batch(self, shard: _Shard) -> list[dict[str, Any]] | None:
        if not shard.batches and shard.buffer:
            full = len(shard.buffer) >= self.source.batch_size
            waited = time.monotonic() - (shard.buffered_since or 0) >= self.source.window_seconds
            if full or waited or self._stopping.is_set():
                size = self.source.batch_size
                shard.batches.append(shard.buffer[:size])
                del shard.buffer[:size]
                shard.buffered_since = time.monotonic() if shard.buffer else None
        return shard.batches[0] if shard.batches else None

    # -- one batch ----------------------------------------------------------------

    def _process(self, shard: _Shard, batch: list[dict[str, Any]]) -> None:
        source = self.source
        max_age = source.maximum_record_age_seconds
        if max_age is not None:
            oldest = batch[0]["dynamodb"].get("ApproximateCreationDateTime", time.time())
            if time.time() - oldest > max_age:
                self._discard(shard, batch, RECORD_AGE_EXCEEDED)
                return
        outcome = self._invoker.invoke({"Records": batch})
        if outcome.status == ABORTED:
            return
        failed_from: int | None = None  # index of the first record to retry
        whole = False
        if not outcome.ok:
            failed_from, whole = 0, True
        elif source.report_batch_item_failures:
            sequences = [_sequence(r) for r in batch]
            try:
                failed = failed_identifiers(outcome.response, sequences)
            except InvalidBatchResponse as error:
                self._stats.note_error(source.function, f"invalid batch response: {error}")
                failed_from, whole = 0, True
            else:
                if failed:
                    # Lambda checkpoints at the lowest sequence number reported.
                    failed_from = min(sequences.index(s) for s in failed)
        if failed_from is None:
            self._complete(shard, batch)
            return
        if failed_from > 0:
            self._checkpoint(shard, batch[failed_from - 1])
        rest = batch[failed_from:]
        if whole and source.bisect_batch_on_error and len(rest) > 1:
            middle = len(rest) // 2
            shard.batches.popleft()
            shard.batches.extendleft([rest[middle:], rest[:middle]])
            shard.attempts = 0
            return
        shard.attempts += 1
        limit = source.maximum_retry_attempts
        if limit is not None and shard.attempts > limit:
            self._discard(shard, rest, RETRY_EXHAUSTED)
            return
        shard.batches[0] = rest

    def _complete(self, shard: _Shard, batch: list[dict[str, Any]]) -> None:
        shard.batches.popleft()
        shard.attempts = 0
        self._checkpoint(shard, batch[-1])

    def _checkpoint(self, shard: _Shard, record: dict[str, Any]) -> None:
        with _CHECKPOINTS_LOCK:
            _CHECKPOINTS[self._key(shard.shard_id)] = _sequence(record)

    def _discard(self, shard: _Shard, batch: list[dict[str, Any]], condition: str) -> None:
        """Give up on a batch: describe it to the on-failure destination, move on."""
        log.warning("%s: discarding %d stream records (%s)", self.function, len(batch), condition)
        if self.source.on_failure_url:
            self._sqs.send_message(
                QueueUrl=self.source.on_failure_url,
                MessageBody=json.dumps(self._failure_record(shard, batch, condition)),
            )
        shard.batches[0] = batch
        self._complete(shard, batch)

    def _failure_record(
        self, shard: _Shard, batch: list[dict[str, Any]], condition: str
    ) -> dict[str, Any]:
        """What Lambda sends to a stream mapping's on-failure destination."""

        def iso(record: dict[str, Any]) -> str:
            seconds = record["dynamodb"].get("ApproximateCreationDateTime", time.time())
            return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()

        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.source.function_arn,
                "condition": condition,
                "approximateInvokeCount": shard.attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": _sequence(batch[0]),
                "endSequenceNumber": _sequence(batch[-1]),
                "approximateArrivalOfFirstRecord": iso(batch[0]),
                "approximateArrivalOfLastRecord": iso(batch[-1]),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }

    def is_idle(self) -> bool:
        if self.busy or self._shards is None:
            return False
        return all(s.caught_up and not s.buffer and not s.batches for s in self._shards)
