"""Concurrency, throttling, tracing, retention and encryption, as packaged.

Each setting is declared once (``chalicelib.concurrency``, ``infra.limits``,
``.chalice/config.json``, ``infra.stack``); these tests read it back
from the packaged CloudFormation (``chalice package`` plus the merge) and
the Terraform files, so a renderer that drops one fails here.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.concurrency import MAXIMUM_CONCURRENCY
from infra import cloudformation, cloudformation_ids, limits
from tests.infra.conftest import stack_for


def functions(template: dict) -> dict[str, dict]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_every_sqs_mapping_is_bounded_and_reserved_concurrency_covers_it(prod_sam):
    stack = stack_for("prod")
    rendered = functions(prod_sam)
    sqs_sources = [s for s in stack.event_sources if s.source_key in {q.key for q in stack.queues}]
    assert {s.function for s in sqs_sources} <= set(MAXIMUM_CONCURRENCY)
    for source in sqs_sources:
        function = rendered[cloudformation_ids.function_id(source.function)]["Properties"]
        event = function["Events"][cloudformation_ids.event_id(source.function, "sqs")]
        bound = event["Properties"]["ScalingConfig"]["MaximumConcurrency"]
        assert bound == source.maximum_concurrency == MAXIMUM_CONCURRENCY[source.function]
        assert 2 <= bound <= 1000  # what AWS accepts
        # Reserved below the mapping's bound would throttle the poller, and
        # throttled messages count as receives on their way to the DLQ.
        assert function["ReservedConcurrentExecutions"] >= bound, source.function
    for declared in stack.functions:
        properties = rendered[cloudformation_ids.function_id(declared.name)]["Properties"]
        assert properties["ReservedConcurrentExecutions"] == declared.reserved_concurrency
        assert properties["Tracing"] == "Active", declared.name
        # Its log group exists first: the role may not create one.
        group = next(g for g in stack.log_groups if g.name == declared.log_group)
        resource = prod_sam["Resources"][cloudformation_ids.function_id(declared.name)]
        assert cloudformation_ids.log_group_id(group) in resource["DependsOn"]


def test_the_api_stage_is_throttled_traced_and_access_logged(prod_sam):
    stack = stack_for("prod")
    api = prod_sam["Resources"]["RestAPI"]["Properties"]
    wanted = limits.for_stage("prod")
    assert api["MethodSettings"] == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": wanted.api_rate_limit,
            "ThrottlingBurstLimit": wanted.api_burst_limit,
        }
    ]
    assert api["TracingEnabled"] is True
    group = stack.log_group(stack.api.access_log_group)
    assert api["AccessLogSetting"]["DestinationArn"] == {
        "Fn::GetAtt": [cloudformation_ids.log_group_id(group), "Arn"]
    }
    fields = json.loads(api["AccessLogSetting"]["Format"])
    assert fields["route"] == "$context.resourcePath"  # the template, not the path
    assert fields["userArn"] == "$context.identity.userArn"


def test_log_groups_are_declared_with_the_stage_retention_and_no_role_creates_one(prod_sam):
    stack = stack_for("prod")
    groups = {
        r["Properties"]["LogGroupName"]: r["Properties"]
        for r in prod_sam["Resources"].values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    expected = {f.log_group for f in stack.functions} | {
        stack.log_group(stack.api.access_log_group).name
    }
    assert set(groups) == expected
    assert {g["RetentionInDays"] for g in groups.values()} == {
        limits.for_stage("prod").log_retention_days
    }
    assert all("KmsKeyId" in g for g in groups.values())
    for resource in prod_sam["Resources"].values():
        if resource["Type"] == "AWS::IAM::Role":
            text = json.dumps(resource["Properties"].get("Policies", []))
            assert "logs:CreateLogGroup" not in text


def test_the_topics_are_encrypted_with_the_declared_key(prod_sam):
    stack = stack_for("prod")
    resources = prod_sam["Resources"]
    key = stack.kms_key("data")
    key_id = cloudformation_ids.key_id(key)
    assert resources[key_id]["Properties"]["EnableKeyRotation"] is True
    for topic in stack.topics:
        properties = resources[cloudformation_ids.topic_id(topic)]["Properties"]
        assert properties["KmsMasterKeyId"] == {"Ref": key_id}
    statements = {s["Sid"]: s for s in resources[key_id]["Properties"]["KeyPolicy"]["Statement"]}
    publishers = statements["PublishersUseKeyThroughSns"]
    assert publishers["Condition"]["ArnEquals"]["aws:PrincipalArn"] == [
        {"Fn::GetAtt": [cloudformation_ids.role_id("publish_order_events"), "Arn"]}
    ]
    assert sorted(publishers["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statements["SnsUsesKeyForThisAccount"]["Principal"] == {"Service": "sns.amazonaws.com"}
    # Administrators manage the key; nobody but the services and the
    # publisher may encrypt or decrypt with it.
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:*"} & set(
        statements["AdministerNotUse"]["Action"]
    )


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_uploads_and_rejects_expire_after_the_stage_retention(stage):
    stack = stack_for(stage)
    bucket = stack.bucket("uploads")
    days = limits.for_stage(stage).upload_retention_days
    assert dict(bucket.current_version_days) == {"incoming/": days, "rejects/": days}
    rules = cloudformation.merge_template(stack)["Resources"][cloudformation_ids.bucket_id(bucket)][
        "Properties"
    ]["LifecycleConfiguration"]["Rules"]
    expiring = {r["Prefix"]: r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r}
    assert expiring == {"incoming/": days, "rejects/": days}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_terraform_renders_the_same_limits(terraform_dirs, stage):
    stack = stack_for(stage)
    directory = terraform_dirs[stage]
    resources = json.loads((directory / "eventflow_resources.tf.json").read_text())["resource"]
    override = json.loads((directory / "eventflow_override.tf.json").read_text())["resource"]
    chalice = json.loads((directory / "chalice.tf.json").read_text())["resource"]
    for source in stack.event_sources:
        if source.maximum_concurrency is None:
            continue
        name = f"{source.function}-sqs-event-source"
        assert override["aws_lambda_event_source_mapping"][name]["scaling_config"] == [
            {"maximum_concurrency": source.maximum_concurrency}
        ]
    for function in stack.functions:
        block = chalice["aws_lambda_function"][function.name]
        assert block.get("reserved_concurrent_executions") == function.reserved_concurrency
        assert block["tracing_config"] == {"mode": "Active"}
        assert block["architectures"] == ["arm64"]
    groups = {g["name"]: g for g in resources["aws_cloudwatch_log_group"].values()}
    assert {n: g["retention_in_days"] for n, g in groups.items()} == {
        g.name: g.retention_days for g in stack.log_groups
    }
    settings = resources["aws_api_gateway_method_settings"]["rest_api"]["settings"][0]
    assert settings["throttling_rate_limit"] == stack.api.rate_limit
    assert settings["throttling_burst_limit"] == stack.api.burst_limit
    stage_block = resources["aws_api_gateway_stage"]["rest_api"]
    assert stage_block["access_log_settings"][0]["format"] == stack.api.ACCESS_LOG_FORMAT
    deployment = override["aws_api_gateway_deployment"]["rest_api"]
    assert deployment["stage_name"] is None and deployment["stage_description"] is None
    assert "chalice_api_swagger" in deployment["triggers"]["redeployment"]
    for topic in resources["aws_sns_topic"].values():
        assert topic["kms_master_key_id"] == "${aws_kms_key.data.arn}"
    assert resources["aws_kms_key"]["data"]["enable_key_rotation"] is True
