"""The app's shape: light imports, the trigger setting, and the declaration's rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.resources import VISIBILITY_TIMEOUT_FACTOR
from infra.stack import declare
from infra.stageconfig import StageConfig

ROOT = Path(__file__).resolve().parent.parent


def _import_app(env: dict[str, str]) -> dict:
    """Import app.py in a fresh interpreter; report its event sources and any AWS calls."""
    code = (
        "import json, botocore.endpoint as e\n"
        "calls = []\n"
        "e.Endpoint.make_request = lambda self, *a, **k: calls.append(1)\n"
        "import app\n"
        "sources = sorted((s.name, type(s).__name__) for s in app.app.event_sources)\n"
        "queues = {s.name: [s.queue, s.maximum_concurrency]\n"
        "          for s in app.app.event_sources if hasattr(s, 'queue')}\n"
        "print(json.dumps({'sources': sources, 'queues': queues, 'calls': len(calls)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("trigger", "ingest"),
    [("sqs", ("ingest_from_queue", "SQSEventConfig")), ("s3", ("ingest_from_s3", "S3EventConfig"))],
)
def test_the_stage_setting_registers_exactly_one_ingest_trigger(trigger, ingest):
    found = _import_app({"EVENTFLOW_STAGE": "local", "EVENTFLOW_INGEST_TRIGGER": trigger})
    # Every other event source is one the declaration configures, queue or stream.
    stack = declare(StageConfig.load("local"))
    tables = {table.key for table in stack.tables}
    others = [
        [s.function, "DynamoDBEventConfig" if s.source_key in tables else "SQSEventConfig"]
        for s in stack.event_sources
        if s.function not in ("ingest_from_queue", "ingest_from_s3")
    ]
    assert found["sources"] == sorted([list(ingest), *others])
    assert found["calls"] == 0


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_each_sqs_handler_consumes_the_queue_its_stage_declares(stage):
    # The packaged templates point each mapping at the declared queue whatever
    # app.py names, so a mismatch would only show under `chalice deploy` or
    # the local cloud; here it shows at once.
    config = StageConfig.load(stage)
    stack = declare(config)
    found = _import_app(config.environment())
    declared = {
        source.function: [stack.queue(source.source_key).name, source.maximum_concurrency]
        for source in stack.event_sources
        if source.source_key in {queue.key for queue in stack.queues}
    }
    assert found["queues"] == declared


def test_the_config_stages_choose_their_triggers():
    triggers = {s: StageConfig.load(s).settings().ingest_trigger for s in ("local", "dev", "prod")}
    assert triggers == {"local": "sqs", "dev": "s3", "prod": "sqs"}


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_every_queue_has_a_dlq_and_outlasts_its_consumer(stage):
    config = StageConfig.load(stage)
    stack = declare(config)
    consumers = {s.source_key: s.function for s in stack.event_sources}
    for queue in stack.queues:
        base = queue.name.removesuffix(".fifo")
        suffix = ".fifo" if queue.fifo else ""
        assert queue.dlq_name == f"{base}-dlq{suffix}" and queue.max_receive_count == 5
        assert queue.name.startswith(f"eventflow-{stage}-")
        timeout = config.lambda_timeout(consumers[queue.key])
        assert queue.visibility_timeout >= VISIBILITY_TIMEOUT_FACTOR * timeout
    assert all(t.name.startswith(f"eventflow-{stage}-") for t in stack.tables)


def test_provision_is_idempotent_and_outputs_match(clients, stage_config):
    from infra.provision import Provisioner

    stack = declare(stage_config)
    first = Provisioner(clients).apply(stack).to_dict()
    second = Provisioner(clients).apply(stack).to_dict()
    assert first == second == Provisioner(clients).describe(stack).to_dict()
    attributes = clients.sqs.get_queue_attributes(
        QueueUrl=first["queues"]["ingest"]["url"], AttributeNames=["All"]
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": first["queues"]["ingest-dlq"]["arn"],
        "maxReceiveCount": 5,
    }
    assert attributes["SqsManagedSseEnabled"] == "true"


def test_python_m_infra_provisions_a_moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
        for command in ("provision", "outputs"):
            result = subprocess.run(
                [sys.executable, "-m", "infra", command, "--stage", "local"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            outputs = json.loads(result.stdout)
            assert outputs["tables"]["readings"]["name"] == "eventflow-local-readings"
            assert outputs["queues"]["ingest-dlq"]["name"] == "eventflow-local-ingest-dlq"
    finally:
        server.stop()


def test_an_unknown_stage_is_a_clear_error_not_a_traceback(capsys):
    from infra.__main__ import main

    assert main(["provision", "--stage", "nope"]) == 2
    error = capsys.readouterr().err
    assert "stage 'nope' is not in config.json" in error and "Traceback" not in error
