"""Least privilege: each function's derived policy covers what its handler calls.

The calls are recorded by ``tests/plugins/iam_calls.py`` while this test runs
the real handlers under moto: an upload goes through ingest and the writer,
and the API serves the routes that touch AWS. With the plugin loaded from
``tests/conftest.py``, the whole suite's calls are checked the same way at the
end of the session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.readings import handlers
from infra import arns, iam
from tests import events
from tests.infra.conftest import stack_for
from tests.plugins.iam_calls import iam_requests
from tests.readings.pipeline import drain, upload

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_no_policy_grants_a_wildcard_action(stage):
    for function, document in iam.policies(stack_for(stage)).items():
        assert iam.wildcard_actions(document) == [], function
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            assert statement["Resource"], function
            if "*" in statement["Resource"]:
                # Only X-Ray's writes, which IAM cannot scope to a resource.
                assert statement["Action"] == sorted(iam.TRACING_ACTIONS), function


def test_each_function_only_reaches_its_own_resources():
    stack = stack_for("prod")
    account = arns.Account(account_id="111122223333", region="eu-west-1")
    policies = {f: iam.fill(d, account) for f, d in iam.policies(stack).items()}
    readings = "arn:aws:dynamodb:eu-west-1:111122223333:table/eventflow-prod-readings"
    assert iam.allows(policies["write_readings"], "dynamodb:BatchWriteItem", readings)
    assert not iam.allows(policies["write_readings"], "dynamodb:DeleteItem", readings)
    assert not iam.allows(policies["api_handler"], "dynamodb:BatchWriteItem", readings)
    # The API presigns uploads only under incoming/, never over rejects reports.
    bucket = stack.bucket("uploads").name
    assert iam.allows(policies["api_handler"], "s3:PutObject", f"arn:aws:s3:::{bucket}/incoming/x")
    assert not iam.allows(
        policies["api_handler"], "s3:PutObject", f"arn:aws:s3:::{bucket}/rejects/x"
    )
    # Consuming a queue is granted only to the function the mapping feeds.
    ingest_queue = "arn:aws:sqs:eu-west-1:111122223333:eventflow-prod-ingest"
    assert iam.allows(policies["write_readings"], "sqs:ReceiveMessage", ingest_queue)
    assert not iam.allows(policies["ingest_from_queue"], "sqs:ReceiveMessage", ingest_queue)


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_a_function_backs_off_messages_only_on_the_queues_it_consumes(stage):
    """chalicelib.batch reads the visibility timeout of, and changes the visibility
    of failed messages on, the queue the function consumes: never on another one."""
    stack = stack_for(stage)
    account = arns.Account(account_id="111122223333", region="eu-west-1")
    for function in stack.functions:
        policy = iam.fill(iam.policy(stack, function.name), account)
        consumed = {s.source_key for s in stack.event_sources if s.function == function.name}
        for queue in stack.queues:
            for name in (queue.name, queue.dlq_name):
                arn = f"arn:aws:sqs:eu-west-1:111122223333:{name}"
                own = name == queue.name and queue.key in consumed
                for action in ("sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"):
                    assert iam.allows(policy, action, arn) == own, (function.name, action, name)


def test_transactions_are_authorized_per_item():
    pairs = iam_requests(
        "dynamodb",
        "TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": "t"}}, {"Update": {"TableName": "t"}}]},
        "us-east-1",
    )
    assert [action for action, _ in pairs] == ["dynamodb:PutItem", "dynamodb:UpdateItem"]


def test_the_policies_cover_every_call_the_handlers_make(iam_calls, services, outputs, api):
    # iam_calls first: it must hook botocore before the fixtures create clients.
    bucket = services.settings.uploads_bucket
    with iam_calls.capturing() as recorded:
        # Through S3's notification to the queue: moto's carries no version id,
        # so the ingest reads the object by ETag (GetObject with If-Match).
        upload(services, "incoming/iam/clean.csv", (SAMPLES / "readings_clean.csv").read_bytes())
        upload(services, "incoming/iam/bad.csv", (SAMPLES / "readings_bad.csv").read_bytes())
        drain(services, outputs, "s3-events", handlers.ingest_from_queue)
        # As AWS notifies for a versioned bucket: the event names the version,
        # and the ingest reads that version (GetObject with VersionId).
        key = "incoming/iam/versioned.csv"
        put = upload(services, key, (SAMPLES / "reading_single.csv").read_bytes())
        record = events.s3_record(bucket, key, put["ETag"], version_id=put["VersionId"])
        handlers.ingest_from_s3(events.s3_event(record), None, services)
        drain(services, outputs, "ingest", handlers.write_readings)
        for path in ("/readings?date=2019-05-28", "/readings/lab-01", "/ingests", "/health"):
            response = api.http.get(path)
            assert response.status_code == 200, (path, response.body)
        response = api.http.post(
            "/uploads",
            body=json.dumps({"filename": "x.csv"}),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 201, response.body
        assert json.loads(response.body)["url"].startswith("http")

    made = {(call.function, call.action) for call in recorded}
    for expected in [
        ("ingest_from_queue", "s3:GetObject"),
        ("ingest_from_queue", "sqs:SendMessage"),
        ("ingest_from_queue", "s3:PutObject"),  # the rejects report
        ("ingest_from_s3", "s3:GetObjectVersion"),
        ("write_readings", "dynamodb:BatchWriteItem"),
        ("api_handler", "dynamodb:Query"),
        ("api_handler", "s3:PutObject"),  # a presigned POST, signed with the API's role
    ]:
        assert expected in made, f"{expected} was not exercised"
    # botocore builds a presigned POST's parameters as a CreateBucket; the plugin
    # records the PutObject it grants instead (tests/plugins/iam_calls.py).
    assert ("api_handler", "s3:CreateBucket") not in made
    assert iam_calls.violations() == []


def test_a_version_the_policy_does_not_cover_is_a_violation(iam_calls):
    """The check itself can fail: reading an object version is its own IAM action."""
    stack = stack_for("local")
    account = arns.Account(account_id="123456789012", region="us-east-1")
    policy = iam.fill(iam.policy(stack, "api_handler"), account)
    [(action, resource)] = iam_requests(
        "s3",
        "GetObject",
        {"Bucket": stack.bucket("uploads").name, "Key": "incoming/x.csv", "VersionId": "v1"},
        "us-east-1",
    )
    assert action == "s3:GetObjectVersion"
    assert not iam.allows(policy, action, resource)
