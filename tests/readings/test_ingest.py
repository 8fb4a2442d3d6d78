"""Ingest, from an uploaded object to a finished job, under moto."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from chalicelib.readings import chunks, handlers
from chalicelib.readings.jobs import ObjectRef, job_id
from tests import events
from tests.readings.pipeline import drain, ingest_bytes, receive, run, upload

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
PROJECT = Path(__file__).resolve().parents[2]
SEED_IN_SHARED = Path("shared") / "reference" / "seed-sample-data"
HEADER = "timestamp,location,source,local_dest,local_avg,remote_dest,remote_avg\n"


def stored(services) -> list[dict]:
    return services.clients.dynamodb.scan(TableName=services.settings.readings_table)["Items"]


def rejects(services, job) -> list[dict]:
    body = services.clients.s3.get_object(Bucket=job["bucket"], Key=job["rejects_key"])["Body"]
    return list(csv.DictReader(io.StringIO(body.read().decode())))


def test_the_clean_sample_is_stored_in_full(services, outputs):
    job = ingest_bytes(services, outputs, (SAMPLES / "readings_clean.csv").read_bytes())
    assert job["state"] == "COMPLETED"
    assert (job["rows_seen"], job["rows_accepted"], job["rows_rejected"]) == (20, 20, 0)
    assert job["rows_written"] == 20 and job["rejects_key"] is None
    assert job["started_at"] <= job["finished_at"]
    assert len(stored(services)) == 20


def test_the_bad_sample_rejects_one_row_per_class_once_with_line_and_problems(services, outputs):
    job = ingest_bytes(services, outputs, (SAMPLES / "readings_bad.csv").read_bytes())
    assert job["state"] == "COMPLETED_WITH_REJECTS"
    assert (job["rows_seen"], job["rows_accepted"], job["rows_rejected"]) == (12, 1, 11)
    assert job["rows_written"] == 1 and len(stored(services)) == 1
    report = rejects(services, job)
    assert job["rejects_key"] == f"rejects/{job['ingest_id']}.csv"
    assert {int(r["line"]) for r in report} == set(range(3, 14))
    by_line = {int(r["line"]): r for r in report}
    assert len(report) == 11, "one line per rejected row"
    assert by_line[3]["problems"].startswith("timestamp: ")
    assert by_line[7]["problems"].startswith("local_avg: ") and "number" in by_line[7]["problems"]
    assert by_line[11]["problems"].startswith("remote_avg: is missing")
    assert "8 fields" in by_line[12]["problems"]
    assert by_line[12]["row"].endswith(",surplus")
    assert job["rejects_truncated"] is False


def seed_dir() -> Path:
    """The seed system's sample files: ``../shared/reference`` beside the repository.

    ``EVENTFLOW_SEED_DIR`` names them explicitly. Otherwise they are looked for
    beside this checkout and, for a git worktree, beside the main checkout. A
    CI run without them must fail, not pass with these tests skipped.
    """
    if os.environ.get("EVENTFLOW_SEED_DIR"):
        candidates = [Path(os.environ["EVENTFLOW_SEED_DIR"])]
    else:
        candidates = [PROJECT.parent / SEED_IN_SHARED]
        common = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=False,
        )
        if common.returncode == 0:
            candidates.append(Path(common.stdout.strip()).parent.parent / SEED_IN_SHARED)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    pytest.fail(
        "the seed sample files are missing (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); set EVENTFLOW_SEED_DIR to their directory"
    )


@pytest.mark.parametrize(
    ("name", "accepted", "rejected"),
    [("data.csv", 20, 0), ("data_bad_msg.csv", 0, 1), ("data_good_msg.csv", 1, 0)],
)
def test_the_seed_systems_files_ingest_as_the_original_did(
    services, outputs, name, accepted, rejected
):
    seed = seed_dir()
    job = ingest_bytes(services, outputs, (seed / name).read_bytes(), key=f"incoming/seed/{name}")
    assert (job["rows_accepted"], job["rows_rejected"], job["rows_written"]) == (
        accepted,
        rejected,
        accepted,
    )
    assert job["state"] == ("COMPLETED_WITH_REJECTS" if rejected else "COMPLETED")


@pytest.mark.parametrize("body", [b"", HEADER.encode(), b"\n\n"])
def test_empty_and_header_only_files_complete_with_zero_rows(services, outputs, body):
    job = ingest_bytes(services, outputs, body)
    assert job["state"] == "COMPLETED" and job["rows_seen"] == 0 and job["rows_written"] == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff", "not UTF-8 text"),
        (b"when,where\n1,2\n", "lacks column(s)"),
    ],
)
def test_unusable_files_fail_with_a_readable_reason_and_write_nothing(
    services, outputs, body, reason
):
    job = ingest_bytes(services, outputs, body)
    assert job["state"] == "FAILED" and reason in job["reason"]
    assert stored(services) == []


def test_an_object_deleted_before_ingest_fails_the_job_instead_of_retrying_forever(
    services, outputs
):
    ref = ObjectRef(bucket=services.settings.uploads_bucket, key="incoming/gone.csv", etag="abc")
    from chalicelib.readings.ingest import ingest_object

    job = ingest_object(ref, services, owner="test")
    assert job["state"] == "FAILED" and job["reason"] == "the object no longer exists"


def test_an_object_replaced_before_ingest_reads_no_other_version(services, outputs):
    etag = upload(services, "incoming/r.csv", HEADER.encode())["ETag"]
    upload(services, "incoming/r.csv", (SAMPLES / "readings_clean.csv").read_bytes())
    from chalicelib.readings.ingest import ingest_object

    ref = ObjectRef(bucket=services.settings.uploads_bucket, key="incoming/r.csv", etag=etag)
    job = ingest_object(ref, services, owner="test")
    assert job["state"] == "FAILED" and "replaced" in job["reason"]


def test_columns_in_any_order_with_extras_bom_and_crlf(services, outputs):
    body = (
        "\ufeffremote_avg,note,timestamp,location,source,local_dest,local_avg,remote_dest\r\n"
        "9.5,hello,1717200000,lab-05,wired,gw,1.5,probe\r\n"
    ).encode()
    job = ingest_bytes(services, outputs, body)
    assert job["state"] == "COMPLETED" and job["extra_columns"] == ["note"]
    [item] = stored(services)
    assert item["remote_avg"] == {"N": "9.5"} and item["local_avg"] == {"N": "1.5"}


def test_the_same_upload_delivered_twice_counts_once(services, outputs):
    body = (SAMPLES / "readings_clean.csv").read_bytes()
    key = "incoming/twice.csv"
    etag = upload(services, key, body)["ETag"]
    record = events.s3_record(services.settings.uploads_bucket, key, etag.strip('"'))
    handlers.ingest_from_s3(events.s3_event(record, record), None, services)
    drain(services, outputs, "ingest", handlers.write_readings)
    handlers.ingest_from_s3(events.s3_event(record), None, services)
    drain(services, outputs, "ingest", handlers.write_readings)
    job = services.jobs.get(job_id(services.settings.uploads_bucket, key, etag))
    assert (job["rows_seen"], job["rows_written"], job["state"]) == (20, 20, "COMPLETED")
    assert len(stored(services)) == 20


def test_a_multipart_upload_double_event_ingests_once(services, outputs):
    s3 = services.clients.s3
    bucket, key = services.settings.uploads_bucket, "incoming/multi.csv"
    body = (SAMPLES / "readings_clean.csv").read_bytes()
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=body)
    etag = s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )["ETag"]
    run(services, outputs)
    job = services.jobs.get(job_id(bucket, key, etag))
    assert (job["rows_written"], job["state"]) == (20, "COMPLETED")
    assert len(services.jobs.list(10)[0]) == 1


def test_the_queue_trigger_skips_test_events_and_non_csv_keys(services, outputs):
    bucket = services.settings.uploads_bucket
    response = handlers.ingest_from_queue(
        events.sqs_event(
            json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}),
            events.s3_notification_body(events.s3_record(bucket, "incoming/notes.txt", "e1")),
            events.s3_notification_body(events.s3_record(bucket, "rejects/x.csv", "e2")),
            queue=events.S3_EVENTS_QUEUE,
        ),
        None,
        services,
    )
    assert response == {"batchItemFailures": []}
    assert services.jobs.list(10)[0] == []


def test_every_record_of_an_s3_event_is_ingested_with_its_key_url_decoded(services, outputs):
    bucket = services.settings.uploads_bucket
    keys = ["incoming/a b+c.csv", "incoming/dir/ü.csv"]
    etags = [
        upload(services, key, (SAMPLES / "reading_single.csv").read_bytes())["ETag"] for key in keys
    ]
    handlers.ingest_from_s3(
        events.s3_event(
            *(events.s3_record(bucket, k, e.strip('"')) for k, e in zip(keys, etags, strict=True))
        ),
        None,
        services,
    )
    drain(services, outputs, "ingest", handlers.write_readings)
    for key, etag in zip(keys, etags, strict=True):
        assert services.jobs.get(job_id(bucket, key, etag))["state"] == "COMPLETED"


def test_a_malformed_notification_is_reported_failed_so_it_reaches_the_dlq(services, outputs):
    good = events.s3_notification_body()
    event = events.sqs_event("not json", good, queue=events.S3_EVENTS_QUEUE)
    response = handlers.ingest_from_queue(event, None, services)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_rows_are_packed_many_per_message_within_sqs_limits(services, outputs):
    lines = [
        f"{1717200000 + n}.5,site-{n % 9},wired,router-{n % 4},1.{n % 97},probe,{n % 300}.25"
        for n in range(2500)
    ]
    upload(services, "incoming/big.csv", (HEADER + "\n".join(lines)).encode())
    drain(services, outputs, "s3-events", handlers.ingest_from_queue)
    messages = receive(services.clients.sqs, outputs.queues["ingest"]["url"])
    assert len(messages) == 3
    sizes = [len(m["Body"].encode()) for m in messages]
    assert max(sizes) <= chunks.MAX_CHUNK_BYTES
    assert sorted(len(chunks.decode_chunk(m["Body"]).rows) for m in messages) == [500, 1000, 1000]


def test_an_object_over_the_stages_upload_maximum_fails_before_a_row_is_read(services, outputs):
    from dataclasses import replace

    services.settings = replace(services.settings, upload_max_bytes=100)
    body = (SAMPLES / "readings_clean.csv").read_bytes()
    job = ingest_bytes(services, outputs, body)
    assert job["state"] == "FAILED" and job["rows_seen"] == 0 and job["chunks_total"] is None
    assert job["reason"] == (
        f"the object is {len(body):,} bytes, over this stage's upload maximum of 100 bytes; "
        "split the file and upload the parts"
    )
    assert stored(services) == []
    assert receive(services.clients.sqs, outputs.queues["ingest"]["url"]) == []


def test_a_timestamp_past_the_calendar_in_utc_rejects_its_row_not_the_file(services, outputs):
    rows = "9999-12-31T23:59:59-01:00,Lab,wired,a,1,b,2\n1700000000,Lab,wired,a,1,b,2\n"
    job = ingest_bytes(services, outputs, HEADER.encode() + rows.encode())
    assert job["state"] == "COMPLETED_WITH_REJECTS"
    assert (job["rows_accepted"], job["rows_rejected"], job["rows_written"]) == (1, 1, 1)
