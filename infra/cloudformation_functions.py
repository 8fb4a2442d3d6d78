"""What the merge template adds to Chalice's own resources, and the stack's outputs.

Chalice generates each function, its role, its event sources and the REST
API; these patches are deep-merged into them: the least-privilege policy
that replaces each role's, the event-source settings Chalice cannot express
(``FunctionResponseTypes``, ``FilterCriteria``, ``ScalingConfig`` and, on
streams, bisect, retry bounds and the on-failure destination), the
dependency of each function on its declared log group, the API stage's
tracing, throttling and access log, and, for a function invoked
asynchronously, an ``AWS::Lambda::EventInvokeConfig`` (retries and the
on-failure queue).

Lists are replaced whole by the merge, which is what replacing a role's
policy needs. A mapping's queue or stream is overridden with an ``Fn::Sub``
of the declared resource, the same intrinsic key Chalice uses, because
merging an ``Fn::GetAtt`` onto Chalice's ``Fn::Sub`` would leave two
intrinsic keys in one dict (cfn-lint E3017), and so that the mapping depends
on the resource. Only stages whose ingest trigger is ``s3`` declare an
asynchronous invocation, and ``chalice package`` cannot render those stages
as CloudFormation (it refuses ``on_s3_event``); its config is rendered
anyway, so the merge template stays complete, and a test lints it inside a
packaged template.
"""

from __future__ import annotations

from typing import Any

from infra import iam
from infra.cloudformation_ids import (
    bucket_id,
    dlq_id,
    event_id,
    event_invoke_config_id,
    failure_queue_id,
    function_id,
    log_group_id,
    queue_id,
    role_id,
    sub,
    table_id,
    topic_id,
)
from infra.functions import AsyncInvokeSettings, EventSourceSettings
from infra.resources import Stack

Template = dict[str, Any]


def event_invoke_config(stack: Stack, settings: AsyncInvokeSettings) -> Template:
    """Retries and the on-failure queue of one asynchronously invoked function."""
    target = stack.failure_queue(settings.on_failure_queue_key)
    properties: dict[str, Any] = {
        "FunctionName": {"Ref": function_id(settings.function)},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": settings.maximum_retry_attempts,
        "DestinationConfig": {
            "OnFailure": {"Destination": {"Fn::GetAtt": [failure_queue_id(target), "Arn"]}}
        },
    }
    if settings.maximum_event_age_seconds is not None:
        properties["MaximumEventAgeInSeconds"] = settings.maximum_event_age_seconds
    return {
        event_invoke_config_id(settings.function): {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": properties,
        }
    }


