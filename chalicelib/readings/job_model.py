"""The ingest job record: its id, states and public view, and what the writes report.

The record lives in the ingests table (:mod:`chalicelib.readings.keys`); the
writes that move it are :class:`chalicelib.readings.jobs.IngestJobs`.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any

from chalicelib.readings import keys
from chalicelib.readings.attempts import as_public

RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
COMPLETED_WITH_REJECTS = "COMPLETED_WITH_REJECTS"
FAILED = "FAILED"
DONE_STATES = (COMPLETED, COMPLETED_WITH_REJECTS)
# A job in one of these states changes only through a replay.
FINAL_STATES = (*DONE_STATES, FAILED)

_COUNTS = ("rows_seen", "rows_accepted", "rows_rejected", "rows_written")
_PUBLIC = (
    "bucket",
    "key",
    "version",
    "state",
    "reason",
    *_COUNTS,
    "chunks_total",
    "chunks_written",
    "run",
    "extra_columns",
    "rejects_key",
    "rejects_truncated",
    "last_error",
    "version_id",
    "etag",
    "started_at",
    "finished_at",
    "updated_at",
)


def job_id(bucket: str, key: str, version: str) -> str:
    """Stable id of one version of one object (version id, or the ETag without quotes)."""
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version.strip(chr(34))}".encode()).hexdigest()
    return digest[:32]


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None

    @property
    def version(self) -> str:
        return self.version_id or (self.etag or "").strip('"')

    @property
    def ingest_id(self) -> str:
        return job_id(self.bucket, self.key, self.version)


def to_public(raw: dict[str, Any]) -> dict[str, Any]:
    job = {"ingest_id": raw[keys.JOB_PK]}
    for name in _PUBLIC:
        value = raw.get(name)
        if name in _COUNTS or name in ("chunks_written", "run"):
            value = int(value or 0)
        elif name == "chunks_total" and value is not None:
            value = int(value)
        elif name == "extra_columns":
            value = list(value or [])
        elif name == "rejects_truncated":
            value = bool(value)
        elif name == "last_error":
            value = as_public(value)
        job[name] = value
    return job


class ClaimRefused(enum.Enum):
    """Why a delivery does not parse the object."""

    DONE = "object already ingested"
    FAILED = "object failed to ingest"
    PARSED = "object already parsed; the writer finishes the job"
    LEASED = "object being parsed by another delivery"


@dataclass(frozen=True)
class JobClaim:
    """The outcome of asking for a run: granted (``run`` set) or refused (``refused`` set)."""

    job: dict[str, Any]
    run: int | None = None
    refused: ClaimRefused | None = None

    @property
    def granted(self) -> bool:
        return self.run is not None


class ChunkCount(enum.Enum):
    COUNTED = "counted"
    ALREADY_COUNTED = "already counted"
    # The chunk belongs to an earlier run of the job's parse.
    STALE = "stale"
