"""The readings and ingest-job REST operations, independent of Chalice.

The calling convention and the shared parsing live in :mod:`chalicelib.rest`.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from chalicelib import rest
from chalicelib.config import UPLOADS_PREFIX
from chalicelib.errors import BadRequest, NotFound, ValidationFailed
from chalicelib.lazy import lazy
from chalicelib.pagination import decode_cursor, invalid_cursor
from chalicelib.readings import keys

if TYPE_CHECKING:
    from chalicelib.readings.model import Reading

# Imported at first use (app.py imports this module; see chalicelib/lazy.py):
# the model brings pydantic, which the event handlers' functions never need here.
pydantic = lazy("pydantic")
model = lazy("chalicelib.readings.model")
validation = lazy("chalicelib.validation")
uploads = lazy("chalicelib.readings.uploads")

_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,123}\.csv", re.IGNORECASE)
_INGEST_ID = re.compile(r"[0-9a-f]{32}")
_END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_START_OF_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def _reading(body: dict[str, Any]) -> Reading:
    try:
        return model.Reading.model_validate(body)
    except pydantic.ValidationError as error:
        found = validation.problems(error)
        raise ValidationFailed("the reading is not valid", found) from None


# -- operations ------------------------------------------------------------------


def create_upload(services, params, raw_body, headers) -> tuple[int, dict[str, Any]]:
    rest.query(params, ())
    body = rest.parse_body(raw_body)
    unknown = sorted(set(body) - {"filename"})
    filename = body.get("filename")
    found = [{"field": name, "problem": "is not a known field"} for name in unknown]
    if not isinstance(filename, str) or not _FILENAME.fullmatch(filename):
        found.append(
            {
                "field": "filename",
                "problem": "must be a name ending in .csv, up to 128 letters, digits, "
                "spaces, dots, dashes or underscores",
            }
        )
    if found:
        raise ValidationFailed("the upload request is not valid", found)
    key = f"{UPLOADS_PREFIX}{uuid.uuid4().hex}/{filename}"
    bucket = services.settings.uploads_bucket
    max_bytes = services.settings.upload_max_bytes
    post = uploads.presigned_post(services.clients.s3, bucket, key, max_bytes)
    return 201, {
        "bucket": bucket,
        "key": key,
        "method": "POST",
        "url": post["url"],
        "fields": post["fields"],
        "content_type": uploads.CONTENT_TYPE,
        "max_bytes": max_bytes,
        "expires_in": uploads.URL_SECONDS,
    }


def create_reading(services, params, raw_body, headers) -> tuple[int, dict[str, Any]]:
    rest.query(params, ())
    reading = _reading(rest.parse_body(raw_body))
    return 201, services.readings.create(reading)


def _location(location: str) -> str:
    return rest.field("location", model.parse_name, location)


def _split_id(reading_id: str) -> tuple[datetime, str]:
    try:
        return keys.split_reading_id(reading_id)
    except ValueError:
        raise NotFound(f"no reading {reading_id}") from None


def get_reading(services, location, reading_id, params, raw_body, headers):
    rest.query(params, ())
    _split_id(reading_id)
    return 200, services.readings.get(_location(location), reading_id)


def replace_reading(services, location, reading_id, params, raw_body, headers):
    rest.query(params, ())
    _split_id(reading_id)
    location = _location(location)
    reading = _reading(rest.parse_body(raw_body))
    mismatched = []
    if reading.location != location:
        mismatched.append({"field": "location", "problem": "does not match the URL"})
    if reading.reading_id != reading_id:
        mismatched.append(
            {"field": "timestamp", "problem": "with source, does not match the URL's reading id"}
        )
    if mismatched:
        raise ValidationFailed("a reading's location, time and source identify it", mismatched)
    return 200, services.readings.replace(reading)


def delete_reading(services, location, reading_id, params, raw_body, headers):
    rest.query(params, ())
    _split_id(reading_id)
    services.readings.delete(_location(location), reading_id)
    return 204, None


def list_location_readings(services, location, params, raw_body, headers):
    params = rest.query(params, ("from", "to", "source", "limit", "cursor"))
    location = _location(location)
    start = rest.field("from", model.parse_timestamp, params["from"]) if "from" in params else None
    end = rest.field("to", model.parse_timestamp, params["to"]) if "to" in params else None
    start, end = start or _START_OF_TIME, end or _END_OF_TIME
    if start > end:
        raise BadRequest.field("from", "must not be later than to")
    source = params.get("source")
    if source is not None:
        source = rest.field("source", model.parse_name, source)
    limit = rest.limit(params)
    query = {
        "path": "location",
        "location": location,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "source": source,
    }
    after = None
    if "cursor" in params:
        after = decode_cursor(params["cursor"], query)
        try:
            ts, _ = keys.split_reading_id(after) if isinstance(after, str) else (None, None)
        except ValueError:
            ts = None
        if ts is None or not start <= ts <= end:
            raise invalid_cursor()
    items, resume = services.readings.by_location(location, start, end, source, limit, after)
    return 200, rest.page(items, query, resume)


def list_readings_by_date(services, params, raw_body, headers):
    params = rest.query(params, ("date", "limit", "cursor"))
    if "date" not in params:
        raise BadRequest.field("date", "is required (YYYY-MM-DD, UTC)")
    day = rest.day("date", params["date"])
    limit = rest.limit(params)
    query = {"path": "date", "date": day.isoformat()}
    positions = None
    if "cursor" in params:
        positions = _shard_positions(decode_cursor(params["cursor"], query), day)
    items, resume = services.readings.by_date(day, limit, positions)
    encoded = None if resume is None else {str(n): pos for n, pos in resume.items()}
    return 200, rest.page(items, query, encoded)


def _shard_positions(raw: Any, day: date) -> dict[int, dict[str, str] | None]:
    if not isinstance(raw, dict) or not raw:
        raise invalid_cursor()
    positions: dict[int, dict[str, str] | None] = {}
    for shard_text, position in raw.items():
        if not shard_text.isdigit() or int(shard_text) >= keys.DATE_SHARDS:
            raise invalid_cursor()
        shard = int(shard_text)
        if position is not None:
            if not isinstance(position, dict) or set(position) != {
                keys.READING_PK,
                keys.READING_SK,
            }:
                raise invalid_cursor()
            location, rid = position[keys.READING_PK], position[keys.READING_SK]
            if not isinstance(location, str) or not isinstance(rid, str):
                raise invalid_cursor()
            if keys.date_shard(location, rid) != f"{day.isoformat()}#{shard:02d}":
                raise invalid_cursor()
        positions[shard] = position
    return positions


def get_ingest(services, ingest_id, params, raw_body, headers):
    rest.query(params, ())
    job = services.jobs.get(ingest_id) if _INGEST_ID.fullmatch(ingest_id) else None
    if job is None:
        raise NotFound(f"no ingest job {ingest_id}")
    return 200, job


def list_ingests(services, params, raw_body, headers):
    params = rest.query(params, ("limit", "cursor"))
    limit = rest.limit(params)
    query = {"path": "ingests"}
    start_key = None
    if "cursor" in params:
        start_key = decode_cursor(params["cursor"], query)
        if not _is_job_key(start_key):
            raise invalid_cursor()
    jobs, last = services.jobs.list(limit, start_key)
    return 200, rest.page(jobs, query, last)


def _is_job_key(value: Any) -> bool:
    if not isinstance(value, dict) or set(value) != {
        keys.JOB_PK,
        keys.JOBS_BY_START_PK,
        keys.JOBS_BY_START_SK,
    }:
        return False
    job_id, kind, sort = (
        value[k] for k in (keys.JOB_PK, keys.JOBS_BY_START_PK, keys.JOBS_BY_START_SK)
    )
    return (
        isinstance(job_id, str)
        and bool(_INGEST_ID.fullmatch(job_id))
        and kind == keys.JOB_KIND
        and isinstance(sort, str)
        and sort.endswith(f"#{job_id}")
    )
