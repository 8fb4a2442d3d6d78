"""``ops upload``: the job id is derived from the object, and the job is followed to its end."""

from __future__ import annotations

import argparse
import io
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from chalicelib.clock import Clock
from chalicelib.readings import handlers
from chalicelib.readings.jobs import IngestJobs, job_id
from chalicelib.services import Services
from ops.__main__ import main
from ops.upload import JobTimeout, describe_job, follow_job, upload_file
from tests.readings.pipeline import drain

CLEAN = Path(__file__).resolve().parents[2] / "sample_data" / "readings_clean.csv"


def wait_for(condition, limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


class WatchedJobs(IngestJobs):
    """The real job store on moto, noting each state ``get`` saw, so a test can wait for one."""

    def __init__(self, target):
        super().__init__(target.clients.dynamodb, target.stack.settings.ingests_table, Clock())
        self.seen: list[str | None] = []
        self.changed = threading.Condition()

    def get(self, ingest_id):
        job = super().get(ingest_id)
        with self.changed:
            self.seen.append(job["state"] if job else None)
            self.changed.notify_all()
        return job

    def wait_until_seen(self, state: str | None, limit: float = 30.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: state in self.seen, limit), self.seen


def _services(target) -> Services:
    return Services(target.stack.settings, clients=target.clients, clock=Clock())


def _ingest(target) -> None:
    """What the ingest handler does with S3's notification (moto's carries no version id)."""
    drain(_services(target), target.outputs, "s3-events", handlers.ingest_from_queue)


def _write(target) -> None:
    drain(_services(target), target.outputs, "ingest", handlers.write_readings)


def _console():
    return Console(file=io.StringIO(), width=120)


def _in_background(function, *args, **kwargs):
    """Run ``function`` on a thread; the returned callable joins it and returns its result."""
    result: dict = {}

    def run():
        try:
            result["value"] = function(*args, **kwargs)
        except BaseException as error:  # handed to the test thread
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join(limit: float = 60.0):
        thread.join(limit)
        assert not thread.is_alive(), "still running"
        if "error" in result:
            raise result["error"]
        return result["value"]

    return join


def test_the_ingest_id_is_the_one_the_handler_derives_from_the_object_version(target, tmp_path):
    path = tmp_path / "few.csv"
    path.write_bytes(b"timestamp,location,source,local_dest,local_avg,remote_dest,remote_avg\n")
    bucket = target.stack.bucket("uploads").name

    upload = upload_file(target.clients.s3, bucket, path)

    assert upload.key == "incoming/few.csv"
    head = target.clients.s3.head_object(Bucket=bucket, Key=upload.key)
    assert head["ContentLength"] == path.stat().st_size
    # The handler's rule: the version id from the event, else the ETag. The
    # uploads bucket is versioned, and AWS's events carry the version id;
    # moto's do not, so the ETag-based id is watched as well.
    assert head["VersionId"]
    assert upload.ingest_ids == (
        job_id(bucket, upload.key, head["VersionId"]),
        job_id(bucket, upload.key, head["ETag"]),
    )


def test_following_a_job_waits_for_it_to_appear_and_to_finish(target):
    bucket = target.stack.bucket("uploads").name
    upload = upload_file(target.clients.s3, bucket, CLEAN)
    jobs = WatchedJobs(target)
    follow = _in_background(follow_job, jobs, upload.ingest_ids, _console(), poll_interval=0.01)

    jobs.wait_until_seen(None)  # the handler has not run: no job yet
    _ingest(target)
    jobs.wait_until_seen("RUNNING")  # parsed, nothing written yet
    _write(target)

    job = follow()
    assert (job["state"], job["rows_written"]) == ("COMPLETED", 20)


def test_following_takes_whichever_candidate_id_the_handler_used(target):
    bucket = target.stack.bucket("uploads").name
    upload = upload_file(target.clients.s3, bucket, CLEAN)
    _ingest(target)
    _write(target)
    # The version id comes first, but moto's event has none: the job is the ETag's.
    by_version, by_etag = upload.ingest_ids
    job = follow_job(WatchedJobs(target), [by_version, by_etag], _console(), poll_interval=0)
    assert job["ingest_id"] == by_etag and job["state"] == "COMPLETED"


def test_following_stops_when_asked_and_times_out_when_the_job_hangs(target):
    bucket = target.stack.bucket("uploads").name
    upload = upload_file(target.clients.s3, bucket, CLEAN)
    _ingest(target)  # RUNNING: its chunks wait for a writer that never comes
    jobs = WatchedJobs(target)
    stopped = follow_job(jobs, upload.ingest_ids, _console(), should_stop=lambda: True)
    assert stopped is None and "RUNNING" in jobs.seen
    with pytest.raises(JobTimeout):
        follow_job(jobs, upload.ingest_ids, _console(), timeout=0, poll_interval=0)


@pytest.mark.parametrize(
    ("content", "state", "code"),
    [(b"\x00\x01 not a csv", "FAILED", 1), (CLEAN.read_bytes(), "COMPLETED", 0)],
    ids=["failed", "completed"],
)
def test_upload_exits_non_zero_only_when_the_job_failed(target, tmp_path, content, state, code):
    path = tmp_path / "a.csv"
    path.write_bytes(content)
    console = _console()
    exit_code = _in_background(main, ["upload", str(path), "--timeout", "60"], console=console)

    # Once the CLI has uploaded (S3 has notified the queue), it waits for the
    # job while the handlers run, as Lambda would run them.
    assert wait_for(lambda: "uploaded s3://" in console.file.getvalue())
    _ingest(target)
    _write(target)

    assert exit_code() == code
    assert f"{state}:" in console.file.getvalue()


def test_upload_refuses_a_key_outside_the_uploads_prefix(target, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("x\n")
    assert main(["upload", str(path), "--key", "elsewhere/a.csv"], console=_console()) == 2


def test_the_last_line_says_how_long_the_first_run_took_and_its_rows_per_second():
    job = {
        "ingest_id": "a" * 32,
        "state": "COMPLETED",
        "run": Decimal(1),
        "rows_seen": 20_000,
        "rows_accepted": 20_000,
        "rows_rejected": 0,
        "rows_written": Decimal(20_000),
        "started_at": "2026-12-01T05:00:00.000000Z",
        "finished_at": "2026-12-01T05:00:04.000000Z",
    }
    assert describe_job(job).endswith("20000 written in 4.0 s (5,000 rows/s)")
    # A replay keeps its first run's start, and a running job has no end: no figure.
    assert describe_job({**job, "run": Decimal(2)}).endswith("20000 written")
    running = {k: v for k, v in job.items() if k != "finished_at"}
    assert describe_job({**running, "state": "RUNNING"}).endswith("20000 written")


def test_upload_posts_the_presigned_form_and_the_object_is_a_csv(target, tmp_path):
    path = tmp_path / "few.csv"
    path.write_bytes(CLEAN.read_bytes())
    bucket = target.stack.bucket("uploads").name
    upload = upload_file(target.clients.s3, bucket, path, max_bytes=10_000)
    head = target.clients.s3.head_object(Bucket=bucket, Key=upload.key)
    assert head["ContentType"] == "text/csv" and head["ContentLength"] == path.stat().st_size


def test_upload_refuses_a_file_over_the_stages_maximum_before_sending_it(target, tmp_path):
    from dataclasses import replace

    path = tmp_path / "big.csv"
    path.write_bytes(CLEAN.read_bytes())
    from ops.upload import run

    stack = target.stack
    target.__dict__["stack"] = replace(
        stack, settings=replace(stack.settings, upload_max_bytes=100)
    )
    console = _console()
    args = argparse.Namespace(file=path, key=None, timeout=1.0, no_follow=True)
    assert run(args, target, console) == 2
    assert "over this stage's upload maximum of 100" in console.file.getvalue()
    bucket = target.stack.bucket("uploads").name
    assert target.clients.s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_moto_stores_a_form_over_its_policy_and_the_ingest_refuses_the_object(target, tmp_path):
    """moto 5.2.5 checks no POST policy condition (docs/local-cloud-semantics.md).

    AWS would answer EntityTooLarge; here the object lands, and the ingest's
    own size check fails its job before a row is read.
    """
    from dataclasses import replace

    from chalicelib.readings.uploads import presigned_post
    from ops.upload import post_form

    bucket = target.stack.bucket("uploads").name
    path = tmp_path / "big.csv"
    path.write_bytes(CLEAN.read_bytes())
    post = presigned_post(target.clients.s3, bucket, "incoming/big.csv", max_bytes=100)
    post_form(post["url"], {**post["fields"], "Content-Type": "text/html"}, path)
    head = target.clients.s3.head_object(Bucket=bucket, Key="incoming/big.csv")
    assert head["ContentLength"] > 100, "moto enforces content-length-range now: update the docs"

    services = _services(target)
    services.settings = replace(services.settings, upload_max_bytes=100)
    drain(services, target.outputs, "s3-events", handlers.ingest_from_queue)
    [job] = services.jobs.list(10)[0]
    assert job["state"] == "FAILED" and job["rows_seen"] == 0
    assert "over this stage's upload maximum of 100 bytes" in job["reason"]
    assert (
        target.clients.sqs.get_queue_attributes(
            QueueUrl=target.outputs.queues["ingest"]["url"],
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )


def test_the_last_line_says_when_the_rejects_report_was_truncated():
    job = {
        "ingest_id": "a" * 32,
        "state": "COMPLETED_WITH_REJECTS",
        "bucket": "b",
        "rejects_key": "rejects/x.csv",
        "rejects_truncated": True,
    }
    assert describe_job(job).endswith(
        "rejects/x.csv (truncated at the stage's bound: it lists the first rejected rows only)"
    )
    assert describe_job({**job, "rejects_truncated": False}).endswith("rejects/x.csv")
