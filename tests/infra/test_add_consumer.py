"""The worked example of docs/architecture.md, "Adding a consumer": the steps it lists suffice.

A fourth consumer of ``order-events`` is added to a temporary copy of the
project by exactly those steps (:mod:`tests.infra.loyalty_consumer`). The copy's
own modules then run in fresh interpreters (working directory and
``PYTHONPATH`` the copy; :mod:`tests.infra.consumer_probe` reports what they
declare and provision), and ``python -m infra package`` packages the copy for
CloudFormation and Terraform. Were a step missing from the list (the entry
alone not giving the queue its subscription, a config entry Chalice needs), a
test here fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.orders.states import EventType
from infra import iam
from tests.infra.conftest import stack_for
from tests.infra.loyalty_consumer import (
    CONCURRENCY,
    FUNCTION,
    KEY,
    MEMORY,
    TIMEOUT,
    copy_with_loyalty,
)
from tests.plugins.iam_calls import EVENT_HANDLERS, event_handlers, handler_modules

PROBE = Path(__file__).with_name("consumer_probe.py")
ACCOUNT = "123456789012"
REGION = "us-east-1"
EVERY_EVENT = {"event_type": sorted(str(kind) for kind in EventType)}


def _environment(project: Path) -> dict[str, str]:
    """Nothing of this checkout or of the caller's AWS setup: the copy, fake credentials."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "EVENTFLOW_", "PYTHON"))
    }
    return {
        **env,
        "PYTHONPATH": str(project),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_METRICS_NAMESPACE": "eventflow",
    }


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> dict[str, Any]:
    """The copy with the consumer added, and what each command run on it wrote or said.

    The commands run at once, each in a process of its own; each test reads
    the output of the ones it checks, and fails with a command's own output
    when that command failed.
    """
    root = tmp_path_factory.mktemp("add-consumer")
    project = copy_with_loyalty(root / "project")
    probe = [sys.executable, "-c", PROBE.read_text()]
    package = [sys.executable, "-m", "infra", "package"]
    commands = {
        "declared": [*probe, "declared", FUNCTION, KEY, str(root / "declared.json")],
        "provisioned": [*probe, "provisioned", FUNCTION, KEY, str(root / "moto.json")],
        "cfn": [*package, "--stage", "prod", "--out", str(root / "cfn")],
        "tf-prod": [*package, "--stage", "prod", "--format", "terraform", "--out",
                    str(root / "tf-prod")],
        "tf-dev": [*package, "--stage", "dev", "--format", "terraform", "--out",
                   str(root / "tf-dev")],
    }  # fmt: skip
    env = _environment(project)
    running = {
        name: subprocess.Popen(
            command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, command in commands.items()
    }
    finished = {name: process.communicate() for name, process in running.items()}
    return {
        "project": project,
        "root": root,
        "failures": {
            name: f"{name} failed on the copy:\n{stdout}\n{stderr}"
            for name, (stdout, stderr) in finished.items()
            if running[name].returncode != 0
        },
    }


def ran(example: dict[str, Any], command: str) -> Path:
    """The run's directory, once ``command`` succeeded on the copy (else its output)."""
    failure = example["failures"].get(command)
    assert failure is None, failure
    return example["root"]


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def declaration(example: dict[str, Any]) -> dict[str, Any]:
    return read(ran(example, "declared") / "declared.json")


def provisioned(example: dict[str, Any]) -> dict[str, Any]:
    return read(ran(example, "provisioned") / "moto.json")


def terraform(example: dict[str, Any], stage: str) -> dict[str, Any]:
    out = ran(example, f"tf-{stage}") / f"tf-{stage}"
    names = ("chalice", "eventflow_resources", "eventflow_override")
    return {name: read(out / f"{name}.tf.json") for name in names}


def queue_name(stage: str) -> str:
    return f"eventflow-{stage}-{KEY}"


def physical_name(stage: str) -> str:
    return f"eventflow-{stage}-{FUNCTION}"


# -- what the entry declares ----------------------------------------------------------------


def test_the_copys_own_modules_ran(example):
    project = str(example["project"])
    for report in (declaration(example), provisioned(example)):
        assert all(path.startswith(project) for path in report["imported_from"])


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_the_entry_declares_the_queue_its_dlq_subscription_mapping_and_function(example, stage):
    declared = declaration(example)["stages"][stage]
    queue = declared["queue"]
    assert (queue["name"], queue["dlq_name"], queue["fifo"]) == (
        queue_name(stage),
        f"{queue_name(stage)}-dlq",
        False,
    )
    assert queue["carries"] == "order-event" and queue["max_receive_count"] == 5
    assert queue["visibility_timeout"] == 6 * TIMEOUT
    assert declared["subscriptions"] == [
        {"key": KEY, "topic_key": "order-events", "queue_key": KEY, "filter_policy": EVERY_EVENT}
    ]
    [source] = declared["event_sources"]
    assert source["source_key"] == KEY
    assert source["report_batch_item_failures"] is True
    assert source["maximum_concurrency"] == CONCURRENCY
    function = declared["function"]
    assert function["physical_name"] == physical_name(stage)
    assert (function["timeout"], function["memory_size"]) == (TIMEOUT, MEMORY)
    assert function["reserved_concurrency"] == (CONCURRENCY if stage == "prod" else None)
    assert declared["grant_types"] == ["TableAccess"]
    assert function["grants"] == [
        {"table_key": "idempotency", "actions": "PutItem", "indexes": False,
         "key_prefixes": ["loyalty#"]}
    ]  # fmt: skip


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_its_policy_allows_what_it_was_granted_and_its_queue_and_nothing_else(example, stage):
    policy = declaration(example)["stages"][stage]["policy"]
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    table = arn.format("dynamodb", f"table/eventflow-{stage}-idempotency")
    queue = arn.format("sqs", queue_name(stage))
    log_group = arn.format("logs", f"log-group:/aws/lambda/{physical_name(stage)}")
    statements = {
        (tuple(s["Action"]), tuple(s["Resource"]), json.dumps(s.get("Condition"), sort_keys=True))
        for s in policy["Statement"]
        if s["Sid"] not in ("Logs", "Tracing")
    }
    assert statements == {
        (
            ("dynamodb:PutItem",),
            (table,),
            json.dumps({"ForAllValues:StringLike": {iam.LEADING_KEYS: ["loyalty#*"]}}),
        ),
        (tuple(sorted(iam.SQS_CONSUMER_ACTIONS)), (queue,), "null"),
    }
    logs = next(s for s in policy["Statement"] if s["Sid"] == "Logs")
    assert logs["Resource"] == [log_group, f"{log_group}:*"]
    own, other = {iam.LEADING_KEYS: ["loyalty#e-1"]}, {iam.LEADING_KEYS: ["analytics#e-1"]}
    assert iam.allows(policy, "dynamodb:PutItem", table, own)
    assert not iam.allows(policy, "dynamodb:PutItem", table, other)
    assert not iam.allows(policy, "dynamodb:UpdateItem", table, own)
    assert iam.allows(policy, "sqs:ChangeMessageVisibility", queue)
    assert not iam.allows(
        policy, "sqs:ReceiveMessage", arn.format("sqs", f"eventflow-{stage}-analytics")
    )


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_its_dlq_queue_age_errors_and_throttles_are_alarmed_and_charted(example, stage):
    declared = declaration(example)["stages"][stage]
    # Each on one dimension: the queue's or the function's name.
    alarms = {(a["metric_name"], a["dimensions"][0][1]) for a in declared["alarms"]}
    assert alarms == {
        ("ApproximateNumberOfMessagesVisible", f"{queue_name(stage)}-dlq"),
        ("ApproximateAgeOfOldestMessage", queue_name(stage)),
        ("Errors", physical_name(stage)),
        ("Throttles", physical_name(stage)),
    }
    assert all(a["topic_key"] == "alerts" for a in declared["alarms"])
    [dashboard] = declared["dashboard"]
    charted = {
        tuple(metric)
        for widget in json.loads(dashboard)["widgets"]
        for metric in widget["properties"]["metrics"]
    }
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue_name(stage)),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"{queue_name(stage)}-dlq"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue_name(stage)),
        ("AWS/Lambda", "Errors", "FunctionName", physical_name(stage)),
    } <= charted


