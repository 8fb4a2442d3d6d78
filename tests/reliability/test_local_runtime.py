"""The pipeline on the local cloud, where handlers run concurrently and can time out.

* A writer invocation that outlives its timeout is killed at the deadline, as
  Lambda kills it: here, right after its counting transaction landed, on the
  job's last chunk. Its chunk comes back after the visibility timeout, finds
  itself counted, and must still complete the job.
* A multipart upload makes moto send two notifications for one object; the
  second must find the object being parsed (or parsed) and send no chunk.

The tests wait for outcomes with a bound; nothing asserts on how long a step took.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator

import pytest

from chalicelib.readings import handlers as readings_handlers
from chalicelib.readings.jobs import DONE_STATES, job_id
from chalicelib.services import services as app_services
from infra.stageconfig import StageConfig
from localcloud.cloud import LocalCloud, default_runtime
from tests.reliability.world import csv_file

WRITER_TIMEOUT = 2


class KilledAtDeadline(Exception):
    """What is left of an invocation that Lambda killed: nothing it would do next happens."""


def wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not met within {timeout} s")


def _short_writer_timeout(app, stage_config, stack, outputs, clients):
    raw = copy.deepcopy(stage_config.raw)
    raw["stages"][stage_config.stage]["lambda_functions"]["write_readings"]["lambda_timeout"] = (
        WRITER_TIMEOUT
    )
    # A chunk comes back as soon as the killed invocation's deadline has passed.
    clients.sqs.set_queue_attributes(
        QueueUrl=outputs.queues["ingest"]["url"],
        Attributes={"VisibilityTimeout": str(WRITER_TIMEOUT)},
    )
    return default_runtime(app, StageConfig(stage_config.stage, raw), stack, outputs, clients)


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    # Per test, after the autouse fixture that clears AWS_ENDPOINT_URL.
    with LocalCloud(aws_port=0, api_port=0, runtime_factory=_short_writer_timeout) as running:
        yield running


def final_job(cloud: LocalCloud, ingest_id: str) -> dict:
    from chalicelib.services import Services

    jobs = Services(cloud.stack.settings, clients=cloud.clients).jobs

    def done():
        job = jobs.get(ingest_id)
        return job if job and job["state"] in DONE_STATES else None

    try:
        return wait_for(done)
    except AssertionError:
        raise AssertionError(f"job not done: {jobs.get(ingest_id)}") from None


def upload(cloud: LocalCloud, key: str, body: bytes) -> str:
    bucket = cloud.stack.settings.uploads_bucket
    etag = cloud.clients.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    return job_id(bucket, key, etag)


def dlq_depths(cloud: LocalCloud) -> list[int]:
    depths = []
    for key, queue in cloud.outputs.queues.items():
        if key.endswith("-dlq"):
            attributes = cloud.clients.sqs.get_queue_attributes(
                QueueUrl=queue["url"], AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            depths.append(int(attributes["ApproximateNumberOfMessages"]))
    return depths


def test_a_writer_killed_at_its_timeout_after_counting_the_last_chunk_still_completes_the_job(
    cloud,
):
    jobs_client = cloud.clients
    file = csv_file(3)  # one chunk: it is the last one
    killed: list[str] = []
    # Taken by the first count only; the redelivery's count must run normally.
    first_count = threading.Lock()
    ddb = app_services().clients.dynamodb

    def totals_first(params, **_):
        # Let the ingest record its totals before the count lands, so this
        # count is the one that completes the job.
        if killed:
            return
        from chalicelib.services import Services

        jobs = Services(cloud.stack.settings, clients=jobs_client).jobs
        ingest_id = params["TransactItems"][1]["Update"]["Key"]["id"]["S"]
        wait_for(lambda: jobs.get(ingest_id)["rows_accepted"])

    def kill_at_deadline(**_):
        if not first_count.acquire(blocking=False):
            return
        wait_for(lambda: cloud.runtime.stats()["write_readings"]["timeouts"] >= 1)
        killed.append("after TransactWriteItems")
        raise KilledAtDeadline()

    ddb.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", totals_first)
    ddb.meta.events.register("after-call.dynamodb.TransactWriteItems", kill_at_deadline)
    try:
        ingest_id = upload(cloud, "incoming/runtime/timeout.csv", file.body)
        job = final_job(cloud, ingest_id)
    finally:
        ddb.meta.events.unregister(
            "before-parameter-build.dynamodb.TransactWriteItems", totals_first
        )
        ddb.meta.events.unregister("after-call.dynamodb.TransactWriteItems", kill_at_deadline)

    assert killed == ["after TransactWriteItems"]
    assert cloud.runtime.stats()["write_readings"]["timeouts"] >= 1
    assert (job["state"], job["rows_written"], job["rows_accepted"]) == ("COMPLETED", 3, 3)
    assert job["chunks_written"] == job["chunks_total"] == 1
    assert dlq_depths(cloud) == [0] * len(dlq_depths(cloud))


def test_the_second_notification_of_a_multipart_upload_sends_no_chunk(cloud, monkeypatch):
    # No rejected rows: the rejects report is uploaded from a thread of its own,
    # which the IAM call recorder cannot tell apart among concurrent handlers.
    file = csv_file(12)
    sent: list[int] = []
    sqs = app_services().clients.sqs
    # Each notification the ingest function handled, once it has finished with it.
    handled: list[str] = []
    ingest_all = readings_handlers._ingest_all

    def noting(refs, *args, **kwargs):
        try:
            return ingest_all(refs, *args, **kwargs)
        finally:
            handled.extend(ref.ingest_id for ref in refs)

    monkeypatch.setattr(readings_handlers, "_ingest_all", noting)

    def count_entries(params, **_):
        sent.append(len(params["Entries"]))

    sqs.meta.events.register("before-parameter-build.sqs.SendMessageBatch", count_entries)
    s3, bucket, key = (
        cloud.clients.s3,
        cloud.stack.settings.uploads_bucket,
        "incoming/runtime/mp.csv",
    )
    try:
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        part = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=file.body
        )
        etag = s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )["ETag"]
        ingest_id = job_id(bucket, key, etag)
        job = final_job(cloud, ingest_id)
        # moto sends two notifications (Put and CompleteMultipartUpload): both handled.
        wait_for(lambda: handled.count(ingest_id) >= 2)
        assert cloud.runtime.wait_until_idle(timeout=60)
    finally:
        sqs.meta.events.unregister("before-parameter-build.sqs.SendMessageBatch", count_entries)

    assert handled.count(ingest_id) == 2
    # One parse ran, and only its chunks were sent.
    job = final_job(cloud, ingest_id)
    assert job["run"] == 1
    assert sum(sent) == job["chunks_total"] == 3
    assert (job["rows_written"], job["rows_accepted"], job["rows_rejected"]) == (12, 12, 0)