def event_properties(stack: Stack, source: EventSourceSettings) -> tuple[str, dict[str, Any]]:
    """Chalice's event name and the SAM event properties to merge into it."""
    properties: dict[str, Any] = {}
    if source.report_batch_item_failures:
        properties["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    if source.filter_patterns:
        properties["FilterCriteria"] = {
            "Filters": [{"Pattern": pattern} for pattern in source.filter_patterns]
        }
    if source.source_key in {queue.key for queue in stack.queues}:
        properties["Queue"] = sub(f"${{{queue_id(stack.queue(source.source_key))}.Arn}}")
        if source.maximum_concurrency:
            properties["ScalingConfig"] = {"MaximumConcurrency": source.maximum_concurrency}
        return event_id(source.function, "sqs"), properties
    table = stack.table(source.source_key)
    properties["Stream"] = sub(f"${{{table_id(table)}.StreamArn}}")
    properties.update(source.stream_retry_settings())
    if source.on_failure_queue_key:
        target = stack.failure_queue(source.on_failure_queue_key)
        properties["DestinationConfig"] = {
            "OnFailure": {
                "Type": "SQS",
                "Destination": sub(f"${{{failure_queue_id(target)}.Arn}}"),
            }
        }
    return event_id(source.function, "dynamodb"), properties


def api_stage_properties(stack: Stack) -> dict[str, Any]:
    """The REST API stage's tracing, throttling and access log (SAM ``AWS::Serverless::Api``)."""
    api = stack.api
    assert api is not None
    access = stack.log_group(api.access_log_group)
    return {
        # X-Ray on the REST API stage (sampled), so a slow request can be traced.
        "TracingEnabled": True,
        "MethodSettings": [
            {
                "ResourcePath": "/*",
                "HttpMethod": "*",
                "ThrottlingRateLimit": api.rate_limit,
                "ThrottlingBurstLimit": api.burst_limit,
            }
        ],
        "AccessLogSetting": {
            "DestinationArn": {"Fn::GetAtt": [log_group_id(access), "Arn"]},
            "Format": api.ACCESS_LOG_FORMAT,
        },
    }


def cfn_policy(document: dict[str, Any]) -> dict[str, Any]:
    """An :mod:`infra.iam` document with each ARN template (in resources and
    condition values) wrapped in ``Fn::Sub``."""
    return iam.map_strings(document, sub)


def function_patches(stack: Stack) -> Template:
    resources: Template = {}
    if stack.api is not None:
        resources["RestAPI"] = {"Properties": api_stage_properties(stack)}
    uploads = stack.buckets[0] if stack.buckets else None
    for function in stack.functions:
        properties: dict[str, Any] = {}
        if uploads is not None:
            # A Ref orders the function after the bucket; the value equals the
            # name the app would derive, so behaviour does not change.
            properties["Environment"] = {
                "Variables": {"EVENTFLOW_UPLOADS_BUCKET": {"Ref": bucket_id(uploads)}}
            }
        events = {}
        for source in stack.event_sources:
            if source.function == function.name:
                name, event = event_properties(stack, source)
                events[name] = {"Properties": event}
        if events:
            properties["Events"] = events
        # Its log group (declared, with its retention) exists before it can log.
        group = next(g for g in stack.log_groups if g.name == function.log_group)
        resources[function_id(function.name)] = {
            "DependsOn": [log_group_id(group)],
            "Properties": properties,
        }
        asynchronous = stack.async_invoke(function.name)
        if asynchronous is not None:
            resources.update(event_invoke_config(stack, asynchronous))
        resources[role_id(function.name)] = {
            "Properties": {
                "Policies": [
                    {
                        "PolicyName": f"{role_id(function.name)}Policy",
                        "PolicyDocument": cfn_policy(iam.policy(stack, function.name)),
                    }
                ]
            }
        }
    return resources


def outputs(stack: Stack) -> Template:
    outputs: Template = {}
    for queue in stack.queues:
        outputs[f"{queue_id(queue)}Url"] = {"Value": {"Ref": queue_id(queue)}}
        outputs[f"{dlq_id(queue)}Url"] = {"Value": {"Ref": dlq_id(queue)}}
    for failures in stack.failure_queues:
        outputs[f"{failure_queue_id(failures)}Url"] = {"Value": {"Ref": failure_queue_id(failures)}}
    for table in stack.tables:
        outputs[f"{table_id(table)}Name"] = {"Value": {"Ref": table_id(table)}}
    for bucket in stack.buckets:
        outputs[f"{bucket_id(bucket)}Name"] = {"Value": {"Ref": bucket_id(bucket)}}
    for topic in stack.topics:
        outputs[f"{topic_id(topic)}Arn"] = {"Value": {"Ref": topic_id(topic)}}
    return outputs


def check_merged(template: Template, stack: Stack) -> None:
    """Fail if a patch named a logical id that Chalice did not generate.

    A misnamed patch would merge into a new, typeless resource instead of
    Chalice's one; catching it here names the culprit.
    """
    for function in stack.functions:
        for logical_id in (function_id(function.name), role_id(function.name)):
            if "Type" not in template["Resources"].get(logical_id, {}):
                raise ValueError(
                    f"{logical_id} is not in Chalice's template: Chalice's naming changed?"
                )
