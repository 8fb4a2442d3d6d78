"""A poison message reaches its DLQ after ``maxReceiveCount``; after the fix, the
operator's redrive (``python -m ops dlq redrive``) restores it, and nothing is lost.

The poison is a permanent error on exactly one message's calls: a chunk whose
BatchWriteItem DynamoDB refuses (a bug in the data or the code), and an
object whose read S3 denies (a missing permission). Every other message
flows on; the poison one fails on every delivery until SQS gives up on it.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from infra.resources import MAX_RECEIVE_COUNT
from ops.__main__ import main as ops_main
from tests.reliability.faults import Call, Persistent
from tests.reliability.world import assert_invariant, csv_file

POISON = "poison-lab"


@pytest.fixture(autouse=True)
def short_polls(monkeypatch):
    # The redrive proves a real queue empty with 1 s long polls; moto needs no proof.
    monkeypatch.setattr("ops.queues.WAIT_SECONDS", 0)


def redrive(queue: str) -> str:
    out = io.StringIO()
    code = ops_main(["--stage", "local", "dlq", "redrive", queue], console=Console(file=out))
    assert code == 0, out.getvalue()
    return out.getvalue()


def writes_poison(call: Call) -> bool:
    return call.name == "dynamodb:BatchWriteItem" and POISON in call.request.body.decode()


def test_a_poison_chunk_goes_to_the_dlq_and_its_redrive_completes_the_job(worlds):
    fault = Persistent(writes_poison)
    with worlds.new(fault) as world:
        # Rows 8 to 11 form the third chunk, the poison one.
        upload = world.upload(csv_file(12, 2, location_of=lambda n: POISON if n >= 8 else "lab-01"))
        world.drain()
        job = world.job(upload)
        assert fault.injected == MAX_RECEIVE_COUNT
        assert (job["state"], job["rows_written"], job["rows_accepted"]) == ("RUNNING", 8, 12)
        assert world.queue_depths()["ingest-dlq"] == (1, 0)

        fault.enabled = False  # the fix is deployed
        assert "moved 1 message(s)" in redrive("ingest")
        world.drain()
        assert_invariant(world)


def test_a_poison_notification_goes_to_the_dlq_and_its_redrive_ingests_the_file(worlds):
    fault = Persistent(lambda call: call.name == "s3:GetObject", code="AccessDenied")
    with worlds.new(fault) as world:
        upload = world.upload(csv_file(12, 2))
        world.drain()
        assert fault.injected == MAX_RECEIVE_COUNT
        job = world.job(upload)
        assert job["state"] == "RUNNING" and job["last_error"]["code"] == "access_denied"
        assert world.queue_depths()["s3-events-dlq"] == (1, 0)

        fault.enabled = False  # the policy is fixed
        assert "moved 1 message(s)" in redrive("s3-events-dlq")
        world.drain()
        assert_invariant(world)
