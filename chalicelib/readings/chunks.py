"""Chunks: many accepted rows per SQS message, and the batched sender.

A chunk is one SQS message carrying up to :data:`MAX_CHUNK_ROWS` rows of one
ingest job, from one *run* of its parse (see :mod:`chalicelib.readings.jobs`):
the writer counts a chunk only for the run that is current on the job, so
chunks left over from an earlier, interrupted or superseded parse change no
count. Packing rows keeps the ingest queue shallow and the API calls few:
one SendMessageBatch moves thousands of rows, and the writer spends one
transaction per chunk on bookkeeping, not one per row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib import jsontext
from chalicelib.clock import Backoff
from chalicelib.errors import ChunkFormatError, SendFailedError

# Version 2 added the run; a version 1 chunk is refused (ChunkFormatError).
CHUNK_VERSION = 2
# SQS caps a message and a whole SendMessageBatch request at 256 KiB; a chunk
# stays under half that so two chunks share one batch call, with room for the
# request's own framing.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_CHUNK_BYTES = 120 * 1024
MAX_BATCH_BYTES = MAX_MESSAGE_BYTES - 4 * 1024
MAX_BATCH_ENTRIES = 10
# Bounds the writer's work per message: 1,000 rows is 40 BatchWriteItem calls.
MAX_CHUNK_ROWS = 1000


@dataclass(frozen=True)
class Chunk:
    ingest_id: str
    run: int
    seq: int
    rows: list[list[str]]


def encode_chunk(ingest_id: str, run: int, seq: int, encoded_rows: list[str]) -> str:
    """Join rows that were already JSON-encoded one by one (see :func:`encode_row`)."""
    return (
        f'{{"v":{CHUNK_VERSION},"ingest_id":{json.dumps(ingest_id)},"run":{run},"seq":{seq},'
        f'"rows":[{",".join(encoded_rows)}]}}'
    )


def encode_row(row: list[str]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def decode_chunk(body: str) -> Chunk:
    """Parse a chunk message, refusing anything that is not exactly our format."""
    try:
        data = jsontext.loads(body)
    except (TypeError, ValueError) as error:
        raise ChunkFormatError(f"message body is not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("v") != CHUNK_VERSION:
        raise ChunkFormatError(f"message is not a version {CHUNK_VERSION} chunk")
    ingest_id, seq, rows = data.get("ingest_id"), data.get("seq"), data.get("rows")
    run = data.get("run")
    if not isinstance(ingest_id, str) or not ingest_id:
        raise ChunkFormatError("chunk has no ingest_id")
    if not isinstance(run, int) or isinstance(run, bool) or run < 1:
        raise ChunkFormatError("chunk has no valid run")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ChunkFormatError("chunk has no valid seq")
    if not isinstance(rows, list) or not all(
        isinstance(row, list) and all(isinstance(v, str) for v in row) for row in rows
    ):
        raise ChunkFormatError("chunk rows must be lists of strings")
    return Chunk(ingest_id=ingest_id, run=run, seq=seq, rows=rows)


class ChunkPacker:
    """Groups encoded rows into chunks no larger than the byte and row bounds."""

    def __init__(
        self,
        ingest_id: str,
        run: int,
        max_bytes: int | None = None,
        max_rows: int | None = None,
    ):
        self.ingest_id = ingest_id
        self.run = run
        # The bounds are read when a packer is made, not when this module is
        # imported, so a test can shrink them to get many chunks from a small file.
        self.max_bytes = max_bytes or MAX_CHUNK_BYTES
        self.max_rows = max_rows or MAX_CHUNK_ROWS
        self.chunks = 0
        self._rows: list[str] = []
        self._bytes = 0
        # Envelope size with a generous seq; rows add their length plus a comma.
        self._overhead = len(encode_chunk(ingest_id, run, 10**9, []).encode())

    def add(self, row: list[str]) -> str | None:
        """Add a row; returns a finished chunk body when the row did not fit in the open one."""
        encoded = encode_row(row)
        size = len(encoded.encode()) + 1
        if self._overhead + size > self.max_bytes:
            raise ValueError("a single row is larger than a chunk")
        finished = None
        if self._rows and (
            self._overhead + self._bytes + size > self.max_bytes or len(self._rows) >= self.max_rows
        ):
            finished = self.flush()
        self._rows.append(encoded)
        self._bytes += size
        return finished

    def flush(self) -> str | None:
        if not self._rows:
            return None
        body = encode_chunk(self.ingest_id, self.run, self.chunks, self._rows)
        self.chunks += 1
        self._rows, self._bytes = [], 0
        return body


class BatchSender:
    """Sends message bodies with SendMessageBatch, up to 10 entries and 256 KiB per call.

    Entries that SQS reports as failed are retried with backoff, a bounded
    number of times; entries failed by the sender's own fault are not retried.
    Either way a body that could not be sent raises :class:`SendFailedError`,
    so the ingest fails loudly instead of losing rows.
    """

    def __init__(self, sqs: Any, queue_url: str, backoff: Backoff):
        self.sqs = sqs
        self.queue_url = queue_url
        self.backoff = backoff
        self.calls = 0
        self.sent = 0
        self._pending: list[str] = []
        self._pending_bytes = 0

    def add(self, body: str) -> None:
        size = len(body.encode())
        if self._pending and (
            len(self._pending) == MAX_BATCH_ENTRIES or self._pending_bytes + size > MAX_BATCH_BYTES
        ):
            self.flush()
        self._pending.append(body)
        self._pending_bytes += size

    def flush(self) -> None:
        if not self._pending:
            return
        entries = {str(i): body for i, body in enumerate(self._pending)}
        self._pending, self._pending_bytes = [], 0
        for attempt in range(1, self.backoff.attempts + 1):
            response = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": i, "MessageBody": body} for i, body in entries.items()],
            )
            self.calls += 1
            for ok in response.get("Successful", []):
                entries.pop(ok["Id"], None)
                self.sent += 1
            failed = response.get("Failed", [])
            if not entries:
                return
            fatal = [f for f in failed if f.get("SenderFault")]
            if fatal:
                raise SendFailedError(
                    f"SQS refused {len(fatal)} message(s): {fatal[0].get('Message')}"
                )
            if attempt < self.backoff.attempts:
                self.backoff.wait(attempt)
        raise SendFailedError(
            f"{len(entries)} message(s) still unsent after {self.backoff.attempts} attempts"
        )
