"""DynamoDB key design for readings and ingest jobs.

Readings table
    partition key ``location``; sort key ``reading_id`` =
    ``{YYYYMMDDTHHMMSS.ffffffZ}~{source}``. Readings that differ in location
    or source can never share a key, and a location's readings sort by time.

``by_date`` index
    partition key ``date_shard`` = ``{YYYY-MM-DD}#{NN}``, sort key
    ``date_sort`` = ``{reading_id}~{location}``. The shard ``NN`` is a stable
    hash of the reading's key, so one day's writes spread over
    :data:`DATE_SHARDS` partitions instead of one hot partition; a query by
    date reads every shard and merges them in time order.

Names and the ``~`` separator
    ``location`` and ``source`` are any printable text (see
    :mod:`chalicelib.readings.model`), ``~`` included. A reading id still
    parses: its timestamp has a fixed width and no ``~``, so the first ``~``
    ends it and everything after is the source. ``date_sort`` is never
    parsed, only ordered, and orders by time first; when names hold ``~``,
    two readings may share a ``date_sort`` value (source ``a~b`` at ``c``, and
    source ``a`` at ``b~c``), which an index allows. Query cursors resume from
    the table's own key, so such readings are neither skipped nor repeated.

Ingests table
    partition key ``id``. Job items carry ``kind = "ingest"`` and appear in
    the sparse ``by_start`` index (sort key ``started_sort`` =
    ``{started_at}#{id}``), which lists jobs newest first. Chunk markers live
    in the same table under ``{id}/chunk/{run}/{seq}`` and expire via TTL.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

READING_PK = "location"
READING_SK = "reading_id"
BY_DATE_INDEX = "by_date"
BY_DATE_PK = "date_shard"
BY_DATE_SK = "date_sort"
# Changing this number re-homes every reading in the index: a migration, not a tweak.
DATE_SHARDS = 8

JOB_PK = "id"
JOB_KIND = "ingest"
JOBS_BY_START_INDEX = "by_start"
JOBS_BY_START_PK = "kind"
JOBS_BY_START_SK = "started_sort"
EXPIRES_AT = "expires_at"

ID_SEPARATOR = "~"
_TS_LEN = len("20190528T105509.385334Z")
# DynamoDB caps a sort key at 1,024 bytes, and an index's too. ``date_sort``
# holds a timestamp, two separators, the source and the location, so each
# name gets half of what is left: every key stays valid whatever the names.
MAX_SORT_KEY_BYTES = 1024
MAX_NAME_BYTES = (MAX_SORT_KEY_BYTES - _TS_LEN - 2 * len(ID_SEPARATOR)) // 2


def timestamp_key(ts: datetime) -> str:
    """Fixed-width, sortable UTC form of a timestamp, microsecond precision."""
    ts = ts.astimezone(UTC)
    return (
        f"{ts.year:04d}{ts.month:02d}{ts.day:02d}T"
        f"{ts.hour:02d}{ts.minute:02d}{ts.second:02d}.{ts.microsecond:06d}Z"
    )


def parse_timestamp_key(text: str) -> datetime:
    if len(text) != _TS_LEN:
        raise ValueError(f"{text!r} is not a timestamp key")
    return datetime.strptime(text, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)


def reading_id(ts: datetime, source: str) -> str:
    return f"{timestamp_key(ts)}{ID_SEPARATOR}{source}"


def split_reading_id(value: str) -> tuple[datetime, str]:
    """Inverse of :func:`reading_id`; raises ValueError for anything else."""
    ts_text, sep, source = value.partition(ID_SEPARATOR)
    if not sep or not source:
        raise ValueError(f"{value!r} is not a reading id")
    return parse_timestamp_key(ts_text), source


def date_shard(location: str, reading_id_: str) -> str:
    day = reading_id_[:8]
    shard = zlib.crc32(f"{location}{ID_SEPARATOR}{reading_id_}".encode()) % DATE_SHARDS
    return f"{day[:4]}-{day[4:6]}-{day[6:8]}#{shard:02d}"


def date_sort(location: str, reading_id_: str) -> str:
    return f"{reading_id_}{ID_SEPARATOR}{location}"


def chunk_marker_id(ingest_id: str, run: int, seq: int) -> str:
    # Keyed by the parse's run as well: a later run may cut the file differently.
    return f"{ingest_id}/chunk/{run}/{seq}"
