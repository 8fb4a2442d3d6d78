"""What the API shows of failures: a code and a sentence of ours, never the exception's text."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.errors import SendFailedError
from chalicelib.readings import handlers, ingest
from chalicelib.readings.attempts import public_failure
from chalicelib.readings.jobs import job_id
from tests.readings.pipeline import drain, upload

ACCOUNT = "123456789012"
ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/eventflow-prod-ingest_from_queue/secret-session"
DENIED = ClientError(
    {
        "Error": {
            "Code": "AccessDenied",
            "Message": f"User: {ROLE} is not authorized to perform: s3:GetObject",
        }
    },
    "GetObject",
)
HEADER = b"timestamp,location,source,local_dest,local_avg,remote_dest,remote_avg\n"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (DENIED, "access_denied"),
        (
            ClientError({"Error": {"Code": "InvalidObjectState", "Message": ROLE}}, "GetObject"),
            "aws_error",
        ),
        (
            ClientError({"Error": {"Code": "Throttling", "Message": ROLE}}, "SendMessageBatch"),
            "dependency_unavailable",
        ),
        (
            EndpointConnectionError(endpoint_url=f"https://{ACCOUNT}.example"),
            "dependency_unavailable",
        ),
        (SendFailedError(f"queue {ROLE} refused"), "queue_send_failed"),
        (RuntimeError(f"boom at {ROLE}"), "internal_error"),
        (
            ClientError({"Error": {"Code": f"Weird {ROLE}", "Message": ROLE}}, ROLE),
            "aws_error",
        ),
    ],
)
def test_a_failure_becomes_a_code_and_our_sentence(error, code):
    failure = public_failure(error)
    assert failure["code"] == code and failure["message"]
    assert ACCOUNT not in json.dumps(failure) and "secret" not in json.dumps(failure)


def test_a_failed_attempt_shows_on_the_job_as_a_code_and_the_log_keeps_the_details(
    api, services, outputs, monkeypatch, caplog
):
    def denied(ref, s3):
        raise DENIED

    monkeypatch.setattr(ingest, "_open", denied)
    etag = upload(services, "incoming/t/x.csv", HEADER + b"1,a,b,c,1,d,2\n")["ETag"]
    drain(services, outputs, "s3-events", handlers.ingest_from_queue)
    ingest_id = job_id(services.settings.uploads_bucket, "incoming/t/x.csv", etag)

    response = api.http.get(f"/ingests/{ingest_id}")
    listed = api.http.get("/ingests")
    for text in (response.body.decode(), listed.body.decode()):
        assert ACCOUNT not in text and "secret-session" not in text
    job = json.loads(response.body)
    assert job["state"] == "RUNNING"
    assert job["last_error"]["code"] == "access_denied"
    assert "GetObject" in job["last_error"]["message"]
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[1] is DENIED]
    assert logged and logged[0].ingest_id == ingest_id, "the exception goes to the log"


def test_a_job_stored_with_raw_error_text_shows_only_a_code(api, services, outputs):
    from chalicelib.dynamo import to_item
    from chalicelib.readings.keys import JOB_PK

    etag = upload(services, "incoming/t/y.csv", HEADER)["ETag"]
    drain(services, outputs, "s3-events", handlers.ingest_from_queue)
    ingest_id = job_id(services.settings.uploads_bucket, "incoming/t/y.csv", etag)
    services.clients.dynamodb.update_item(
        TableName=services.settings.ingests_table,
        Key=to_item({JOB_PK: ingest_id}),
        UpdateExpression="SET last_error = :e",
        ExpressionAttributeValues=to_item({":e": f"ClientError: {ROLE}"}),
    )
    job = json.loads(api.http.get(f"/ingests/{ingest_id}").body)
    assert job["last_error"]["code"] == "unknown" and ACCOUNT not in json.dumps(job)


@pytest.mark.parametrize("body", [b"{", b'{"a": }', b"\xff\xfe", b'{"a": 1} x'])
def test_a_malformed_body_is_described_in_our_words(api, body):
    response = api.http.post("/readings", body=body, headers={"Content-Type": "application/json"})
    error = json.loads(response.body)
    assert response.status_code == 400 and error["details"][0]["field"] == "body"
    for python_text in ("Expecting", "codec", "Extra data", "char "):
        assert python_text not in error["message"], error
