"""``ops ingest replay``: re-running a job is safe in every state and never doubles a count.

The pipeline runs under moto through the real handlers (``tests.readings.pipeline``);
the replay goes through the CLI entry point, as an operator would run it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from chalicelib.readings import handlers
from chalicelib.readings.jobs import COMPLETED, FAILED, RUNNING, job_id
from infra.resources import MAX_RECEIVE_COUNT
from ops.__main__ import main
from tests.readings import pipeline

CLEAN = (Path(__file__).resolve().parents[2] / "sample_data" / "readings_clean.csv").read_bytes()


@pytest.fixture(autouse=True)
def short_polls(monkeypatch):
    # A 1 s long poll proves a real queue empty; moto needs no such proof.
    monkeypatch.setattr("ops.queues.WAIT_SECONDS", 0)


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--stage", "local", *argv], console=Console(file=out, width=240))
    return code, out.getvalue()


def readings_count(services) -> int:
    return services.clients.dynamodb.scan(
        TableName=services.settings.readings_table, Select="COUNT"
    )["Count"]


def counts(job: dict) -> tuple:
    return tuple(
        job[k]
        for k in ("rows_seen", "rows_accepted", "rows_rejected", "rows_written", "chunks_written")
    )


def write_all(services, outputs) -> None:
    pipeline.drain(services, outputs, "ingest", handlers.write_readings)


def test_replaying_a_completed_job_twice_keeps_its_state_counts_and_rows(services, outputs):
    job = pipeline.ingest_bytes(services, outputs, CLEAN)
    assert job["state"] == COMPLETED
    before, rows = counts(job), readings_count(services)
    assert rows == job["rows_accepted"] > 0

    for run in (2, 3):
        code, out = run_cli("ingest", "replay", job["ingest_id"])
        assert code == 0
        # A replay is a new run of the parse: it counts its own chunks from zero.
        assert f"ingest {job['ingest_id']} RUNNING" in out
        write_all(services, outputs)
        after = services.jobs.get(job["ingest_id"])
        assert (after["state"], after["run"]) == (COMPLETED, run)
        assert counts(after) == before
        assert readings_count(services) == rows


def test_a_job_whose_chunks_died_completes_after_replay_and_the_redrive_is_then_a_no_op(
    services, outputs
):
    # GIVEN an ingest whose every chunk exhausted its receives and went to the DLQ
    key = "incoming/t/stuck.csv"
    etag = pipeline.upload(services, key, CLEAN)["ETag"]
    pipeline.drain(services, outputs, "s3-events", handlers.ingest_from_queue)
    ingest_id = job_id(services.settings.uploads_bucket, key, etag)
    sqs, ingest_url = services.clients.sqs, outputs.queues["ingest"]["url"]
    for _ in range(MAX_RECEIVE_COUNT + 1):
        sqs.receive_message(QueueUrl=ingest_url, VisibilityTimeout=0, MaxNumberOfMessages=10)
    stuck = services.jobs.get(ingest_id)
    assert (stuck["state"], stuck["rows_written"]) == (RUNNING, 0)
    code, out = run_cli("dlq", "peek", "ingest")
    assert code == 0 and ingest_id in out

    # WHEN the operator replays it, and the writer runs
    code, out = run_cli("ingest", "replay", ingest_id)
    assert code == 0 and RUNNING in out
    write_all(services, outputs)

    # THEN it completes with every row
    done = services.jobs.get(ingest_id)
    assert done["state"] == COMPLETED
    assert done["rows_written"] == done["rows_accepted"] == readings_count(services) > 0

    # AND redriving the DLQ's stale copies afterwards changes nothing
    code, out = run_cli("dlq", "redrive", "ingest")
    assert code == 0 and "moved 1 message(s)" in out
    write_all(services, outputs)
    assert counts(services.jobs.get(ingest_id)) == counts(done)
    assert readings_count(services) == done["rows_accepted"]


def test_replaying_a_failed_job_reads_the_same_version_and_fails_again_loudly(services, outputs):
    job = pipeline.ingest_bytes(services, outputs, b"time,place\n1,lab\n", key="incoming/bad.csv")
    assert job["state"] == FAILED

    code, out = run_cli("ingest", "replay", job["ingest_id"], "--json")

    assert code == 1
    assert '"state": "FAILED"' in out
    assert services.jobs.get(job["ingest_id"])["reason"] == job["reason"]
    assert readings_count(services) == 0


def test_replaying_an_unknown_job_exits_non_zero_and_says_so(services, outputs):
    code, out = run_cli("ingest", "replay", "0" * 32)

    assert code != 0
    assert f"no ingest job {'0' * 32}" in out and "not found" in out
