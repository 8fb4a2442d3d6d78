"""The writer: one chunk from the ingest queue into the readings table.

Every put is idempotent (keys derive from the reading), and the job counter
advances through :meth:`IngestJobs.record_chunk`, which counts a chunk once
however often SQS delivers it. A chunk is therefore safe to redeliver at any
point: before, during or after its writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from chalicelib.clock import Backoff
from chalicelib.errors import ChunkFormatError
from chalicelib.observability import correlated, count, logger
from chalicelib.readings.chunks import decode_chunk
from chalicelib.readings.model import CSV_COLUMNS, Reading
from chalicelib.readings.store import reading_item


@dataclass(frozen=True)
class ChunkWritten:
    ingest_id: str
    seq: int
    rows: int
    counted: bool


def write_chunk(body: str, services) -> ChunkWritten:
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
        services.readings.put_many(items, Backoff(services.clock))
        counted = services.jobs.record_chunk(chunk.ingest_id, chunk.seq, len(items))
        if counted:
            count("RowsWritten", len(items))
            services.jobs.complete_if_done(chunk.ingest_id)
        else:
            logger.info("chunk already counted; rewrote its items", extra={"seq": chunk.seq})
        return ChunkWritten(chunk.ingest_id, chunk.seq, len(items), counted)
