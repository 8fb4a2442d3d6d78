"""The writer: idempotent chunks, partial batch responses, bounded retries."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from chalicelib.clock import Backoff
from chalicelib.dynamo import batch_put
from chalicelib.errors import UnprocessedItemsError
from chalicelib.readings import handlers, writer
from chalicelib.readings.chunks import encode_chunk, encode_row
from chalicelib.readings.jobs import ObjectRef
from tests import events

ROW = ["2024-06-01T00:00:00+00:00", "lab-01", "wired", "gw", "1.5", "probe", "20.25"]


def row(n: int) -> list[str]:
    return [f"2024-06-01T00:00:{n % 60:02d}.{n:06d}+00:00", *ROW[1:]]


@pytest.fixture
def job(services):
    ref = ObjectRef(bucket="b", key="incoming/x.csv", etag="e1")
    services.jobs.start(ref, owner="test", lease_seconds=60)
    return ref.ingest_id


def chunk(ingest_id: str, seq: int, rows: list[list[str]]) -> str:
    return encode_chunk(ingest_id, 1, seq, [encode_row(r) for r in rows])


def count_items(services) -> int:
    return services.clients.dynamodb.scan(
        TableName=services.settings.readings_table, Select="COUNT"
    )["Count"]


def test_redelivering_a_chunk_changes_nothing(services, job):
    body = chunk(job, 0, [row(n) for n in range(30)])
    first = writer.write_chunk(body, services)
    before = services.clients.dynamodb.scan(TableName=services.settings.readings_table)["Items"]
    again = writer.write_chunk(body, services)
    after = services.clients.dynamodb.scan(TableName=services.settings.readings_table)["Items"]
    assert (first.counted, again.counted) == (True, False)
    assert sorted(map(str, after)) == sorted(map(str, before)) and len(after) == 30
    assert services.jobs.get(job)["rows_written"] == 30


def test_the_job_completes_only_when_every_accepted_row_is_written(services, job):
    services.jobs.set_totals(
        job,
        run=1,
        rows_seen=3,
        rows_accepted=2,
        rows_rejected=1,
        chunks_total=2,
        extra_columns=[],
        rejects_key="rejects/x.csv",
    )
    writer.write_chunk(chunk(job, 0, [row(1)]), services)
    assert services.jobs.get(job)["state"] == "RUNNING"
    writer.write_chunk(chunk(job, 1, [row(2)]), services)
    done = services.jobs.get(job)
    assert (done["state"], done["rows_written"]) == ("COMPLETED_WITH_REJECTS", 2)
    assert done["finished_at"] is not None


def test_chunks_written_before_totals_still_complete_the_job(services, job):
    writer.write_chunk(chunk(job, 0, [row(1), row(2)]), services)
    assert services.jobs.get(job)["state"] == "RUNNING"
    final = services.jobs.set_totals(
        job,
        run=1,
        rows_seen=2,
        rows_accepted=2,
        rows_rejected=0,
        chunks_total=1,
        extra_columns=[],
        rejects_key=None,
    )
    assert final["state"] == "COMPLETED"


def test_duplicate_keys_in_one_chunk_write_the_last_value(services, job):
    first, last = list(ROW), [*ROW[:4], "9.75", *ROW[5:]]
    writer.write_chunk(chunk(job, 0, [first, last]), services)
    [item] = services.clients.dynamodb.scan(TableName=services.settings.readings_table)["Items"]
    assert item["local_avg"] == {"N": "9.75"}
    assert services.jobs.get(job)["rows_written"] == 2


def test_the_partial_batch_response_names_exactly_the_failed_messages(services, job):
    good = chunk(job, 0, [row(1)])
    poison = "{not json"
    wrong_version = '{"v": 99, "ingest_id": "x", "seq": 0, "rows": []}'
    bad_row = chunk(job, 1, [[*ROW[:4], "fast", *ROW[5:]]])
    orphan = chunk("0" * 32, 0, [row(2)])
    event = events.sqs_event(good, poison, wrong_version, bad_row, orphan)
    response = handlers.write_readings(event, None, services)
    ids = [r["messageId"] for r in event["Records"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in ids[1:]]}
    # The orphan chunk's rows were put before its job turned out missing; the
    # good chunk is counted, and nothing was counted for the failures.
    assert services.jobs.get(job)["rows_written"] == 1


def test_an_all_failed_batch_is_still_reported_item_by_item(services):
    event = events.sqs_event("x", "y")
    response = handlers.write_readings(event, None, services)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        r["messageId"] for r in event["Records"]
    ]


def _item(n: int) -> dict:
    return {"location": {"S": "lab"}, "reading_id": {"S": f"r{n}"}}


def test_unprocessed_items_are_retried_with_backoff_until_written(clock):
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    items = [_item(n) for n in range(3)]
    with Stubber(client) as stub:
        stub.add_response(
            "batch_write_item",
            {"UnprocessedItems": {"t": [{"PutRequest": {"Item": items[2]}}]}},
            {"RequestItems": {"t": [{"PutRequest": {"Item": i}} for i in items]}},
        )
        stub.add_response(
            "batch_write_item",
            {"UnprocessedItems": {}},
            {"RequestItems": {"t": [{"PutRequest": {"Item": items[2]}}]}},
        )
        calls = batch_put(client, "t", items, ("location", "reading_id"), Backoff(clock))
        stub.assert_no_pending_responses()
    assert calls == 2 and len(clock.sleeps) == 1


def test_unprocessed_items_raise_after_the_last_attempt(clock):
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    items = [_item(0)]
    unprocessed = {"UnprocessedItems": {"t": [{"PutRequest": {"Item": items[0]}}]}}
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_response("batch_write_item", unprocessed)
        with pytest.raises(UnprocessedItemsError, match="after 3 BatchWriteItem attempts"):
            batch_put(client, "t", items, ("location", "reading_id"), Backoff(clock, attempts=3))
    # Full jitter: each wait is at most the exponential bound for its attempt.
    assert len(clock.sleeps) == 2 and all(0 <= s <= 0.05 * 2**i for i, s in enumerate(clock.sleeps))


def test_batch_write_uses_25_items_per_call(clock):
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    items = [_item(n) for n in range(60)]
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_response("batch_write_item", {"UnprocessedItems": {}})
        assert batch_put(client, "t", items, ("location", "reading_id"), Backoff(clock)) == 3
        stub.assert_no_pending_responses()


def test_reopening_a_job_clears_its_failure(services, job):
    services.jobs.note_error(job, {"code": "internal_error", "message": "boom"})
    services.jobs.fail(job, "gave up", run=1)
    reopened = services.jobs.reopen(job)
    assert (reopened["state"], reopened["reason"], reopened["last_error"]) == (
        "RUNNING",
        None,
        None,
    )
    assert reopened["finished_at"] is None


def test_disabled_metrics_do_not_pile_up_across_invocations(services, job, monkeypatch):
    from chalicelib.observability import metrics

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for seq in range(3):
        handlers.write_readings(events.sqs_event(chunk(job, seq, [row(seq)])), None, services)
    assert not metrics.metric_set
