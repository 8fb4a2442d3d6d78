"""Opening a DynamoDB stream for a poller, and recovering when a read is refused.

:class:`StreamReader` holds a stream poller's shards and checkpoints: it
describes the stream, takes an iterator per shard (after the last record a
shard holds, else after its checkpoint, else at the mapping's starting
position), follows the table to a new stream, and after a refused read
re-opens with a growing pause. The batches themselves are
:class:`localcloud.runtime.streams.StreamPoller`'s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from localcloud.runtime.invoke import Invoker, Stats
from localcloud.runtime.poller import Poller
from localcloud.runtime.streamsource import StreamSource

# One logger for the whole stream poller, whichever module logs, so operators
# filter on one name.
log = logging.getLogger("localcloud.runtime.streams")

# Pauses between attempts to re-open a stream that cannot be read: the first
# retry is at once (an expired iterator needs nothing else), then they grow.
REOPEN_PAUSE_SECONDS = 0.5
REOPEN_PAUSE_MAX_SECONDS = 5.0

# (function ARN, stream ARN, shard id) -> last checkpointed sequence number.
_CHECKPOINTS: dict[tuple[str, str, str], str] = {}
_CHECKPOINTS_LOCK = threading.Lock()


def sequence_number(record: dict[str, Any]) -> str:
    return record["dynamodb"]["SequenceNumber"]


def table_name(stream_arn: str) -> str:
    """``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL`` -> NAME."""
    return stream_arn.split(":", 5)[5].split("/")[1]


class StreamUnreadable(Exception):
    """DynamoDB Streams refused a read; the cause is chained."""


def _one_line(message: str, limit: int = 200) -> str:
    """An error for a log line or a status cell (moto's 500 answers are whole HTML pages)."""
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


@dataclass
class ShardState:
    shard_id: str
    iterator: str | None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    # Batches taken from the buffer (or halves of them) waiting to succeed, in order.
    batches: deque[list[dict[str, Any]]] = field(default_factory=deque)
    attempts: int = 0
    buffered_since: float | None = None
    caught_up: bool = False


def _last_held(shard: ShardState) -> str | None:
    """The sequence number of the last record the shard has read and still holds."""
    if shard.buffer:
        return sequence_number(shard.buffer[-1])
    if shard.batches and shard.batches[-1]:
        return sequence_number(shard.batches[-1][-1])
    return None


class StreamReader(Poller):
    """A stream poller's shards: opening, checkpoints and recovery from refused reads."""

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
        self._shards: list[ShardState] | None = None
        self._reopen = False
        self._read_error: str | None = None
        self._failing_since: float | None = None
        self._refusals = 0

    def _key(self, shard_id: str) -> tuple[str, str, str]:
        return (self.source.function_arn, self.stream_arn, shard_id)

    def checkpoint(self, shard_id: str) -> str | None:
        with _CHECKPOINTS_LOCK:
            return _CHECKPOINTS.get(self._key(shard_id))

    def _checkpoint(self, shard: ShardState, record: dict[str, Any]) -> None:
        with _CHECKPOINTS_LOCK:
            _CHECKPOINTS[self._key(shard.shard_id)] = sequence_number(record)

    # -- opening and re-opening the stream ----------------------------------------

    def _open(self, previous: list[ShardState] | None) -> list[ShardState]:
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
                kept = held.get(shard_id) or ShardState(shard_id=shard_id, iterator=None)
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
