"""The readings pipeline end to end on a real local cloud (moto server, runtime, HTTP API).

Each test runs its own cloud on ephemeral ports, with the stage's own
settings: a message that a handler fails comes back on the handler's backoff
(``chalicelib.batch``), not after the queue's visibility timeout.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from chalicelib.batch import RetryPolicy
from chalicelib.readings import chunks, handlers
from chalicelib.readings.jobs import DONE_STATES, FINAL_STATES, job_id
from chalicelib.services import Services
from localcloud.cloud import LocalCloud
from sample_data.generate import write_rows

ROOT = Path(__file__).resolve().parents[2]
CLEAN = (ROOT / "sample_data" / "readings_clean.csv").read_bytes()


@pytest.fixture
def cloud():
    with LocalCloud(aws_port=0, api_port=0) as running:
        yield running


def get_json(cloud: LocalCloud, path: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", cloud.api_port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2):
    """Poll until ``predicate()`` returns something truthy; bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def upload(cloud: LocalCloud, key: str, body: bytes) -> str:
    bucket = cloud.stack.settings.uploads_bucket
    etag = cloud.clients.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    return job_id(bucket, key, etag)


def finished_job(cloud: LocalCloud, ingest_id: str):
    def done():
        status, job = get_json(cloud, f"/ingests/{ingest_id}")
        return job if status == 200 and job["state"] in FINAL_STATES else None

    return wait_for(done)


def test_an_uploaded_csv_can_be_queried_through_the_http_api(cloud):
    ingest_id = upload(cloud, "incoming/e2e/clean.csv", CLEAN)
    job = finished_job(cloud, ingest_id)
    assert (job["state"], job["rows_written"]) == ("COMPLETED", 20)
    status, page = get_json(cloud, "/readings/lab-01?source=wired")
    assert status == 200 and len(page["items"]) == 5
    assert [i["timestamp"] for i in page["items"]] == sorted(i["timestamp"] for i in page["items"])
    status, page = get_json(cloud, "/readings?date=2024-06-01&limit=100")
    assert status == 200 and len(page["items"]) == 20


def test_a_poison_chunk_reaches_the_dlq_after_five_receives_and_only_it_is_redelivered(
    monkeypatch,
):
    attempts: Counter[int] = Counter()
    real_write = handlers.writer.write_chunk

    def write_failing_chunk_1(body, services, *delivery):
        seq = chunks.decode_chunk(body).seq
        attempts[seq] += 1
        if seq == 1:
            raise RuntimeError("injected fault: chunk 1 cannot be written")
        return real_write(body, services, *delivery)

    monkeypatch.setattr(handlers.writer, "write_chunk", write_failing_chunk_1)
    # The ingest queue keeps its production visibility timeout (six times the
    # writer's), which no batch outlives however slow the machine: so chunks 0
    # and 2 are delivered once. Chunk 1 comes back on the writer's backoff, not
    # after the visibility timeout; capped at 2 s here so that five receives
    # take seconds (the stage's schedule, 2 s doubling, would take a minute).
    fast = RetryPolicy(base_seconds=1, cap_seconds=2)
    monkeypatch.setattr(Services, "sqs_retry", property(lambda self: fast))
    with LocalCloud(aws_port=0, api_port=0) as cloud:
        ingest_id = upload(cloud, "incoming/e2e/poison.csv", _rows(2500))
        sqs, dlq_url = cloud.clients.sqs, cloud.outputs.queues["ingest-dlq"]["url"]

        def dlq_messages():
            return sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages")

        [dead] = wait_for(dlq_messages, timeout=90)
        _, job = get_json(cloud, f"/ingests/{ingest_id}")
    assert chunks.decode_chunk(dead["Body"]).seq == 1
    # The writer reported only chunk 1 as failed: chunks 0 and 2 were processed once.
    assert attempts == Counter({0: 1, 1: 5, 2: 1})
    # The job cannot complete while a chunk is missing: rows_written shows what is.
    assert job["state"] == "RUNNING"
    assert job["rows_written"] == job["rows_accepted"] - 1000


def _rows(count: int) -> bytes:
    import io

    out = io.StringIO()
    write_rows(out, count)
    return out.getvalue().encode()


def test_the_s3_trigger_runs_through_the_local_runtime(monkeypatch, tmp_path):
    """``on_s3_event`` stages: the runtime delivers S3 events to ``ingest_from_s3``."""
    from moto.server import ThreadedMotoServer

    from chalicelib.aws import Clients
    from chalicelib.clock import Clock
    from chalicelib.readings.jobs import IngestJobs
    from chalicelib.services import Services
    from infra.provision import Provisioner
    from infra.stack import declare
    from infra.stageconfig import StageConfig
    from localcloud.runtime import EventSourceRuntime

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    runtime = None
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        monkeypatch.setenv("EVENTFLOW_INGEST_TRIGGER", "s3")
        base = StageConfig.load("local")
        raw = json.loads(json.dumps(base.raw))
        raw["stages"]["local"]["environment_variables"]["EVENTFLOW_INGEST_TRIGGER"] = "s3"
        config = StageConfig(stage="local", raw=raw)
        clients = Clients()
        stack = declare(config)
        assert "s3-events" not in [q.key for q in stack.queues]
        outputs = Provisioner(clients).apply(stack)
        for name, value in outputs.app_environment().items():
            monkeypatch.setenv(name, value)
        spec = importlib.util.spec_from_file_location("app_s3_e2e", ROOT / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        services = Services(config.settings(), clients=clients)
        monkeypatch.setattr(module, "services", lambda: services)
        runtime = EventSourceRuntime(module.app, config, stack, outputs, clients)
        runtime.start()
        bucket, key = stack.settings.uploads_bucket, "incoming/e2e/via-s3.csv"
        etag = clients.s3.put_object(Bucket=bucket, Key=key, Body=CLEAN)["ETag"]
        jobs = IngestJobs(clients.dynamodb, stack.settings.ingests_table, Clock())
        ingest_id = job_id(bucket, key, etag)

        def done():
            job = jobs.get(ingest_id)
            return job if job and job["state"] in DONE_STATES else None

        job = wait_for(done)
        assert (job["state"], job["rows_written"]) == ("COMPLETED", 20)
        assert runtime.stats()["ingest_from_s3"]["errors"] == 0
    finally:
        if runtime is not None:
            runtime.stop()
        server.stop()
