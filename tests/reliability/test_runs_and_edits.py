"""Replays and redrives: a new run of the parse after the code changed, and
readings edited through the API in the meantime.

* A replay is a new run: its chunks are counted from zero under its own run
  number, so a replay under code that cuts the file into other chunks, or
  accepts other rows, still completes the job with consistent counts.
* A chunk that comes back (redelivered, redriven, or from a replay) does not
  overwrite a reading that the API changed since the ingest.
"""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from chalicelib.readings import chunks, ingest
from chalicelib.readings.model import Reading
from chalicelib.readings.store import reading_item
from ops.__main__ import main as ops_main
from tests.reliability.faults import Persistent
from tests.reliability.world import World, assert_invariant, csv_file


@pytest.fixture(autouse=True)
def short_polls(monkeypatch):
    monkeypatch.setattr("ops.queues.WAIT_SECONDS", 0)


def ops(*argv: str) -> str:
    out = io.StringIO()
    code = ops_main(["--stage", "local", *argv], console=Console(file=out, width=200))
    assert code == 0, out.getvalue()
    return out.getvalue()


def test_a_replay_under_other_chunking_completes_the_job(world, monkeypatch):
    upload = world.upload(csv_file(12, 2))
    world.drain()
    first = world.job(upload)
    assert (first["state"], first["chunks_total"]) == ("COMPLETED_WITH_REJECTS", 3)

    monkeypatch.setattr(chunks, "MAX_CHUNK_ROWS", 3)  # a deploy changed the chunking
    ops("ingest", "replay", first["ingest_id"])
    world.drain()

    again = world.job(upload)
    # Chunks 0 to 2 now hold other rows than in run 1, and there is a chunk 3:
    # counted against run 1's markers, rows_written would end at 15 of 12.
    assert (again["run"], again["chunks_total"]) == (2, 4)
    assert_invariant(world)


def test_a_replay_under_other_validation_completes_the_job_with_the_new_counts(world, monkeypatch):
    upload = world.upload(csv_file(12, 2))
    world.drain()
    ingest_id = world.job(upload)["ingest_id"]

    stricter = ingest.validate_record

    def reject_wireless(record, header):
        reading, found = stricter(record, header)
        if reading is not None and reading.source == "wireless":
            return None, [{"field": "source", "problem": "is no longer accepted"}]
        return reading, found

    monkeypatch.setattr(ingest, "validate_record", reject_wireless)  # a deploy changed the rules
    ops("ingest", "replay", ingest_id)
    world.drain()

    job = world.job(upload)
    assert job["state"] == "COMPLETED_WITH_REJECTS"
    assert (job["rows_seen"], job["rows_accepted"], job["rows_rejected"]) == (14, 6, 8)
    assert job["rows_written"] == job["rows_accepted"]
    assert job["chunks_written"] == job["chunks_total"]


def _edit(world: World, row: dict[str, str], local_avg: str) -> dict:
    body = {**row, "local_avg": local_avg}
    reading = Reading.model_validate(body)
    response = world.api().http.put(
        f"/readings/{reading.location}/{reading.reading_id}",
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.body
    item = reading_item(reading)
    return {(item["location"]["S"], item["reading_id"]["S"]): item}


def test_a_replay_keeps_readings_edited_through_the_api(world):
    upload = world.upload(csv_file(12, 2))
    world.drain()
    edits = _edit(world, upload.file.accepted[5], "99.5")

    ops("ingest", "replay", world.job(upload)["ingest_id"])
    world.drain()

    assert_invariant(world, edits=edits)


def test_a_redriven_chunk_keeps_readings_edited_while_it_waited_in_the_dlq(world):
    # The counting transaction is refused (say, a policy lacks an action): the
    # chunk's rows are put on every attempt, but it is never counted, and it
    # ends in the DLQ.
    refused = Persistent(
        lambda call: call.name == "dynamodb:TransactWriteItems", code="AccessDeniedException"
    )
    world.injector.rules.append(refused)
    upload = world.upload(csv_file(4))
    world.drain()
    assert world.queue_depths()["ingest-dlq"] == (1, 0)
    edits = _edit(world, upload.file.accepted[1], "42.25")

    refused.enabled = False  # the fix
    ops("dlq", "redrive", "ingest")
    world.drain()

    assert_invariant(world, edits=edits)


def test_a_redelivered_chunk_keeps_readings_edited_since_its_first_delivery(world):
    refused = Persistent(
        lambda call: call.name == "dynamodb:TransactWriteItems", code="AccessDeniedException"
    )
    world.injector.rules.append(refused)
    upload = world.upload(csv_file(4))
    assert world.deliver("s3-events").failed == 0
    assert world.deliver("ingest").failed == 1  # written, not counted
    edits = _edit(world, upload.file.accepted[2], "7.75")

    refused.enabled = False
    world.drain()

    assert_invariant(world, edits=edits)
