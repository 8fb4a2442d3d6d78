"""The object-version read path: the one AWS takes, since the uploads bucket is versioned.

AWS's S3 notifications for a versioned bucket carry ``versionId``; moto's do
not, so these tests build the events AWS would send. The ingest reads the
version the event names (GetObject with VersionId: ``s3:GetObjectVersion``,
which the recorded-calls plugin checks against the policy), whatever
replaced it since, and its job is keyed by that version.
"""

from __future__ import annotations

from pathlib import Path

from chalicelib.readings import handlers
from chalicelib.readings.jobs import job_id
from tests import events
from tests.readings.pipeline import drain, upload

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
KEY = "incoming/versions/readings.csv"


def _notify(services, put: dict, version_id: str | None) -> None:
    bucket = services.settings.uploads_bucket
    record = events.s3_record(bucket, KEY, put["ETag"], version_id=version_id)
    handlers.ingest_from_s3(events.s3_event(record), None, services)


def test_the_announced_version_is_read_even_after_the_object_is_replaced(
    iam_calls, services, outputs
):
    bucket = services.settings.uploads_bucket
    first = upload(services, KEY, (SAMPLES / "readings_clean.csv").read_bytes())
    upload(services, KEY, (SAMPLES / "reading_single.csv").read_bytes())  # replaces it

    with iam_calls.capturing() as recorded:
        _notify(services, first, first["VersionId"])
        drain(services, outputs, "ingest", handlers.write_readings)

    job = services.jobs.get(job_id(bucket, KEY, first["VersionId"]))
    assert (job["state"], job["rows_written"]) == ("COMPLETED", 20)
    assert job["version_id"] == first["VersionId"]
    reads = {c.action for c in recorded if c.function == "ingest_from_s3" and "Object" in c.action}
    assert reads == {"s3:GetObjectVersion"}


def test_a_deleted_version_fails_its_job_with_a_reason(services, outputs):
    bucket = services.settings.uploads_bucket
    put = upload(services, KEY, (SAMPLES / "readings_clean.csv").read_bytes())
    services.clients.s3.delete_object(Bucket=bucket, Key=KEY, VersionId=put["VersionId"])

    _notify(services, put, put["VersionId"])

    job = services.jobs.get(job_id(bucket, KEY, put["VersionId"]))
    assert (job["state"], job["reason"]) == ("FAILED", "the object no longer exists")


def test_without_a_version_id_the_etag_guards_against_a_replaced_object(services, outputs):
    """moto's (and an unversioned bucket's) events: the ETag is the version."""
    bucket = services.settings.uploads_bucket
    first = upload(services, KEY, (SAMPLES / "readings_clean.csv").read_bytes())
    upload(services, KEY, (SAMPLES / "reading_single.csv").read_bytes())

    _notify(services, first, None)

    job = services.jobs.get(job_id(bucket, KEY, first["ETag"]))
    assert job["state"] == "FAILED"
    assert job["reason"] == "the object was replaced before it could be read"
