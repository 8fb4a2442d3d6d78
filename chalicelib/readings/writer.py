"""The writer: one chunk from the ingest queue into the readings table.

Every put is idempotent (keys derive from the reading), and the job counter
advances through :meth:`IngestJobs.record_chunk`, which counts a chunk once per
run of the parse however often SQS delivers it. A chunk is therefore safe to
redeliver at any point: before, during or after its writes. Completion is
checked after every chunk, counted now or before, so a job whose last chunk
was counted by an invocation that then died still completes when that chunk
comes back.

**Edits made through the API win over repeats.** A chunk's first delivery
puts its rows with BatchWriteItem, which cannot carry conditions. A repeat (a
redelivery, a redrive from the DLQ, or a run after the first: a re-parse or a
replay) may come long after a reading was changed through the API. So a
repeat first reads the stored items (BatchGetItem, 100 keys a call) and puts
only those that are absent or still carry this job's ``ingest_id``; an item
that the API wrote (it has no ``ingest_id``) or another upload wrote since is
left alone. First deliveries, the common case, pay nothing for this. What is
left: a reading deleted through the API is restored by a repeat (a deletion
leaves nothing to recognise), and an edit that lands between a repeat's read
and its write is overwritten; see docs/reliability.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from chalicelib import metric_names
from chalicelib.clock import Backoff
from chalicelib.errors import ChunkFormatError
from chalicelib.observability import correlated, count, logger
from chalicelib.readings.chunks import decode_chunk
from chalicelib.readings.jobs import ChunkCount
from chalicelib.readings.model import CSV_COLUMNS, Reading
from chalicelib.readings.store import reading_item


@dataclass(frozen=True)
class Delivery:
    """What SQS tells about one delivery of a chunk."""

    receive_count: int = 1
    # Moved back from the DLQ by the operator's redrive.
    redriven: bool = False


@dataclass(frozen=True)
class ChunkWritten:
    ingest_id: str
    seq: int
    rows: int
    outcome: ChunkCount
    # Rows not put because the API or another upload changed them since.
    kept: int = 0

    @property
    def counted(self) -> bool:
        return self.outcome is ChunkCount.COUNTED


def write_chunk(body: str, services, delivery: Delivery | None = None) -> ChunkWritten:
    delivery = delivery or Delivery()
    chunk = decode_chunk(body)
    with correlated(ingest_id=chunk.ingest_id):
        try:
            readings = [
                Reading.model_validate(dict(zip(CSV_COLUMNS, row, strict=True)))
                for row in chunk.rows
            ]
        except (ValidationError, ValueError) as error:
            raise ChunkFormatError(f"chunk {chunk.seq} holds an invalid row: {error}") from None
        items = [reading_item(r, chunk.ingest_id) for r in readings]
        backoff = Backoff(services.clock)
        kept = 0
        if delivery.receive_count > 1 or delivery.redriven or chunk.run > 1:
            kept = services.readings.put_many_unless_changed(items, chunk.ingest_id, backoff)
        else:
            services.readings.put_many(items, backoff)
        outcome = services.jobs.record_chunk(chunk.ingest_id, chunk.run, chunk.seq, len(items))
        if outcome is ChunkCount.COUNTED:
            count(metric_names.ROWS_WRITTEN, len(items))
        else:
            logger.info(
                f"chunk {outcome.value}; its items were put again",
                extra={"seq": chunk.seq, "run": chunk.run, "kept": kept},
            )
        # Checked whatever the outcome: "already counted" may mean that an
        # earlier delivery counted this chunk and then died (or timed out)
        # before completing the job, or that a retried transaction found its
        # own first attempt applied.
        services.jobs.complete_if_done(chunk.ingest_id)
        return ChunkWritten(chunk.ingest_id, chunk.seq, len(items), outcome, kept)
