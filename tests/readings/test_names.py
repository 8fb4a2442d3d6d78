"""Property: any accepted location and source name round-trips through CSV ingest and every route.

Names are real-world text (``Lab 3, floor 2``, ``Zürich/north``, ``a~b``, any
script): CSV quotes them, chunks carry them, DynamoDB keys hold them, and the
API takes them percent-encoded in path segments and query strings, as a
client sends them to API Gateway. Two transports: Chalice's test client (over
moto), and HTTP to the local cloud's API server (Chalice's local server),
after an upload that flows through S3, SQS and the handlers.
"""

from __future__ import annotations

import csv
import http.client
import io
import itertools
import json
import time
from collections.abc import Callable
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.readings.jobs import FINAL_STATES, job_id
from tests.readings.names import NAMES
from tests.readings.pipeline import ingest_bytes

HEADER = ["timestamp", "location", "source", "local_dest", "local_avg", "remote_dest", "remote_avg"]
# (method, path, body) -> (status, JSON body or None)
Call = Callable[[str, str, dict | None], tuple[int, dict | None]]

# Each example gets its own second of 2030-01-01, so examples never see each
# other's readings (moto keeps them) even when they draw the same names.
_seconds = itertools.count()
PAIRS = st.lists(st.tuples(NAMES, NAMES), min_size=1, max_size=3, unique=True)


def path(*segments: str) -> str:
    return "/" + "/".join(quote(s, safe="") for s in segments)


def csv_file(epoch: int, pairs: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for n, (location, source) in enumerate(pairs):
        writer.writerow([f"{epoch}.{n:06d}", location, source, "gw", "1.5", "probe", "20"])
    return out.getvalue().encode()


def exercise_every_route(call: Call, epoch: int, pairs: list[tuple[str, str]]) -> None:
    """The ingested readings, found and changed through each route by their names."""
    moment = f"{epoch}"
    day = time.strftime("%Y-%m-%d", time.gmtime(epoch))
    window = {"from": moment, "to": f"{epoch}.999999"}

    status, page = call("GET", "/readings?" + urlencode({"date": day, "limit": "1000"}), None)
    assert status == 200, page
    on_the_day = {(i["location"], i["source"]) for i in page["items"]}
    assert set(pairs) <= on_the_day

    for location, source in pairs:
        query = urlencode({**window, "source": source}, quote_via=quote)
        status, page = call("GET", path("readings", location) + "?" + query, None)
        assert status == 200, page
        [item] = page["items"]
        assert (item["location"], item["source"]) == (location, source)
        reading_path = path("readings", location, item["reading_id"])
        assert call("GET", reading_path, None) == (200, item)
        changed = {k: v for k, v in item.items() if k != "reading_id"} | {"local_avg": 7}
        status, replaced = call("PUT", reading_path, changed)
        assert (status, replaced["local_avg"], replaced["location"]) == (200, 7, location)

    # Pages of one, through the cursor, by location.
    location = pairs[0][0]
    mine = sorted(p for p in pairs if p[0] == location)
    seen, cursor = [], None
    for _ in range(len(mine) + 1):
        params = {**window, "limit": "1", **({"cursor": cursor} if cursor else {})}
        status, page = call("GET", path("readings", location) + "?" + urlencode(params), None)
        assert status == 200, page
        seen += [(i["location"], i["source"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == mine

    for location, source in pairs:
        status, page = call(
            "GET", path("readings", location) + "?" + urlencode(window, quote_via=quote), None
        )
        for item in page["items"]:
            if item["source"] == source:
                reading_path = path("readings", location, item["reading_id"])
                assert call("DELETE", reading_path, None) == (204, None)
                assert call("GET", reading_path, None)[0] == 404


def create_through_the_api(call: Call, epoch: int, location: str, source: str) -> None:
    body = {
        "timestamp": f"{epoch}.5",
        "location": location,
        "source": source,
        "local_dest": "gw",
        "local_avg": 1,
        "remote_dest": "probe",
        "remote_avg": 2,
    }
    status, created = call("POST", "/readings", body)
    assert status == 201, created
    assert (created["location"], created["source"]) == (location, source)
    assert call("GET", path("readings", location, created["reading_id"]), None) == (200, created)


def _next_epoch() -> int:
    return 1893456000 + next(_seconds)


# -- through Chalice's test client, over moto --------------------------------------


def _client_call(api) -> Call:
    def call(method: str, url: str, body: dict | None):
        raw = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = getattr(api.http, method.lower())(url, body=raw, headers=headers)
        return response.status_code, (json.loads(response.body) if response.body else None)

    return call


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=PAIRS)
def test_any_name_round_trips_through_csv_ingest_and_every_route(services, outputs, api, pairs):
    epoch = _next_epoch()
    key = f"incoming/names/{epoch}.csv"
    job = ingest_bytes(services, outputs, csv_file(epoch, pairs), key=key)
    assert (job["state"], job["rows_written"]) == ("COMPLETED", len(pairs)), job
    exercise_every_route(_client_call(api), epoch, pairs)
    create_through_the_api(_client_call(api), epoch, *pairs[0])


ISSUE_NAMES = [("Lab 3, floor 2", "Zürich/north"), ("a~b", "c%2Fd"), ("東京 3F", "🙂 + ~")]


def test_the_names_of_the_issue_round_trip_and_bad_encodings_are_400s(services, outputs, api):
    epoch = _next_epoch()
    body = csv_file(epoch, ISSUE_NAMES)
    assert ingest_bytes(services, outputs, body, key=f"incoming/{epoch}.csv")["rows_written"] == 3
    exercise_every_route(_client_call(api), epoch, ISSUE_NAMES)
    status, error = _client_call(api)("GET", "/readings/caf%E9", None)  # Latin-1, not UTF-8
    assert status == 400 and error["details"] == [
        {"field": "location", "problem": "is not percent-encoded UTF-8"}
    ]


# -- over HTTP, to the local cloud's API server ---------------------------------------


@pytest.fixture
def cloud():
    from localcloud.cloud import LocalCloud

    with LocalCloud(aws_port=0, api_port=0) as running:
        yield running


def _http_call(port: int) -> Call:
    def call(method: str, url: str, body: dict | None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            data = json.dumps(body).encode() if body is not None else None
            connection.request(method, url, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
        finally:
            connection.close()

    return call


def _finished(cloud, ingest_id: str, limit: float = 60.0) -> dict:
    jobs = cloud.clients.dynamodb
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        item = jobs.get_item(
            TableName=cloud.stack.settings.ingests_table, Key={"id": {"S": ingest_id}}
        ).get("Item")
        if item and item["state"]["S"] in FINAL_STATES:
            return {k: next(iter(v.values())) for k, v in item.items()}
        time.sleep(0.1)
    raise AssertionError(f"ingest {ingest_id} did not finish within {limit:.0f} s")


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=PAIRS)
def test_any_name_round_trips_over_http_through_the_local_cloud(cloud, pairs):
    epoch = _next_epoch()
    bucket, key = cloud.stack.settings.uploads_bucket, f"incoming/names-http/{epoch}.csv"
    etag = cloud.clients.s3.put_object(Bucket=bucket, Key=key, Body=csv_file(epoch, pairs))["ETag"]
    job = _finished(cloud, job_id(bucket, key, etag))
    assert job["state"] == "COMPLETED", job
    call = _http_call(cloud.api_port)
    exercise_every_route(call, epoch, pairs)
    create_through_the_api(call, epoch, *pairs[0])
