"""``chalice package`` + the derived merge template: valid, complete CloudFormation."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest

from infra import cloudformation, cloudformation_functions, cloudformation_ids
from infra.package import PackageError, package
from infra.stageconfig import StageConfig
from tests.infra.conftest import stack_for

INTRINSICS = {"Ref", "Condition"} | {
    f"Fn::{name}"
    for name in [
        "Base64",
        "Cidr",
        "FindInMap",
        "GetAtt",
        "GetAZs",
        "ImportValue",
        "Join",
        "Select",
        "Split",
        "Sub",
        "Transform",
        "If",
        "And",
        "Equals",
        "Not",
        "Or",
        "Length",
        "ToJsonString",
    ]
}


def walk(node: Any, path: str = ""):
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def test_cfn_lint_reports_no_errors(prod_cfn_dir):
    # `python -m cfnlint` does not run (cfnlint has no __main__), and its empty
    # output read as "no findings"; the API cannot fail that way.
    from cfnlint.api import lint_file

    findings = [
        {"Level": m.rule.severity.capitalize(), "Rule": m.rule.id, "Message": m.message}
        for m in lint_file(prod_cfn_dir / "sam.json")
    ]
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=2)
    # Warnings are not errors, but none are expected either: keep it that way.
    assert findings == [], json.dumps(findings, indent=2)


def test_every_mapping_reports_batch_item_failures(prod_plain_cfn):
    stack = stack_for("prod")
    mappings = {
        logical_id: resource["Properties"]
        for logical_id, resource in prod_plain_cfn["Resources"].items()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    assert len(mappings) == len(stack.event_sources)
    by_function = {props["FunctionName"]["Ref"]: props for props in mappings.values()}
    for source in stack.event_sources:
        props = by_function[cloudformation_ids.function_id(source.function)]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        # The mapping reads the declared queue or stream, by reference, not a copied name.
        if source.source_key in {q.key for q in stack.queues}:
            source_id = cloudformation_ids.queue_id(stack.queue(source.source_key))
            assert props["EventSourceArn"] == {"Fn::Sub": f"${{{source_id}.Arn}}"}
        else:
            table_id = cloudformation_ids.table_id(stack.table(source.source_key))
            assert props["EventSourceArn"] == {"Fn::Sub": f"${{{table_id}.StreamArn}}"}
            # A poison record is isolated, retried a bounded number of times, then
            # described on the on-failure queue.
            assert props["BisectBatchOnFunctionError"] is True
            assert props["MaximumRetryAttempts"] == source.maximum_retry_attempts
            assert props["MaximumRecordAgeInSeconds"] == source.maximum_record_age_seconds
            target = cloudformation_ids.failure_queue_id(
                stack.failure_queue(source.on_failure_queue_key)
            )
            assert props["DestinationConfig"] == {
                "OnFailure": {"Destination": {"Fn::Sub": f"${{{target}.Arn}}"}}
            }
        if source.filter_patterns:
            assert props["FilterCriteria"] == {
                "Filters": [{"Pattern": p} for p in source.filter_patterns]
            }


def test_no_resource_has_two_intrinsic_keys(prod_sam, prod_plain_cfn):
    for template in (prod_sam, prod_plain_cfn):
        for path, node in walk(template):
            if isinstance(node, dict):
                assert len(INTRINSICS & set(node)) <= 1, f"{path}: {sorted(node)}"


def test_declared_resources_are_all_in_the_template(prod_sam):
    stack = stack_for("prod")
    types = {k: v["Type"] for k, v in prod_sam["Resources"].items()}
    for queue in stack.queues:
        assert types[cloudformation_ids.queue_id(queue)] == "AWS::SQS::Queue"
        assert types[cloudformation_ids.dlq_id(queue)] == "AWS::SQS::Queue"
    for table in stack.tables:
        assert types[cloudformation_ids.table_id(table)] == "AWS::DynamoDB::Table"
    for alarm in stack.alarms:
        assert types[cloudformation_ids.alarm_id(alarm)] == "AWS::CloudWatch::Alarm"
    assert "AWS::CloudWatch::Dashboard" in types.values()
    assert "AWS::S3::BucketPolicy" in types.values()
    assert "AWS::SQS::QueuePolicy" in types.values()
    # autogen_policy is off: one role per function, no shared default role.
    assert "DefaultRole" not in types
    for function in stack.functions:
        assert types[cloudformation_ids.role_id(function.name)] == "AWS::IAM::Role"


def test_stream_mappings_render_their_retry_settings():
    """Any stream mapping, not only the orders one, renders every retry setting."""
    from infra.functions import EventSourceSettings

    stack = stack_for("prod")
    table = replace(stack.table("readings"), stream_view_type="NEW_IMAGE")
    stack = replace(stack, tables=(table, stack.table("ingests")))
    source = EventSourceSettings(
        function="on_reading",
        source_key="readings",
        filter_patterns=('{"eventName": ["INSERT"]}',),
        bisect_batch_on_error=True,
        maximum_retry_attempts=3,
        maximum_record_age_seconds=3600,
        on_failure_queue_key="order-events-failed",
    )
    name, props = cloudformation_functions.event_properties(stack, source)
    assert name == "OnReadingDynamodbEventSource"
    assert props == {
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "FilterCriteria": {"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]},
        "Stream": {"Fn::Sub": "${ReadingsTable.StreamArn}"},
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": 3,
        "MaximumRecordAgeInSeconds": 3600,
        "DestinationConfig": {
            "OnFailure": {
                "Type": "SQS",
                "Destination": {"Fn::Sub": "${OrderEventsFailedQueue.Arn}"},
            }
        },
    }


def test_an_unknown_resource_type_raises():
    @dataclass(frozen=True)
    class Mystery:
        key: str = "mystery"

    with pytest.raises(cloudformation.UnrenderableResource, match="Mystery"):
        cloudformation.render_resource(Mystery(), stack_for("prod"))


def test_the_s3_trigger_stage_refuses_cloudformation(tmp_path):
    config = StageConfig.load("dev")
    with pytest.raises(PackageError, match="on_s3_event"):
        package(config, stack_for("dev"), tmp_path, tmp_path / "out", "cloudformation")
