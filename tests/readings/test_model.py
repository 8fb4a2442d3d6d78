"""Validation of one reading: the rules a CSV row and an API body share."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.readings import keys
from chalicelib.readings.model import CSV_COLUMNS, Reading
from chalicelib.validation import problems
from tests.readings.names import NAMES

GOOD = dict(
    zip(
        CSV_COLUMNS,
        ["1559040909.3853335", "location-03", "wireless", "router-1", "4.39", "device-1", "9.09"],
        strict=True,
    )
)


def test_epoch_with_fraction_is_stored_in_utc_to_the_microsecond():
    reading = Reading.model_validate(GOOD)
    assert reading.timestamp == datetime(2019, 5, 28, 10, 55, 9, 385334, tzinfo=UTC)
    assert reading.local_avg == Decimal("4.39")
    assert reading.reading_id == "20190528T105509.385334Z~wireless"


@pytest.mark.parametrize(
    "text",
    [
        "2019-05-28T10:55:09.385334Z",
        "2019-05-28T12:55:09.385334+02:00",
        "2019-05-28T10:55:09.385334",
    ],
)
def test_iso_8601_is_accepted_and_normalised_to_utc(text):
    reading = Reading.model_validate({**GOOD, "timestamp": text})
    assert reading.timestamp == datetime(2019, 5, 28, 10, 55, 9, 385334, tzinfo=UTC)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("timestamp", "not_a_timestamp!", "must be epoch seconds or an ISO 8601 date-time"),
        ("timestamp", "-1", "epoch seconds must be between 0 and 253402300799"),
        ("timestamp", "NaN", "must be a finite number of epoch seconds"),
        ("timestamp", "1960-01-01T00:00:00Z", "must not be before 1970-01-01"),
        # Past the calendar once in UTC: an OverflowError (a 500, a crashed ingest) before.
        ("timestamp", "9999-12-31T23:59:59-01:00", "is outside the years 1970 to 9999"),
        ("timestamp", "0001-01-01T00:00:00+01:00", "is outside the years 1970 to 9999"),
        ("timestamp", "", "is empty"),
        ("location", "", "is empty"),
        ("location", "   ", "is empty"),
        ("location", "x" * 129, "is longer than 128 characters"),
        ("location", "lab\u200b1", "contains control characters"),  # zero-width space (Cf)
        ("location", "lab\ue0001", "must be printable text"),  # private use: not free text either
        ("source", "wired\u00a0a", "must be printable text"),  # no-break space
        ("source", "wired\tb", "contains control characters"),
        ("location", "\U0001f600" * 125, "is longer than 499 bytes in UTF-8"),
        ("local_dest", "router\x00", "contains control characters"),
        ("local_dest", "rou\x85ter", "contains control characters"),  # a C1 control
        ("remote_dest", "probe\uffff", "contains control characters"),  # SQS cannot carry it
        ("remote_dest", "probe\udcff", "contains control characters"),  # not UTF-8
        ("local_dest", "router\u202e", "contains control characters"),  # a bidi override
        ("local_dest", "a\u2028b", "contains control characters"),  # a line separator
        ("local_avg", "not_a_number", "must be a number of milliseconds"),
        ("local_avg", "-0.5", "must not be negative"),
        ("local_avg", "Infinity", "must be a finite number"),
        ("remote_avg", "NaN", "must be a finite number"),
        ("remote_avg", "1e200", "has more digits or magnitude than can be stored"),
    ],
)
def test_each_bad_value_is_rejected_with_its_field_and_reason(field, value, problem):
    with pytest.raises(ValidationError) as caught:
        Reading.model_validate({**GOOD, field: value})
    [found] = problems(caught.value)
    assert found["field"] == field
    assert found["problem"].startswith(problem)


def test_missing_and_unknown_fields_are_named():
    body = {k: v for k, v in GOOD.items() if k != "remote_avg"} | {"colour": "red"}
    with pytest.raises(ValidationError) as caught:
        Reading.model_validate(body)
    assert sorted(map(tuple, (p.values() for p in problems(caught.value)))) == [
        ("colour", "is not a known field"),
        ("remote_avg", "is required"),
    ]


def test_json_floats_never_reach_the_model_as_float():
    with pytest.raises(ValidationError):
        Reading.model_validate({**GOOD, "local_avg": 4.39})


@pytest.mark.parametrize(
    "name", ["Lab 3, floor 2", "Zürich/north", "a~b", "東京 3F", "🙂 sensor", "x" * 128, "%41"]
)
def test_real_world_names_are_accepted_as_they_are(name):
    reading = Reading.model_validate({**GOOD, "location": name, "source": name})
    assert (reading.location, reading.source) == (name, name)
    assert keys.split_reading_id(reading.reading_id) == (reading.timestamp, name)


@given(location=NAMES, source=NAMES)
def test_every_key_of_an_accepted_name_fits_dynamodbs_limits(location, source):
    reading = Reading.model_validate({**GOOD, "location": location, "source": source})
    rid = reading.reading_id
    assert len(reading.location.encode()) <= 2048  # partition key
    assert len(rid.encode()) <= keys.MAX_SORT_KEY_BYTES
    assert len(keys.date_sort(reading.location, rid).encode()) <= keys.MAX_SORT_KEY_BYTES
    assert keys.split_reading_id(rid) == (reading.timestamp, reading.source)


@given(
    epoch=st.decimals(min_value=0, max_value=253402300799, places=6, allow_nan=False),
    source=NAMES,
)
def test_canonical_row_round_trips_to_the_same_reading(epoch, source):
    reading = Reading.model_validate({**GOOD, "timestamp": str(epoch), "source": source})
    again = Reading.model_validate(dict(zip(CSV_COLUMNS, reading.canonical_row(), strict=True)))
    assert again == reading
    assert keys.split_reading_id(reading.reading_id) == (reading.timestamp, source)


def test_readings_differing_in_location_or_source_never_share_a_key():
    a = Reading.model_validate(GOOD)
    b = Reading.model_validate({**GOOD, "source": "wired"})
    c = Reading.model_validate({**GOOD, "location": "location-04"})
    assert len({(r.location, r.reading_id) for r in (a, b, c)}) == 3


def test_one_day_spreads_over_every_date_shard():
    shards = {keys.date_shard(f"site-{n}", f"20240601T000000.{n:06d}Z~wired") for n in range(400)}
    assert shards == {f"2024-06-01#{n:02d}" for n in range(keys.DATE_SHARDS)}
