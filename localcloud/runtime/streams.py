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
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from localcloud.runtime.context import ACCOUNT_ID
from localcloud.runtime.filters import RecordFilter
from localcloud.runtime.invoke import ABORTED, Invoker, Stats
from localcloud.runtime.poller import Poller
from localcloud.runtime.responses import InvalidBatchResponse, failed_identifiers

log = logging.getLogger(__name__)

RETRY_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"
GET_RECORDS_LIMIT = 1000

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


def _plain(value: Any) -> Any:
    """boto3 gives bytes and datetimes where Lambda's JSON has base64 and epoch seconds."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def lambda_record(raw: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams record as Lambda puts it into ``event["Records"]``."""
    record = _plain(raw)
    record["eventSourceARN"] = stream_arn  # GetRecords omits it; Lambda adds it
    return record


def _sequence(record: dict[str, Any]) -> str:
    return record["dynamodb"]["SequenceNumber"]


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


class StreamPoller(Poller):
    name = "stream"

    def __init__(
        self,
        source: StreamSource,
        invoker: Invoker,
        streams: Any,
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
        self._shards: list[_Shard] | None = None

    def _key(self, shard_id: str) -> tuple[str, str, str]:
        return (self.source.function_arn, self.source.stream_arn, shard_id)

    def _open(self) -> list[_Shard]:
        description = self._streams.describe_stream(StreamArn=self.source.stream_arn)
        shards = []
        for shard in description["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            with _CHECKPOINTS_LOCK:
                checkpoint = _CHECKPOINTS.get(self._key(shard_id))
            args: dict[str, Any] = {"StreamArn": self.source.stream_arn, "ShardId": shard_id}
            if checkpoint:
                args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=checkpoint)
            else:
                args["ShardIteratorType"] = self.source.starting_position
            iterator = self._streams.get_shard_iterator(**args)["ShardIterator"]
            shards.append(_Shard(shard_id=shard_id, iterator=iterator))
        return shards

    def poll(self) -> None:
        if self._shards is None:
            self._shards = self._open()
        progressed = False
        for shard in self._shards:
            if self._stopping.is_set():
                return
            progressed |= self._step(shard)
        if progressed:
            self._found_work()
        else:
            self._wait_idle()

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
        response = self._streams.get_records(ShardIterator=shard.iterator, Limit=GET_RECORDS_LIMIT)
        shard.iterator = response.get("NextShardIterator")
        records = [lambda_record(r, self.source.stream_arn) for r in response.get("Records", [])]
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
                "streamArn": self.source.stream_arn,
            },
        }

    def is_idle(self) -> bool:
        if self.busy or self._shards is None:
            return False
        return all(s.caught_up and not s.buffer and not s.batches for s in self._shards)
