"""The REST API through Chalice's test client, over moto."""

from __future__ import annotations

import base64
import json

import pytest

from tests.readings.pipeline import ingest_bytes

JSON = {"Content-Type": "application/json"}
BODY = {
    "timestamp": "2024-06-01T10:00:00.5Z",
    "location": "lab-01",
    "source": "wired",
    "local_dest": "gw",
    "local_avg": 1.25,
    "remote_dest": "probe",
    "remote_avg": 20.5,
}
RID = "20240601T100000.500000Z~wired"


def call(api, method, path, body=None, headers=JSON):
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    response = getattr(api.http, method)(path, body=raw, headers=headers)
    return response.status_code, (json.loads(response.body) if response.body else None)


def assert_error(result, status, code, field=None):
    got_status, body = result
    assert got_status == status, body
    assert body["error"] == code and body["message"]
    if field:
        assert field in [d["field"] for d in body["details"]]


def test_health(api):
    assert call(api, "get", "/health") == (200, {"status": "ok"})


def test_reading_lifecycle(api):
    status, created = call(api, "post", "/readings", BODY)
    assert status == 201 and created["reading_id"] == RID and created["local_avg"] == 1.25
    assert call(api, "get", f"/readings/lab-01/{RID}") == (200, created)
    changed = {**BODY, "local_avg": 3}
    status, replaced = call(api, "put", f"/readings/lab-01/{RID}", changed)
    assert status == 200 and replaced["local_avg"] == 3
    assert call(api, "delete", f"/readings/lab-01/{RID}") == (204, None)
    assert_error(call(api, "get", f"/readings/lab-01/{RID}"), 404, "not_found")


def test_creating_an_existing_reading_is_a_conflict(api):
    call(api, "post", "/readings", BODY)
    assert_error(call(api, "post", "/readings", BODY), 409, "conflict")


@pytest.mark.parametrize("method", ["put", "delete", "get"])
def test_absent_readings_are_404(api, method):
    body = BODY if method == "put" else None
    assert_error(call(api, method, f"/readings/lab-01/{RID}", body), 404, "not_found")
    assert_error(call(api, method, "/readings/lab-01/not-an-id", body), 404, "not_found")


def test_put_cannot_move_a_reading_to_another_identity(api):
    call(api, "post", "/readings", BODY)
    moved = {**BODY, "source": "wireless"}
    assert_error(
        call(api, "put", f"/readings/lab-01/{RID}", moved), 422, "validation_failed", "timestamp"
    )
    assert_error(
        call(api, "put", f"/readings/lab-02/{RID}", BODY), 422, "validation_failed", "location"
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({**BODY, "local_avg": -1}, 422, "validation_failed", "local_avg"),
        ({**BODY, "timestamp": "soon"}, 422, "validation_failed", "timestamp"),
        ({**BODY, "extra": 1}, 422, "validation_failed", "extra"),
        ({k: v for k, v in BODY.items() if k != "source"}, 422, "validation_failed", "source"),
        ([1, 2], 422, "validation_failed", "body"),
        (b"{not json", 400, "bad_request", "body"),
        (b'{"local_avg": NaN}', 400, "bad_request", "body"),
        (b"", 400, "bad_request", "body"),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_field(api, body, status, code, field):
    assert_error(call(api, "post", "/readings", body), status, code, field)


def test_a_non_json_content_type_is_415_in_the_same_error_shape(api):
    assert_error(
        call(api, "post", "/readings", b"a,b", {"Content-Type": "text/csv"}),
        415,
        "unsupported_media_type",
    )


@pytest.mark.parametrize(
    "path",
    [
        "/health?x=1",
        "/readings/lab-01?colour=red",
        "/readings?date=2024-06-01&page=2",
        "/ingests?offset=1",
    ],
)
def test_unknown_query_parameters_are_400(api, path):
    status, body = call(api, "get", path)
    assert status == 400 and body["error"] == "bad_request"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/readings/lab-01?limit=0", "limit"),
        ("/readings/lab-01?limit=1001", "limit"),
        ("/readings/lab-01?limit=ten", "limit"),
        ("/readings/lab-01?from=yesterday", "from"),
        ("/readings/lab-01?to=9999-12-31T23:59:59-01:00", "to"),
        ("/readings/lab-01?from=2024-06-02T00:00:00Z&to=2024-06-01T00:00:00Z", "from"),
        ("/readings", "date"),
        ("/readings?date=2024-13-01", "date"),
        # date.fromisoformat takes these too; the API documents YYYY-MM-DD only.
        ("/readings?date=20240601", "date"),
        ("/readings?date=2024-W22-6", "date"),
        ("/readings/lab-01?cursor=%%%", "cursor"),
        ("/readings?date=2024-06-01&cursor=bm90LWpzb24", "cursor"),
        ("/ingests?cursor=e30", "cursor"),
    ],
)
def test_bad_query_values_are_400_naming_the_parameter(api, path, field):
    assert_error(call(api, "get", path), 400, "bad_request", field)


