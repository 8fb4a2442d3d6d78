"""app.py's event handlers through Chalice's test client, for both ingest triggers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib.readings.jobs import job_id
from tests import events
from tests.readings.pipeline import receive, to_event, upload

ROOT = Path(__file__).resolve().parents[2]
CLEAN = (ROOT / "sample_data" / "readings_clean.csv").read_bytes()


def load_app(monkeypatch, trigger: str, services):
    """A fresh app.py module imported under one trigger setting, wired to moto."""
    monkeypatch.setenv("EVENTFLOW_INGEST_TRIGGER", trigger)
    spec = importlib.util.spec_from_file_location(f"app_{trigger}", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "services", lambda: services)
    return module


def write_all(client, services, outputs) -> None:
    messages = receive(services.clients.sqs, outputs.queues["ingest"]["url"])
    assert messages
    response = client.lambda_.invoke("write_readings", to_event(messages))
    assert response.payload == {"batchItemFailures": []}


@pytest.mark.parametrize("trigger", ["s3", "sqs"])
def test_both_triggers_run_the_same_ingest_through_app_py(monkeypatch, services, outputs, trigger):
    module = load_app(monkeypatch, trigger, services)
    bucket, key = services.settings.uploads_bucket, f"incoming/{trigger}/clean.csv"
    etag = upload(services, key, CLEAN)["ETag"].strip('"')
    record = events.s3_record(bucket, key, etag)
    with Client(module.app, stage_name="local") as client:
        if trigger == "s3":
            client.lambda_.invoke("ingest_from_s3", events.s3_event(record))
        else:
            response = client.lambda_.invoke(
                "ingest_from_queue",
                events.sqs_event(events.s3_notification_body(record), queue=events.S3_EVENTS_QUEUE),
            )
            assert response.payload == {"batchItemFailures": []}
        write_all(client, services, outputs)
    job = services.jobs.get(job_id(bucket, key, etag))
    assert (job["state"], job["rows_written"]) == ("COMPLETED", 20)


def test_the_writer_handler_returns_the_failed_message_ids(monkeypatch, services, outputs):
    module = load_app(monkeypatch, "sqs", services)
    event = events.sqs_event("garbage", '{"v": 1}')
    with Client(module.app, stage_name="local") as client:
        response = client.lambda_.invoke("write_readings", event)
    assert response.payload == {
        "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]
    }
