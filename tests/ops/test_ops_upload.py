"""``ops upload``: the job id is derived from the object, and the job is followed to its end."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import ops.upload
from chalicelib.readings.jobs import job_id
from ops.__main__ import main
from ops.upload import JobTimeout, follow_job, upload_file


class ScriptedJobs:
    """Answers ``get`` with one state after another, like a job that makes progress."""

    def __init__(self, *states: str | None):
        self._states = list(states)

    def get(self, ingest_id):
        state = self._states.pop(0) if len(self._states) > 1 else self._states[0]
        if state is None:
            return None
        return {"ingest_id": ingest_id, "state": state, "rows_accepted": 10, "rows_written": 4}


def _console():
    return Console(file=io.StringIO(), width=120)


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


def test_following_a_job_waits_for_it_to_appear_and_to_finish():
    jobs = ScriptedJobs(None, "RUNNING", "RUNNING", "COMPLETED_WITH_REJECTS")
    job = follow_job(jobs, ["abc"], _console(), poll_interval=0)
    assert job["state"] == "COMPLETED_WITH_REJECTS"


def test_following_takes_whichever_candidate_id_the_handler_used():
    class OnlySecond:
        def get(self, ingest_id):
            if ingest_id != "by-etag":
                return None
            return {"ingest_id": ingest_id, "state": "COMPLETED", "rows_accepted": 1}

    job = follow_job(OnlySecond(), ["by-version", "by-etag"], _console(), poll_interval=0)
    assert job["ingest_id"] == "by-etag"


def test_following_stops_when_asked_and_times_out_when_the_job_hangs():
    assert (
        follow_job(ScriptedJobs("RUNNING"), ["abc"], _console(), should_stop=lambda: True) is None
    )
    with pytest.raises(JobTimeout):
        follow_job(ScriptedJobs("RUNNING"), ["abc"], _console(), timeout=0, poll_interval=0)


@pytest.mark.parametrize(("state", "code"), [("FAILED", 1), ("COMPLETED", 0)])
def test_upload_exits_non_zero_only_when_the_job_failed(target, tmp_path, monkeypatch, state, code):
    path = tmp_path / "a.csv"
    path.write_text("x\n")
    monkeypatch.setattr(ops.upload, "IngestJobs", lambda *args: ScriptedJobs(state))
    assert main(["upload", str(path)], console=_console()) == code


def test_upload_refuses_a_key_outside_the_uploads_prefix(target, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("x\n")
    assert main(["upload", str(path), "--key", "elsewhere/a.csv"], console=_console()) == 2
