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

Opening and recovery are :mod:`localcloud.runtime.streamreader`'s; the record
sent to the on-failure queue is :mod:`localcloud.runtime.streamfailure`'s.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.streamrecords import lambda_record
from localcloud.runtime.invoke import ABORTED
from localcloud.runtime.responses import InvalidBatchResponse, failed_identifiers
from localcloud.runtime.streamfailure import RECORD_AGE_EXCEEDED, RETRY_EXHAUSTED, failure_record
from localcloud.runtime.streamreader import (
    ShardState,
    StreamReader,
    StreamUnreadable,
    log,
    sequence_number,
    table_name,
)
from localcloud.runtime.streamsource import StreamSource

# Imported from here by the runtime, the lag monitor and the tools.
__all__ = [
    "PollerPosition",
    "ShardPosition",
    "StreamPoller",
    "StreamSource",
    "lambda_record",
    "table_name",
]

GET_RECORDS_LIMIT = 1000


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


class StreamPoller(StreamReader):
    """Reads each shard in order and invokes the function with Lambda's batch semantics."""

    name = "stream"

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

    def _step(self, shard: ShardState) -> bool:
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

    def _fetch(self, shard: ShardState) -> bool:
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

    def _next_batch(self, shard: ShardState) -> list[dict[str, Any]] | None:
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

    def _process(self, shard: ShardState, batch: list[dict[str, Any]]) -> None:
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
            sequences = [sequence_number(r) for r in batch]
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

    def _complete(self, shard: ShardState, batch: list[dict[str, Any]]) -> None:
        shard.batches.popleft()
        shard.attempts = 0
        self._checkpoint(shard, batch[-1])

    def _discard(self, shard: ShardState, batch: list[dict[str, Any]], condition: str) -> None:
        """Give up on a batch: describe it to the on-failure destination, move on."""
        log.warning("%s: discarding %d stream records (%s)", self.function, len(batch), condition)
        if self.source.on_failure_url:
            self._sqs.send_message(
                QueueUrl=self.source.on_failure_url,
                MessageBody=json.dumps(
                    failure_record(
                        self.source.function_arn,
                        self.stream_arn,
                        shard.shard_id,
                        shard.attempts,
                        batch,
                        condition,
                    )
                ),
            )
        shard.batches[0] = batch
        self._complete(shard, batch)

    def is_idle(self) -> bool:
        if self.busy or self._shards is None:
            return False
        return all(s.caught_up and not s.buffer and not s.batches for s in self._shards)
