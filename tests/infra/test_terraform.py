"""``chalice package --pkg-format terraform`` plus the derived resource and override files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra import terraform_functions, terraform_names
from tests.infra.conftest import stack_for


def load(directory: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.tf.json"))}


def declared_blocks(files: dict[str, dict]) -> set[tuple[str, str]]:
    """(type, name) of every resource and data source the files define (not override)."""
    blocks = set()
    for name, document in files.items():
        if name.endswith("_override.tf.json"):
            continue
        for kind, resources in document.get("resource", {}).items():
            blocks |= {(kind, resource) for resource in resources}
        for kind, sources in document.get("data", {}).items():
            blocks |= {(f"data.{kind}", source) for source in sources}
    return blocks


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_files_are_json_terraform_and_every_reference_resolves(terraform_dirs, stage):
    files = load(terraform_dirs[stage])
    assert set(files) == {
        "chalice.tf.json",
        "eventflow_resources.tf.json",
        "eventflow_override.tf.json",
    }
    defined = declared_blocks(files)
    text = json.dumps(files)
    for match in re.finditer(r"\$\{[^}]*\}", text):
        for ref in re.finditer(
            r"\b(data\.aws_[a-z_]+|aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.", match[0]
        ):
            assert (ref[1], ref[2]) in defined, f"{match[0]} refers to nothing"
    # Every override patches a block that Chalice or our resources define.
    for kind, resources in files["eventflow_override.tf.json"]["resource"].items():
        for name in resources:
            assert (kind, name) in defined, f"override of undefined {kind}.{name}"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_override_lifts_chalices_pins(terraform_dirs, stage):
    files = load(terraform_dirs[stage])
    assert files["chalice.tf.json"]["terraform"]["required_version"].endswith("< 1.4.0")
    pins = files["eventflow_override.tf.json"]["terraform"]
    assert pins["required_version"] == terraform_functions.REQUIRED_VERSION
    assert pins["required_providers"]["aws"]["version"].startswith(">= 5")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_mapping_reports_batch_item_failures(terraform_dirs, stage):
    files = load(terraform_dirs[stage])
    chalice_mappings = files["chalice.tf.json"]["resource"]["aws_lambda_event_source_mapping"]
    overrides = files["eventflow_override.tf.json"]["resource"]["aws_lambda_event_source_mapping"]
    assert set(overrides) == set(chalice_mappings)
    stack = stack_for(stage)
    queue_keys = {q.key for q in stack.queues}
    for source in stack.event_sources:
        if source.source_key in queue_keys:
            body = overrides[f"{source.function}-sqs-event-source"]
            queue = terraform_names.queue_name(stack.queue(source.source_key))
            assert body["event_source_arn"] == f"${{aws_sqs_queue.{queue}.arn}}"
        else:
            body = overrides[f"{source.function}-dynamodb-event-source"]
            table = terraform_names.name(stack.table(source.source_key).key)
            assert body["event_source_arn"] == f"${{aws_dynamodb_table.{table}.stream_arn}}"
            assert body["bisect_batch_on_function_error"] is True
            assert body["maximum_retry_attempts"] == source.maximum_retry_attempts
            target = terraform_names.name(source.on_failure_queue_key)
            assert body["destination_config"] == [
                {"on_failure": [{"destination_arn": f"${{aws_sqs_queue.{target}.arn}}"}]}
            ]
        assert body["function_response_types"] == ["ReportBatchItemFailures"]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_role_gets_its_least_privilege_policy(terraform_dirs, stage):
    files = load(terraform_dirs[stage])
    policies = files["eventflow_override.tf.json"]["resource"]["aws_iam_role_policy"]
    assert set(policies) == set(files["chalice.tf.json"]["resource"]["aws_iam_role_policy"])
    for name, body in policies.items():
        document = json.loads(body["policy"])
        actions = [a for s in document["Statement"] for a in s["Action"]]
        assert actions and not [a for a in actions if "*" in a], name
        assert "${AWS::" not in body["policy"], "CloudFormation placeholders leaked"


def test_resources_carry_the_secure_defaults(terraform_dirs):
    resources = load(terraform_dirs["prod"])["eventflow_resources.tf.json"]["resource"]
    assert all(q["sqs_managed_sse_enabled"] for q in resources["aws_sqs_queue"].values())
    for table in resources["aws_dynamodb_table"].values():
        assert table["server_side_encryption"] == [{"enabled": True}]
        assert table["point_in_time_recovery"] == [{"enabled": True}]
    policy = json.loads(resources["aws_s3_bucket_policy"]["uploads"]["policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert resources["aws_s3_bucket_public_access_block"]["uploads"]["block_public_policy"]
    stack = stack_for("prod")
    assert len(resources["aws_cloudwatch_metric_alarm"]) == len(stack.alarms)
