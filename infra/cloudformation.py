"""The ``chalice package --merge-template`` file, rendered from the declared stack.

Chalice generates the functions, their roles, their event sources and the
API; this template is deep-merged into that output. It holds every declared
resource (keys, log groups, queues with their DLQs, tables, the bucket and
its policies, topics and subscriptions, the sender identity, alarms, the
dashboard), each rendered by exactly one function in :data:`RENDERERS`: a
resource type without one raises :class:`UnrenderableResource` instead of
being left out silently. What is merged into Chalice's own resources (each
role's policy, the mapping settings, the API stage) is
:mod:`infra.cloudformation_functions`; the logical ids both use are
:mod:`infra.cloudformation_ids`.

Stateful resources (tables, the bucket, the key) are retained when the stack
is deleted or a change would replace them: losing data must take a
deliberate step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from infra import arns, cloudformation_functions, iam, keys
from infra.cloudformation_ids import (
    alarm_id,
    bucket_id,
    dashboard_id,
    dlq_id,
    email_identity_id,
    failure_queue_id,
    key_id,
    log_group_id,
    queue_id,
    role_id,
    sub,
    subscription_id,
    table_id,
    topic_id,
)
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
    UnrenderableResource,
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


def merge_template(stack: Stack) -> Template:
    """The whole merge template for one stage."""
    resources: Template = {}
    for resource in stack.resources:
        rendered = render_resource(resource, stack)
        clash = set(rendered) & set(resources)
        if clash:
            raise ValueError(f"logical ids declared twice: {sorted(clash)}")
        resources.update(rendered)
    resources.update(cloudformation_functions.function_patches(stack))
    return {"Resources": resources, "Outputs": cloudformation_functions.outputs(stack)}


def dumps(template: Template) -> str:
    """Sorted, indented JSON: every file packaging and rendering write, the Terraform ones too."""
    return json.dumps(template, indent=2, sort_keys=True) + "\n"
