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
            assert statement["Resource"] and "*" not in statement["Resource"], function


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
    upload(services, "incoming/iam/clean.csv", (SAMPLES / "readings_clean.csv").read_bytes())
    upload(services, "incoming/iam/bad.csv", (SAMPLES / "readings_bad.csv").read_bytes())
    drain(services, outputs, "s3-events", handlers.ingest_from_queue)
    drain(services, outputs, "ingest", handlers.write_readings)
    for path in ("/readings?date=2019-05-28", "/ingests", "/health"):
        api.http.get(path)
    api.http.post(
        "/uploads",
        body=json.dumps({"filename": "x.csv"}),
        headers={"Content-Type": "application/json"},
    )
    # The record is a set, so calls an earlier test made already are not new
    # here: check the whole record (the session-end check validates each call).
    recorded = iam_calls.calls
    exercised = {call.function for call in recorded}
    assert {"ingest_from_queue", "write_readings", "api_handler"} <= exercised
    actions = {call.action for call in recorded}
    assert {"s3:GetObject", "sqs:SendMessage", "dynamodb:BatchWriteItem"} <= actions | {
        "s3:GetObjectVersion"
    }
    assert iam_calls.violations() == []
