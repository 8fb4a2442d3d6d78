"""The ``chalice package --merge-template`` file, rendered from the declaration.

Chalice generates the functions, their roles, their event sources and the API;
this template is deep-merged into that output and adds:

* every declared resource (queues with DLQs, tables, the bucket and its TLS-only
  policy, the alerts topic, alarms, the dashboard), each rendered by exactly one
  function in :data:`RENDERERS`: a resource type without one raises
  :class:`UnrenderableResource` instead of being left out silently;
* each role's policy, replaced by the least-privilege one from :mod:`infra.iam`
  (lists are replaced whole by the merge, which is what we want here);
* the event-source settings Chalice cannot express: ``FunctionResponseTypes``,
  ``FilterCriteria`` and, on streams, bisect, retry bounds and the on-failure
  destination;
* for a function invoked asynchronously, an ``AWS::Lambda::EventInvokeConfig``
  (retries and the on-failure queue). Only stages whose ingest trigger is
  ``s3`` declare one, and ``chalice package`` cannot render those stages as
  CloudFormation (it refuses ``on_s3_event``); the resource is rendered
  anyway, so the merge template stays complete, and a test lints it inside
  a packaged template. The queue or stream is overridden with an ``Fn::Sub`` of the
  declared resource, the same intrinsic key Chalice uses, because merging an
  ``Fn::GetAtt`` onto Chalice's ``Fn::Sub`` would leave two intrinsic keys in
  one dict (cfn-lint E3017), and so that the mapping depends on the resource.

Stateful resources (tables, the bucket) are retained when the stack is deleted
or a change would replace them: losing data must take a deliberate step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice.utils import to_cfn_resource_name

from infra import arns, iam, keys
from infra.functions import AsyncInvokeSettings, EventSourceSettings
from infra.resources import (
    Alarm,
    Bucket,
    Dashboard,
    EmailIdentity,
    FailureQueue,
    Key,
    LogGroup,
    Queue,
    Stack,
    Subscription,
    Table,
    Topic,
)
from infra.shapes import (
    attribute_definitions,
    expiry_rule_id,
    global_secondary_indexes,
    key_schema,
    s3_send_policy,
    sns_send_policy,
    tls_only_policy,
)

Template = dict[str, Any]
RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


class UnrenderableResource(TypeError):
    """The declaration holds a resource type that no renderer knows."""


def camel(key: str) -> str:
    return to_cfn_resource_name(key.replace("/", "-"))


# -- logical ids: the contract with Chalice's generated names ----------------


def function_id(function: str) -> str:
    # Chalice special-cases the API handler's logical id.
    return "APIHandler" if function == "api_handler" else to_cfn_resource_name(function)


def role_id(function: str) -> str:
    return to_cfn_resource_name(f"{function}_role")


def event_id(function: str, kind: str) -> str:
    return to_cfn_resource_name(f"{function}-{kind}-event-source")


def queue_id(queue: Queue) -> str:
    return f"{camel(queue.key)}Queue"


def failure_queue_id(queue: FailureQueue) -> str:
    return f"{camel(queue.key)}Queue"


def event_invoke_config_id(function: str) -> str:
    return f"{function_id(function)}EventInvokeConfig"


def dlq_id(queue: Queue) -> str:
    return f"{camel(queue.key)}Dlq"


def table_id(table: Table) -> str:
    return f"{camel(table.key)}Table"


def bucket_id(bucket: Bucket) -> str:
    return f"{camel(bucket.key)}Bucket"


def topic_id(topic: Topic) -> str:
    return f"{camel(topic.key)}Topic"


def alarm_id(alarm: Alarm) -> str:
    return f"{camel(alarm.key)}Alarm"


def dashboard_id(dashboard: Dashboard) -> str:
    return f"{camel(dashboard.key)}Dashboard"


def key_id(key: Key) -> str:
    return f"{camel(key.key)}Key"


def log_group_id(group: LogGroup) -> str:
    return f"{camel(group.key)}Group"


def sub(template: str) -> dict[str, str]:
    return {"Fn::Sub": template}


def _key(key: Key, stack: Stack) -> Template:
    policy = keys.key_policy(stack, key, lambda f: {"Fn::GetAtt": [role_id(f), "Arn"]})
    return {
        key_id(key): {
            "Type": "AWS::KMS::Key",
            **RETAIN,
            "Properties": {
                "Description": key.description,
                "EnableKeyRotation": True,
                "KeyPolicy": iam.map_strings(policy, sub),
            },
        },
        f"{key_id(key)}Alias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": key.alias, "TargetKeyId": {"Ref": key_id(key)}},
        },
    }


def _log_group(group: LogGroup, stack: Stack) -> Template:
    properties: dict[str, Any] = {
        "LogGroupName": group.name,
        "RetentionInDays": group.retention_days,
    }
    if group.kms_key:
        properties["KmsKeyId"] = {"Fn::GetAtt": [key_id(stack.kms_key(group.kms_key)), "Arn"]}
    return {log_group_id(group): {"Type": "AWS::Logs::LogGroup", "Properties": properties}}


# -- resources -----------------------------------------------------------------


def _queue(queue: Queue, stack: Stack) -> Template:
    fifo = {"FifoQueue": True} if queue.fifo else {}
    dlq = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": queue.dlq_name,
            "MessageRetentionPeriod": queue.dlq_retention_seconds,
            "SqsManagedSseEnabled": True,
            **fifo,
        },
    }
    source = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": queue.name,
            "VisibilityTimeout": queue.visibility_timeout,
            "MessageRetentionPeriod": queue.retention_seconds,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id(queue), "Arn"]},
                "maxReceiveCount": queue.max_receive_count,
            },
            **fifo,
        },
    }
    return {dlq_id(queue): dlq, queue_id(queue): source}


def _failure_queue(queue: FailureQueue, stack: Stack) -> Template:
    return {
        failure_queue_id(queue): {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queue.name,
                "MessageRetentionPeriod": queue.retention_seconds,
                "SqsManagedSseEnabled": True,
            },
        }
    }


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


def _table(table: Table, stack: Stack) -> Template:
    properties: dict[str, Any] = {
        "TableName": table.name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": attribute_definitions(table),
        "KeySchema": key_schema(table.partition_key, table.sort_key),
        "SSESpecification": {"SSEEnabled": True},
        "PointInTimeRecoverySpecification": {
            "PointInTimeRecoveryEnabled": table.point_in_time_recovery
        },
    }
    if table.indexes:
        properties["GlobalSecondaryIndexes"] = global_secondary_indexes(table)
    if table.ttl_attribute:
        properties["TimeToLiveSpecification"] = {
            "AttributeName": table.ttl_attribute,
            "Enabled": True,
        }
    if table.stream_view_type:
        properties["StreamSpecification"] = {"StreamViewType": table.stream_view_type}
    return {table_id(table): {"Type": "AWS::DynamoDB::Table", **RETAIN, "Properties": properties}}


def _bucket(bucket: Bucket, stack: Stack) -> Template:
    resources: Template = {}
    properties: dict[str, Any] = {
        "BucketName": bucket.name,
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]
        },
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "LifecycleConfiguration": {
            "Rules": [
                {
                    "Id": "expire-noncurrent-and-abort-incomplete",
                    "Status": "Enabled",
                    "NoncurrentVersionExpiration": {
                        "NoncurrentDays": bucket.noncurrent_version_days
                    },
                    "AbortIncompleteMultipartUpload": {
                        "DaysAfterInitiation": bucket.abort_incomplete_upload_days
                    },
                },
                *(
                    {
                        "Id": expiry_rule_id(prefix),
                        "Status": "Enabled",
                        "Prefix": prefix,
                        "ExpirationInDays": days,
                    }
                    for prefix, days in bucket.current_version_days
                ),
            ]
        },
    }
    if bucket.versioned:
        properties["VersioningConfiguration"] = {"Status": "Enabled"}
    depends_on: list[str] = []
    if bucket.queue_notifications:
        configurations = []
        for notification in bucket.queue_notifications:
            queue = stack.queue(notification.queue_key)
            # S3 checks that it may send when the notification is saved, so the
            # queue policy must exist before the bucket's configuration does.
            policy_id = f"{queue_id(queue)}Policy"
            resources[policy_id] = _s3_queue_policy(queue, bucket)
            depends_on.append(policy_id)
            for event in notification.events:
                configurations.append(
                    {
                        "Event": event,
                        "Queue": {"Fn::GetAtt": [queue_id(queue), "Arn"]},
                        "Filter": {
                            "S3Key": {
                                "Rules": [
                                    {"Name": "prefix", "Value": notification.prefix},
                                    {"Name": "suffix", "Value": notification.suffix},
                                ]
                            }
                        },
                    }
                )
        properties["NotificationConfiguration"] = {"QueueConfigurations": configurations}
    resources[bucket_id(bucket)] = {
        "Type": "AWS::S3::Bucket",
        **RETAIN,
        **({"DependsOn": depends_on} if depends_on else {}),
        "Properties": properties,
    }
    if bucket.tls_only:
        resources[f"{bucket_id(bucket)}Policy"] = {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": bucket_id(bucket)},
                "PolicyDocument": tls_only_policy(
                    sub(arns.bucket(bucket.name)), sub(arns.objects(bucket.name, ""))
                ),
            },
        }
    return resources


def _s3_queue_policy(queue: Queue, bucket: Bucket) -> Template:
    return {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": queue_id(queue)}],
            "PolicyDocument": s3_send_policy(
                {"Fn::GetAtt": [queue_id(queue), "Arn"]},
                sub(arns.bucket(bucket.name)),
                {"Ref": "AWS::AccountId"},
            ),
        },
    }


def _topic(topic: Topic, stack: Stack) -> Template:
    properties: dict[str, Any] = {"TopicName": topic.name}
    if topic.fifo:
        properties["FifoTopic"] = True
    if topic.kms_key:
        properties["KmsMasterKeyId"] = {"Ref": key_id(stack.kms_key(topic.kms_key))}
    return {topic_id(topic): {"Type": "AWS::SNS::Topic", "Properties": properties}}


def subscription_id(subscription: Subscription) -> str:
    return f"{camel(subscription.key)}Subscription"


def _subscription(subscription: Subscription, stack: Stack) -> Template:
    queue = stack.queue(subscription.queue_key)
    topic = stack.topic(subscription.topic_key)
    properties: dict[str, Any] = {
        "TopicArn": {"Ref": topic_id(topic)},
        "Protocol": "sqs",
        "Endpoint": {"Fn::GetAtt": [queue_id(queue), "Arn"]},
        "RawMessageDelivery": True,
    }
    if subscription.filter_policy:
        properties["FilterPolicy"] = subscription.filter_policy
    rendered: Template = {
        subscription_id(subscription): {"Type": "AWS::SNS::Subscription", "Properties": properties}
    }
    siblings = [s for s in stack.subscriptions if s.queue_key == queue.key]
    if siblings[0] is not subscription:
        return rendered  # The queue's first subscription renders its one policy.
    topics = [{"Ref": topic_id(stack.topic(s.topic_key))} for s in siblings]
    rendered[f"{queue_id(queue)}Policy"] = {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": queue_id(queue)}],
            "PolicyDocument": sns_send_policy({"Fn::GetAtt": [queue_id(queue), "Arn"]}, topics),
        },
    }
    return rendered


def email_identity_id(identity: EmailIdentity) -> str:
    return f"{camel(identity.key)}EmailIdentity"


def _email_identity(identity: EmailIdentity, stack: Stack) -> Template:
    return {
        email_identity_id(identity): {
            "Type": "AWS::SES::EmailIdentity",
            "Properties": {"EmailIdentity": identity.email},
        }
    }


def _alarm(alarm: Alarm, stack: Stack) -> Template:
    topic = {"Ref": topic_id(stack.topic(alarm.topic_key))}
    return {
        alarm_id(alarm): {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": alarm.name,
                "AlarmDescription": alarm.description,
                "Namespace": alarm.namespace,
                "MetricName": alarm.metric_name,
                "Dimensions": [{"Name": n, "Value": v} for n, v in alarm.dimensions],
                "Statistic": alarm.statistic,
                "Period": alarm.period,
                "EvaluationPeriods": alarm.evaluation_periods,
                "Threshold": alarm.threshold,
                "ComparisonOperator": alarm.comparison,
                "TreatMissingData": alarm.treat_missing_data,
                "AlarmActions": [topic],
                "OKActions": [topic],
            },
        }
    }


def _dashboard(dashboard: Dashboard, stack: Stack) -> Template:
    return {
        dashboard_id(dashboard): {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": dashboard.name,
                "DashboardBody": sub(dashboard.body(arns.REGION)),
            },
        }
    }


RENDERERS: dict[type, Callable[[Any, Stack], Template]] = {
    Key: _key,
    LogGroup: _log_group,
    Queue: _queue,
    FailureQueue: _failure_queue,
    Table: _table,
    Bucket: _bucket,
    Topic: _topic,
    Subscription: _subscription,
    EmailIdentity: _email_identity,
    Alarm: _alarm,
    Dashboard: _dashboard,
}


def render_resource(resource: object, stack: Stack) -> Template:
    renderer = RENDERERS.get(type(resource))
    if renderer is None:
        raise UnrenderableResource(
            f"no CloudFormation renderer for {type(resource).__name__}; add one to "
            "infra.cloudformation.RENDERERS"
        )
    return renderer(resource, stack)


# -- functions: roles, mappings, environment ----------------------------------


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


def _function_patches(stack: Stack) -> Template:
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


def _outputs(stack: Stack) -> Template:
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


def merge_template(stack: Stack) -> Template:
    """The whole merge template for one stage."""
    resources: Template = {}
    for resource in stack.resources:
        rendered = render_resource(resource, stack)
        clash = set(rendered) & set(resources)
        if clash:
            raise ValueError(f"logical ids declared twice: {sorted(clash)}")
        resources.update(rendered)
    resources.update(_function_patches(stack))
    return {"Resources": resources, "Outputs": _outputs(stack)}


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


def dumps(template: Template) -> str:
    return json.dumps(template, indent=2, sort_keys=True) + "\n"