@pytest.fixture
def day_of_readings(api):
    for n in range(30):
        location = f"site-{n % 4}"
        body = {
            **BODY,
            "location": location,
            "timestamp": f"2024-06-01T10:00:{n:02d}Z",
            "source": "wired" if n % 2 else "wireless",
        }
        assert call(api, "post", "/readings", body)[0] == 201
    call(api, "post", "/readings", {**BODY, "timestamp": "2024-06-02T00:00:00Z"})
    return 30


def pages(api, path, limit):
    items, cursor, count = [], None, 0
    while True:
        sep = "&" if "?" in path else "?"
        url = f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        status, body = call(api, "get", url)
        assert status == 200, body
        items.extend(body["items"])
        cursor, count = body["next_cursor"], count + 1
        assert count < 100
        if cursor is None:
            return items


@pytest.mark.parametrize("limit", [1, 7, 50])
def test_paging_by_date_returns_each_reading_once_in_time_order(api, day_of_readings, limit):
    items = pages(api, "/readings?date=2024-06-01", limit)
    assert len(items) == day_of_readings
    stamps = [(i["timestamp"], i["source"], i["location"]) for i in items]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


@pytest.mark.parametrize("limit", [1, 3, 1000])
def test_paging_a_location_by_time_range_and_source(api, day_of_readings, limit):
    path = "/readings/site-1?from=2024-06-01T10:00:05Z&to=2024-06-01T10:00:25Z&source=wired"
    items = pages(api, path, limit)
    # site-1 holds n = 1, 5, 9, ... (odd, so wired); 5..25 keeps 5, 9, 13, 17, 21, 25.
    assert [i["timestamp"][17:19] for i in items] == ["05", "09", "13", "17", "21", "25"]


def test_a_cursor_cannot_be_replayed_against_another_query(api, day_of_readings):
    _, body = call(api, "get", "/readings/site-1?limit=1")
    assert_error(
        call(api, "get", f"/readings/site-2?limit=1&cursor={body['next_cursor']}"),
        400,
        "bad_request",
        "cursor",
    )
    _, body = call(api, "get", "/readings?date=2024-06-01&limit=1")
    assert_error(
        call(api, "get", f"/readings?date=2024-06-02&cursor={body['next_cursor']}"),
        400,
        "bad_request",
        "cursor",
    )


def test_a_forged_cursor_inside_the_right_query_shape_is_still_400(api, day_of_readings):
    from chalicelib.pagination import encode_cursor

    query = {"path": "date", "date": "2024-06-01"}
    forged = encode_cursor(query, {"3": {"location": "site-1", "reading_id": "x"}})
    assert_error(
        call(api, "get", f"/readings?date=2024-06-01&cursor={forged}"), 400, "bad_request", "cursor"
    )


def test_upload_returns_a_presigned_post_for_one_key_of_bounded_size_and_type(api, services):
    status, body = call(api, "post", "/uploads", {"filename": "june readings.csv"})
    assert status == 201 and body["method"] == "POST"
    assert body["key"].startswith("incoming/") and body["key"].endswith("/june readings.csv")
    maximum = services.settings.upload_max_bytes
    assert (body["max_bytes"], body["content_type"]) == (maximum, "text/csv")
    fields = body["fields"]
    assert fields["key"] == body["key"] and fields["Content-Type"] == "text/csv"
    # What S3 enforces is the signed policy: one key, the type, and the size range.
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 0, maximum] in conditions
    assert {"Content-Type": "text/csv"} in conditions
    assert {"key": body["key"]} in conditions
    assert {"bucket": services.settings.uploads_bucket} in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)


@pytest.mark.parametrize(
    "body",
    [
        {"filename": "x.txt"},
        {"filename": "../x.csv"},
        {},
        {"filename": 3},
        {"filename": "a.csv", "size": 1},
    ],
)
def test_upload_rejects_bad_filenames(api, body):
    status, error = call(api, "post", "/uploads", body)
    assert status == 422 and error["details"]


def test_ingest_jobs_are_listed_newest_first_and_fetched_by_id(api, services, outputs):
    first = ingest_bytes(
        services,
        outputs,
        b"timestamp,location,source,local_dest,local_avg,remote_dest,remote_avg\n",
        key="incoming/1.csv",
    )
    second = ingest_bytes(
        services,
        outputs,
        b"timestamp,location,source,local_dest,local_avg,remote_dest,remote_avg\n\n",
        key="incoming/2.csv",
    )
    assert call(api, "get", f"/ingests/{second['ingest_id']}") == (200, second)
    items = pages(api, "/ingests", 1)
    assert [j["ingest_id"] for j in items] == [second["ingest_id"], first["ingest_id"]]
    assert_error(call(api, "get", "/ingests/" + "0" * 32), 404, "not_found")
    assert_error(call(api, "get", "/ingests/nope"), 404, "not_found")
