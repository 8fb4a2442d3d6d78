"""Property: whatever mix of rows a file holds, every row is stored or rejected, once."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.readings.pipeline import ingest_bytes

HEADER = "timestamp,location,source,local_dest,local_avg,remote_dest,remote_avg"
GOOD = st.builds(
    lambda t, loc, src, a, b: f"{t},{loc},{src},gw,{a},probe,{b}",
    st.integers(0, 10**9).map(lambda n: f"{1700000000 + n}.{n % 997}"),
    st.sampled_from(["lab-1", "lab-2", "x"]),
    st.sampled_from(["wired", "wireless"]),
    st.decimals(0, 10000, places=2).map(str),
    st.decimals(0, 10000, places=3).map(str),
)
BAD = st.sampled_from(
    [
        "nope,lab-1,wired,gw,1,probe,2",
        "1700000000,,wired,gw,1,probe,2",
        "1700000000,lab-1,wired,gw,-1,probe,2",
        "1700000000,lab-1,wired,gw,1,probe",
        "1700000000,lab-1,wired,gw,1,probe,2,3",
        '1700000000,"lab\n1",wired,gw,1,probe,2',
    ]
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.one_of(GOOD, BAD), max_size=40))
def test_accepted_plus_rejected_is_seen_and_stored_equals_accepted(services, outputs, rows):
    key = f"incoming/{uuid.uuid4().hex}.csv"
    job = ingest_bytes(services, outputs, "\n".join([HEADER, *rows]).encode(), key=key)
    assert job["rows_accepted"] + job["rows_rejected"] == job["rows_seen"] == len(rows)
    assert job["rows_written"] == job["rows_accepted"]
    stored = services.clients.dynamodb.scan(
        TableName=services.settings.readings_table,
        FilterExpression="ingest_id = :i",
        ExpressionAttributeValues={":i": {"S": job["ingest_id"]}},
    )["Items"]
    # Rows with the same location, source and time are one reading, by design.
    assert {(i["location"]["S"], i["reading_id"]["S"]) for i in stored} == _keys_of_good(rows)
    assert job["state"] == ("COMPLETED_WITH_REJECTS" if job["rows_rejected"] else "COMPLETED")


def _keys_of_good(rows: list[str]) -> set[tuple[str, str]]:
    from pydantic import ValidationError

    from chalicelib.readings.model import CSV_COLUMNS, Reading

    found = set()
    for row in rows:
        fields = row.split(",")
        if len(fields) != len(CSV_COLUMNS):
            continue
        try:
            reading = Reading.model_validate(dict(zip(CSV_COLUMNS, fields, strict=True)))
        except ValidationError:
            continue
        found.add((reading.location, reading.reading_id))
    return found
