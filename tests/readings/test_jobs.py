"""Ingest jobs: runs of the parse, the parse lease, and counting chunks per run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.errors import JobNotFound
from chalicelib.readings.jobs import ChunkCount, ClaimRefused, ObjectRef

REF = ObjectRef(bucket="b", key="incoming/x.csv", etag="e1")


class Later:
    """Moves the services' clock forward."""

    def __init__(self, clock, monkeypatch):
        self.offset = timedelta()
        real = type(clock).now
        monkeypatch.setattr(clock, "now", lambda: real(clock) + self.offset)

    def wait(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def totals(jobs, run: int, accepted: int = 2) -> dict:
    return jobs.set_totals(
        REF.ingest_id,
        run=run,
        rows_seen=accepted,
        rows_accepted=accepted,
        rows_rejected=0,
        chunks_total=1,
        extra_columns=[],
        rejects_key=None,
    )


def test_a_lease_keeps_other_deliveries_out_until_it_expires(services, clock, monkeypatch):
    jobs, later = services.jobs, Later(clock, monkeypatch)
    first = jobs.start(REF, "message-a", 300)
    assert first.granted and first.run == 1

    other = jobs.start(REF, "message-b", 300)
    assert (other.granted, other.refused) == (False, ClaimRefused.LEASED)

    # The owner's own retry (its earlier attempt is dead) takes over at once.
    retry = jobs.start(REF, "message-a", 300)
    assert retry.granted and retry.run == 2

    later.wait(301)
    taken = jobs.start(REF, "message-b", 300)
    assert taken.granted and taken.run == 3


def test_a_parsed_or_finished_object_is_not_parsed_again(services):
    jobs = services.jobs
    run = jobs.start(REF, "a", 300).run
    job = totals(jobs, run)
    assert job["state"] == "RUNNING"
    assert jobs.start(REF, "b", 300).refused is ClaimRefused.PARSED
    jobs.record_chunk(REF.ingest_id, run, 0, 2)
    assert jobs.complete_if_done(REF.ingest_id)["state"] == "COMPLETED"
    assert jobs.start(REF, "a", 300).refused is ClaimRefused.DONE


def test_a_failed_attempt_releases_its_lease_at_once(services):
    jobs = services.jobs
    jobs.start(REF, "a", 300)
    jobs.release(REF.ingest_id, "someone-else")  # not theirs: no effect
    assert jobs.start(REF, "b", 300).refused is ClaimRefused.LEASED
    jobs.release(REF.ingest_id, "a")
    assert jobs.start(REF, "b", 300).run == 2


def test_a_replay_takes_the_lease_in_any_state_and_restarts_the_counts(services):
    jobs = services.jobs
    run = jobs.start(REF, "a", 300).run
    totals(jobs, run)
    jobs.record_chunk(REF.ingest_id, run, 0, 2)
    jobs.complete_if_done(REF.ingest_id)

    replay = jobs.claim(REF.ingest_id, "replay", 900, force=True)

    assert replay.run == 2
    job = replay.job
    assert (job["state"], job["rows_written"], job["chunks_written"]) == ("RUNNING", 0, 0)
    assert job["finished_at"] is None


def test_chunks_are_counted_once_per_run_and_a_stale_run_counts_nothing(services):
    jobs = services.jobs
    jobs.start(REF, "a", 300)
    assert jobs.record_chunk(REF.ingest_id, 1, 0, 4) is ChunkCount.COUNTED
    assert jobs.record_chunk(REF.ingest_id, 1, 0, 4) is ChunkCount.ALREADY_COUNTED
    jobs.start(REF, "a", 300)  # run 2 (say, the owner's retry)
    assert jobs.record_chunk(REF.ingest_id, 1, 1, 4) is ChunkCount.STALE
    assert jobs.record_chunk(REF.ingest_id, 2, 0, 3) is ChunkCount.COUNTED
    job = jobs.get(REF.ingest_id)
    assert (job["run"], job["rows_written"], job["chunks_written"]) == (2, 3, 1)


def test_a_superseded_run_cannot_set_totals_or_fail_the_job(services):
    jobs = services.jobs
    jobs.start(REF, "a", 300)
    jobs.claim(REF.ingest_id, "replay", 900, force=True)  # run 2
    assert totals(jobs, run=1)["rows_accepted"] == 0
    assert jobs.fail(REF.ingest_id, "gone", run=1)["state"] == "RUNNING"
    assert totals(jobs, run=2)["rows_accepted"] == 2


def test_a_chunk_of_an_unknown_job_is_an_error(services):
    with pytest.raises(JobNotFound):
        services.jobs.record_chunk("0" * 32, 1, 0, 1)
