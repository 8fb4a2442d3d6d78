"""``python -m infra deploy|destroy`` end to end, against a moto server of its own.

Never the local cloud's moto: a moto that holds event-source mappings drains
their queues without running anything. The server here lives for this test
only, on a port it binds itself (0); ``chalice deploy`` (a subprocess) reaches it through
``AWS_ENDPOINT_URL``. ``moto_gaps`` patches two moto shortcomings that AWS
does not have (see ``tests/infra/motogaps.py``).
"""

from __future__ import annotations

import json

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from chalicelib.aws import Clients
from infra import deploy
from infra.__main__ import main
from tests.infra.conftest import project_copy, stack_for


@pytest.fixture
def moto_endpoint(moto_gaps, monkeypatch):
    # Port 0: bound by the server itself, so no other test can take it first.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's backends are process-wide, whichever server serves them: start clean.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    yield endpoint
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    server.stop()
    server._server.server_close()  # stop() leaves the listening socket open


def assert_api_stage_as_declared(session, stack) -> None:
    """Throttled, access-logged into its declared group, traced."""
    apigateway = session.client("apigateway")
    api_id = apigateway.get_rest_apis()["items"][0]["id"]
    api_stage = apigateway.get_stage(restApiId=api_id, stageName=stack.api.stage_name)
    throttling = api_stage["methodSettings"]["*/*"]
    assert throttling["throttlingRateLimit"] == stack.api.rate_limit
    assert throttling["throttlingBurstLimit"] == stack.api.burst_limit
    access = stack.log_group(stack.api.access_log_group).name
    assert api_stage["accessLogSettings"]["destinationArn"].endswith(f":log-group:{access}")
    assert api_stage["accessLogSettings"]["format"] == stack.api.ACCESS_LOG_FORMAT
    assert api_stage["tracingEnabled"] is True


def run(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert main(list(argv)) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    # moto's Lambda, finding no Docker when its mapping fires, may print first.
    return json.loads(out[out.index("{") :])


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_deploy_is_complete_repeatable_and_destroy_leaves_nothing(
    stage, moto_endpoint, tmp_path, capsys
):
    project = project_copy(tmp_path / "project")
    stack = stack_for(stage)
    args = ("--stage", stage, "--project-dir", str(project))

    first = run(capsys, "deploy", *args)
    assert set(first["mapping_changes"]) == {s.function for s in stack.event_sources}

    session = boto3.session.Session()
    lambda_ = session.client("lambda")
    functions = {f["FunctionName"] for f in lambda_.list_functions()["Functions"]}
    assert functions == {f.physical_name for f in stack.functions}
    mappings = lambda_.list_event_source_mappings()["EventSourceMappings"]
    assert len(mappings) == len(stack.event_sources)
    concurrency = {s.function: s.maximum_concurrency for s in stack.event_sources}
    for mapping in mappings:
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        function = mapping["FunctionArn"].rsplit(":", 1)[1].removeprefix(f"eventflow-{stage}-")
        if concurrency[function] is not None:
            assert mapping["ScalingConfig"] == {"MaximumConcurrency": concurrency[function]}
    # Reserved concurrency (prod) and active tracing, from .chalice/config.json.
    for function in stack.functions:
        configuration = lambda_.get_function(FunctionName=function.physical_name)
        reserved = configuration.get("Concurrency", {}).get("ReservedConcurrentExecutions")
        assert reserved == function.reserved_concurrency, function.name
        assert configuration["Configuration"]["TracingConfig"]["Mode"] == "Active"
    assert_api_stage_as_declared(session, stack)
    logs = session.client("logs")
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]}
    for group in stack.log_groups:
        assert groups[group.name]["retentionInDays"] == group.retention_days
    kms = session.client("kms")
    key = kms.describe_key(KeyId=stack.keys[0].alias)["KeyMetadata"]
    topic_arn = first["outputs"]["topics"]["order-events"]["arn"]
    topic = session.client("sns").get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    assert topic["KmsMasterKeyId"] == key["Arn"]
    # Each function runs as its own role, with the derived policy.
    iam = session.client("iam")
    for function in stack.functions:
        role_name = f"eventflow-{stage}-{function.name}"
        role = lambda_.get_function(FunctionName=function.physical_name)["Configuration"]["Role"]
        assert role.endswith(f"/{role_name}")
        policies = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        document = iam.get_role_policy(RoleName=role_name, PolicyName=policies[0])
        actions = [a for s in document["PolicyDocument"]["Statement"] for a in s["Action"]]
        assert actions and "*" not in "".join(actions)

    sqs = session.client("sqs")
    queue_names = {url.rsplit("/", 1)[1] for url in sqs.list_queues().get("QueueUrls", [])}
    declared = {n for q in stack.queues for n in (q.name, q.dlq_name)}
    assert queue_names == declared | {q.name for q in stack.failure_queues}
    # Asynchronously invoked functions (dev's ingest_from_s3) retry, then go to their queue.
    assert set(first["async_changes"]) == {s.function for s in stack.async_invokes}
    for settings in stack.async_invokes:
        config = lambda_.get_function_event_invoke_config(
            FunctionName=stack.function(settings.function).physical_name
        )
        target = stack.failure_queue(settings.on_failure_queue_key).name
        assert config["MaximumRetryAttempts"] == settings.maximum_retry_attempts
        assert config["DestinationConfig"]["OnFailure"]["Destination"].endswith(f":{target}")
    tables = set(session.client("dynamodb").list_tables()["TableNames"])
    assert tables == {t.name for t in stack.tables}

    second = run(capsys, "deploy", *args)
    assert second["mapping_changes"] == {} and second["async_changes"] == {}
    # moto replaces the stage at each deployment (AWS keeps its settings), so
    # the second deploy sets them again; once set, nothing more is changed.
    assert_api_stage_as_declared(session, stack)
    clients = Clients()
    target = deploy.account(clients)
    assert deploy.apply_api_stage(clients, stack, project, target) == []

    run(capsys, "destroy", *args)
    assert lambda_.list_functions()["Functions"] == []
    assert lambda_.list_event_source_mappings()["EventSourceMappings"] == []
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert session.client("dynamodb").list_tables()["TableNames"] == []
    assert session.client("s3").list_buckets()["Buckets"] == []
    assert session.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert session.client("sns").list_topics()["Topics"] == []
    assert logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/eventflow")["logGroups"] == []
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert kms.list_aliases(KeyId=key["KeyId"])["Aliases"] == []
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert not [r for r in roles if r.startswith(f"eventflow-{stage}")]
