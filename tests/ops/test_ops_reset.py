"""``ops reset`` empties the local cloud, and refuses every endpoint that is not local."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from chalicelib.aws import Clients, local_defaults
from ops.__main__ import main
from ops.reset import NotLocalError, reset_url
from ops.target import Target


def _run(argv):
    out = io.StringIO()
    code = main(argv, console=Console(file=out, width=300))
    return code, out.getvalue()


@pytest.mark.parametrize(
    "endpoint", [None, "https://sqs.us-east-1.amazonaws.com", "http://10.0.0.5:5000"]
)
def test_reset_refuses_an_endpoint_that_is_not_this_machine(endpoint, monkeypatch):
    if endpoint is None:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    code, out = _run(["reset"])
    assert code == 2
    assert "refused" in out


def test_reset_refuses_when_one_service_is_routed_elsewhere(monkeypatch):
    # A service-specific override wins over AWS_ENDPOINT_URL in boto3, so a
    # local-looking AWS_ENDPOINT_URL alone proves nothing.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.us-east-1.amazonaws.com")
    with pytest.raises(NotLocalError):
        reset_url(Target("local"))


def test_reset_deletes_everything_and_provisions_the_stage_again(target):
    sqs = target.clients.sqs
    stray = sqs.create_queue(QueueName="not-declared")["QueueUrl"]
    ingest_url = target.outputs.queues["ingest"]["url"]
    sqs.send_message(QueueUrl=ingest_url, MessageBody="left over")

    code, out = _run(["reset"])

    assert code == 0, out
    names = {url.rsplit("/", 1)[1] for url in sqs.list_queues().get("QueueUrls", [])}
    assert "not-declared" not in names
    declared = {n for q in target.stack.queues for n in (q.name, q.dlq_name)}
    assert declared | {q.name for q in target.stack.failure_queues} == names
    attributes = sqs.get_queue_attributes(
        QueueUrl=ingest_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert stray not in sqs.list_queues().get("QueueUrls", [])


def test_reset_finds_the_local_cloud_the_local_stage_falls_back_to(monkeypatch):
    # A fresh shell: no endpoint exported, only the port the local cloud listens on;
    # the other ops commands reach it through the local stage's defaults.
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVENTFLOW_AWS_PORT", "4599")
    target = Target("local", clients=Clients(defaults=local_defaults("local")))
    assert reset_url(target) == "http://127.0.0.1:4599/moto-api/reset"


def test_reset_refuses_services_on_two_local_ports(monkeypatch):
    # Two moto servers: a reset of one would leave the other's state behind.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5001")
    with pytest.raises(NotLocalError, match="5001"):
        reset_url(Target("local"))