def test_the_decorator_consumes_the_declared_queue(example):
    assert declaration(example)["app_sources"] == [
        {
            "type": "SQSEventConfig",
            "queue": queue_name("local"),
            "batch_size": 10,
            "maximum_concurrency": CONCURRENCY,
        }
    ]


def test_importing_the_app_leaves_the_new_module_for_the_handler_to_load(example):
    loaded = declaration(example)["orders_modules_at_import"]
    assert "chalicelib.orders.loyalty" not in loaded and "chalicelib.orders.handlers" in loaded


def test_the_iam_call_recorder_finds_the_new_handler_without_being_told(example):
    project = example["project"]
    assert FUNCTION in event_handlers(project / "app.py")
    assert "chalicelib.orders.handlers" in handler_modules(project)


def test_the_iam_call_recorder_knows_every_declared_event_handler():
    # local uses the sqs ingest trigger, dev the s3 one: between them, every handler.
    declared = {f.name for stage in ("local", "dev") for f in stack_for(stage).functions}
    assert sorted(EVENT_HANDLERS) == sorted(declared - {"api_handler"})


# -- what ships -------------------------------------------------------------------------------


def _by(resources: dict[str, Any], kind: str, **properties: Any) -> tuple[str, dict[str, Any]]:
    found = [
        (logical_id, resource)
        for logical_id, resource in resources.items()
        if resource["Type"] == kind
        and all(resource["Properties"].get(k) == v for k, v in properties.items())
    ]
    assert len(found) == 1, f"{len(found)} {kind} with {properties}"
    return found[0]


