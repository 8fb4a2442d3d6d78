"""What eventflow adds around Chalice's functions and API, in Terraform.

``eventflow_override.tf.json`` (:func:`override`) is merged by Terraform into
Chalice's own blocks: the mapping settings Chalice cannot express, each
role's least-privilege policy, each function's dependency on its declared
log group, the API deployment without its stage, the bucket notification
ordered after our bucket, and Chalice's pins (Terraform ``< 1.4.0``, AWS
provider ``< 5``) lifted. Two resources that belong to Chalice's functions
and API go into ``eventflow_resources.tf.json`` instead: the
asynchronous-invocation settings of a function S3 invokes
(:func:`event_invoke_config`) and the API stage (:func:`api_stage`).
"""

from __future__ import annotations

import json
from typing import Any

from infra import iam
from infra.functions import AsyncInvokeSettings
from infra.resources import Stack
from infra.terraform_names import Blocks, add, interpolate, name, queue_name

# Lambda's mapping setting names, as the AWS provider spells them.
TERRAFORM_MAPPING_NAMES = {
    "BisectBatchOnFunctionError": "bisect_batch_on_function_error",
    "MaximumRetryAttempts": "maximum_retry_attempts",
    "MaximumRecordAgeInSeconds": "maximum_record_age_in_seconds",
}

REQUIRED_VERSION = ">= 1.3.0, < 2.0.0"
# Chalice's resources still use aws_api_gateway_deployment.stage_name, which
# provider 6 removed; 5.x is the newest line that accepts them.
PROVIDERS = {
    "aws": {"source": "hashicorp/aws", "version": ">= 5.0, < 6.0"},
    # Chalice reads app and stage names through null_data_source.
    "null": {"source": "hashicorp/null", "version": ">= 3.0, < 4.0"},
}


def event_invoke_config(stack: Stack, settings: AsyncInvokeSettings, blocks: Blocks) -> None:
    target = stack.failure_queue(settings.on_failure_queue_key)
    body: dict[str, Any] = {
        # Chalice names its aws_lambda_function blocks after the functions.
        "function_name": f"${{aws_lambda_function.{settings.function}.function_name}}",
        "maximum_retry_attempts": settings.maximum_retry_attempts,
        "destination_config": [
            {"on_failure": [{"destination": f"${{aws_sqs_queue.{name(target.key)}.arn}}"}]}
        ],
    }
    if settings.maximum_event_age_seconds is not None:
        body["maximum_event_age_in_seconds"] = settings.maximum_event_age_seconds
    add(blocks, "aws_lambda_function_event_invoke_config", settings.function, body)


def _policy_json(stack: Stack, function: str) -> str:
    return interpolate(json.dumps(iam.policy(stack, function)))


def api_stage(stack: Stack, blocks: Blocks) -> None:
    """The REST API's stage, as its own resource, with throttling and access logs.

    Chalice creates the stage through ``aws_api_gateway_deployment.stage_name``,
    which can set neither; the override drops that argument (so the deployment
    is a plain snapshot) and this stage serves it under the same name.
    """
    api = stack.api
    assert api is not None
    access = stack.log_group(api.access_log_group)
    add(
        blocks,
        "aws_api_gateway_stage",
        "rest_api",
        {
            "stage_name": api.stage_name,
            "rest_api_id": "${aws_api_gateway_rest_api.rest_api.id}",
            "deployment_id": "${aws_api_gateway_deployment.rest_api.id}",
            "xray_tracing_enabled": True,
            "access_log_settings": [
                {
                    "destination_arn": f"${{aws_cloudwatch_log_group.{name(access.key)}.arn}}",
                    "format": api.ACCESS_LOG_FORMAT,
                }
            ],
        },
    )
    add(
        blocks,
        "aws_api_gateway_method_settings",
        "rest_api",
        {
            "rest_api_id": "${aws_api_gateway_rest_api.rest_api.id}",
            "stage_name": "${aws_api_gateway_stage.rest_api.stage_name}",
            "method_path": "*/*",
            "settings": [
                {
                    "throttling_rate_limit": api.rate_limit,
                    "throttling_burst_limit": api.burst_limit,
                }
            ],
        },
    )


def api_stage_override(stack: Stack) -> Blocks:
    # null unsets an argument: the stage above owns the name. Chalice forces a
    # new deployment when the API changes through stage_description, which
    # only applies with stage_name; triggers do the same without it.
    return {
        "aws_api_gateway_deployment": {
            "rest_api": {
                "stage_name": None,
                "stage_description": None,
                "triggers": {"redeployment": "${md5(local.chalice_api_swagger)}"},
            }
        }
    }


def override(stack: Stack) -> dict[str, Any]:
    """``eventflow_override.tf.json``: patches to Chalice's own blocks."""
    mappings: dict[str, Any] = {}
    queue_keys = {queue.key for queue in stack.queues}
    for source in stack.event_sources:
        body: dict[str, Any] = {}
        if source.report_batch_item_failures:
            body["function_response_types"] = ["ReportBatchItemFailures"]
        if source.filter_patterns:
            body["filter_criteria"] = [
                {"filter": [{"pattern": pattern} for pattern in source.filter_patterns]}
            ]
        if source.source_key in queue_keys:
            queue = stack.queue(source.source_key)
            # A reference, not Chalice's literal ARN, so the queue exists first.
            body["event_source_arn"] = f"${{aws_sqs_queue.{queue_name(queue)}.arn}}"
            if source.maximum_concurrency:
                body["scaling_config"] = [{"maximum_concurrency": source.maximum_concurrency}]
            mappings[f"{source.function}-sqs-event-source"] = body
            continue
        table = stack.table(source.source_key)
        body["event_source_arn"] = f"${{aws_dynamodb_table.{name(table.key)}.stream_arn}}"
        for setting, value in source.stream_retry_settings().items():
            body[TERRAFORM_MAPPING_NAMES[setting]] = value
        if source.on_failure_queue_key:
            target = stack.failure_queue(source.on_failure_queue_key)
            body["destination_config"] = [
                {"on_failure": [{"destination_arn": f"${{aws_sqs_queue.{name(target.key)}.arn}}"}]}
            ]
        mappings[f"{source.function}-dynamodb-event-source"] = body

    blocks: Blocks = {
        "aws_iam_role_policy": {
            f"{f.name}_role": {"policy": _policy_json(stack, f.name)} for f in stack.functions
        },
    }
    if mappings:
        blocks["aws_lambda_event_source_mapping"] = mappings
    # Each function waits for its log group (declared, with its retention).
    groups = {group.name: name(group.key) for group in stack.log_groups}
    blocks["aws_lambda_function"] = {
        f.name: {"depends_on": [f"aws_cloudwatch_log_group.{groups[f.log_group]}"]}
        for f in stack.functions
    }
    if stack.api is not None:
        blocks.update(api_stage_override(stack))
    if stack.settings.ingest_trigger == "s3":
        # Chalice's on_s3_event notification names the bucket literally; a
        # reference makes Terraform create the bucket before configuring it.
        for bucket in stack.buckets:
            blocks.setdefault("aws_s3_bucket_notification", {})[f"{bucket.name}_notify"] = {
                "bucket": f"${{aws_s3_bucket.{name(bucket.key)}.id}}"
            }
    document: dict[str, Any] = {
        "terraform": {"required_version": REQUIRED_VERSION, "required_providers": PROVIDERS},
        "resource": blocks,
    }
    if stack.api is not None:
        # The URL of the stage, which no longer comes from the deployment.
        document["output"] = {
            "EndpointURL": {"value": "${aws_api_gateway_stage.rest_api.invoke_url}"}
        }
    return document