def test_cloudformation_packages_the_queue_subscription_mapping_and_role(example):
    resources = read(ran(example, "cfn") / "cfn" / "sam.json")["Resources"]
    name = queue_name("prod")
    dlq_id, _ = _by(resources, "AWS::SQS::Queue", QueueName=f"{name}-dlq")
    queue_id, queue = _by(resources, "AWS::SQS::Queue", QueueName=name)
    assert queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": [dlq_id, "Arn"]
    }
    _, subscription = _by(
        resources, "AWS::SNS::Subscription", Endpoint={"Fn::GetAtt": [queue_id, "Arn"]}
    )
    assert subscription["Properties"]["RawMessageDelivery"] is True
    assert subscription["Properties"]["FilterPolicy"] == EVERY_EVENT
    # Chalice made the function from the decorator; the merge completed its mapping.
    _, function = _by(resources, "AWS::Serverless::Function", Handler=f"app.{FUNCTION}")
    properties = function["Properties"]
    assert properties["ReservedConcurrentExecutions"] == CONCURRENCY
    [event] = properties["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::Sub": f"${{{queue_id}.Arn}}"}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": CONCURRENCY}
    role = resources[properties["Role"]["Fn::GetAtt"][0]]
    [policy] = role["Properties"]["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert list(statements) == ["Logs", "Tracing", "TableIdempotency", "ConsumeLoyalty"]
    assert statements["TableIdempotency"]["Condition"] == {
        "ForAllValues:StringLike": {iam.LEADING_KEYS: ["loyalty#*"]}
    }


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_terraform_packages_the_queue_subscription_mapping_and_role(example, stage):
    files = terraform(example, stage)
    resources = files["eventflow_resources"]["resource"]
    override = files["eventflow_override"]["resource"]
    chalice = files["chalice"]["resource"]
    queues = {body["name"]: name for name, body in resources["aws_sqs_queue"].items()}
    queue, dlq = queues[queue_name(stage)], queues[f"{queue_name(stage)}-dlq"]
    assert f"aws_sqs_queue.{dlq}.arn" in resources["aws_sqs_queue"][queue]["redrive_policy"]
    [subscription] = [
        s
        for s in resources["aws_sns_topic_subscription"].values()
        if s["endpoint"] == f"${{aws_sqs_queue.{queue}.arn}}"
    ]
    assert subscription["raw_message_delivery"] is True
    assert json.loads(subscription["filter_policy"]) == EVERY_EVENT
    # The override merges into the blocks Chalice generated from the decorator.
    mapping = f"{FUNCTION}-sqs-event-source"
    assert (
        queue_name(stage) in chalice["aws_lambda_event_source_mapping"][mapping]["event_source_arn"]
    )
    assert override["aws_lambda_event_source_mapping"][mapping] == {
        "event_source_arn": f"${{aws_sqs_queue.{queue}.arn}}",
        "function_response_types": ["ReportBatchItemFailures"],
        "scaling_config": [{"maximum_concurrency": CONCURRENCY}],
    }
    function = chalice["aws_lambda_function"][FUNCTION]
    assert function["function_name"] == physical_name(stage)
    assert function.get("reserved_concurrent_executions") == (
        CONCURRENCY if stage == "prod" else None
    )
    role_policy = json.loads(override["aws_iam_role_policy"][f"{FUNCTION}_role"]["policy"])
    assert [s["Sid"] for s in role_policy["Statement"]] == [
        "Logs",
        "Tracing",
        "TableIdempotency",
        "ConsumeLoyalty",
    ]


# -- what runs -------------------------------------------------------------------------------


def test_provisioning_the_local_stage_creates_the_queue_dlq_and_subscription(example):
    found = provisioned(example)
    assert found["queue"]["name"] == queue_name("local")
    assert found["dlq"] == {"name": f"{queue_name('local')}-dlq", "exists": True}
    redrive = json.loads(found["queue"]["attributes"]["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": found["dlq_arn"], "maxReceiveCount": 5}
    assert found["queue"]["attributes"]["VisibilityTimeout"] == str(6 * TIMEOUT)
    assert found["subscriptions"] == [
        {"topic": "eventflow-local-order-events.fifo", "raw": "true", "filter_policy": EVERY_EVENT}
    ]


def test_an_event_published_to_the_topic_is_recorded_once_by_the_new_handler(example):
    delivery = provisioned(example)["delivery"]
    assert delivery["published"] == 1
    [body] = delivery["received_bodies"]  # raw delivery: the event itself
    assert body["event_id"] == delivery["event_id"]
    # Delivered twice (a redelivery): both succeed, and one record is kept.
    assert delivery["answers"] == [{"batchItemFailures": []}] * 2
    assert delivery["idempotency_ids"] == [f"loyalty#{delivery['event_id']}"]
