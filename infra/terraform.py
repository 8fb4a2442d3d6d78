"""``eventflow_resources.tf.json``: every declared resource, as Terraform, next to Chalice's file.

``chalice package --pkg-format terraform`` writes ``chalice.tf.json`` and
rejects ``--merge-template``; this file and the override file
(:mod:`infra.terraform_functions`) do its job. Each declared resource is
rendered by one function in :data:`RENDERERS` (an unknown type raises
:class:`~infra.resources.UnrenderableResource`). Names and interpolations
are :mod:`infra.terraform_names`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from infra import arns, keys, terraform_functions
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
from infra.shapes import expiry_rule_id, s3_send_policy, sns_send_policy, tls_only_policy
from infra.terraform_names import (
    INTERPOLATIONS,
    Blocks,
    add,
    dlq_name,
    interpolate,
    name,
    queue_name,
)


def _queue(queue: Queue, stack: Stack, blocks: Blocks) -> None:
    fifo = {"fifo_queue": True} if queue.fifo else {}
    add(
        blocks,
        "aws_sqs_queue",
        dlq_name(queue),
        {
            "name": queue.dlq_name,
            "message_retention_seconds": queue.dlq_retention_seconds,
            "sqs_managed_sse_enabled": True,
            **fifo,
        },
    )
    redrive = (
        f"${{jsonencode({{deadLetterTargetArn = aws_sqs_queue.{dlq_name(queue)}.arn, "
        f"maxReceiveCount = {queue.max_receive_count}}})}}"
    )
    add(
        blocks,
        "aws_sqs_queue",
        queue_name(queue),
        {
            "name": queue.name,
            "visibility_timeout_seconds": queue.visibility_timeout,
            "message_retention_seconds": queue.retention_seconds,
            "sqs_managed_sse_enabled": True,
            "redrive_policy": redrive,
            **fifo,
        },
    )


def _failure_queue(queue: FailureQueue, stack: Stack, blocks: Blocks) -> None:
    add(
        blocks,
        "aws_sqs_queue",
        name(queue.key),
        {
            "name": queue.name,
            "message_retention_seconds": queue.retention_seconds,
            "sqs_managed_sse_enabled": True,
        },
    )


def _key(key: Key, stack: Stack, blocks: Blocks) -> None:
    # Chalice names each function's role "<function>_role".
    policy = keys.key_policy(stack, key, lambda f: f"${{aws_iam_role.{f}_role.arn}}")
    add(
        blocks,
        "aws_kms_key",
        name(key.key),
        {
            "description": key.description,
            "enable_key_rotation": True,
            "policy": interpolate(json.dumps(policy)),
            "lifecycle": [{"prevent_destroy": True}],
        },
    )
    add(
        blocks,
        "aws_kms_alias",
        name(key.key),
        {"name": key.alias, "target_key_id": f"${{aws_kms_key.{name(key.key)}.key_id}}"},
    )


def _log_group(group: LogGroup, stack: Stack, blocks: Blocks) -> None:
    body: dict[str, Any] = {"name": group.name, "retention_in_days": group.retention_days}
    if group.kms_key:
        body["kms_key_id"] = f"${{aws_kms_key.{name(group.kms_key)}.arn}}"
    add(blocks, "aws_cloudwatch_log_group", name(group.key), body)


def _table(table: Table, stack: Stack, blocks: Blocks) -> None:
    body: dict[str, Any] = {
        "name": table.name,
        "billing_mode": "PAY_PER_REQUEST",
        "hash_key": table.partition_key.name,
        "attribute": [{"name": a.name, "type": a.type} for a in table.attributes],
        "server_side_encryption": [{"enabled": True}],
        "point_in_time_recovery": [{"enabled": table.point_in_time_recovery}],
    }
    if table.sort_key:
        body["range_key"] = table.sort_key.name
    if table.indexes:
        body["global_secondary_index"] = [
            {
                "name": index.name,
                "hash_key": index.partition_key.name,
                **({"range_key": index.sort_key.name} if index.sort_key else {}),
                "projection_type": index.projection,
            }
            for index in table.indexes
        ]
    if table.ttl_attribute:
        body["ttl"] = [{"attribute_name": table.ttl_attribute, "enabled": True}]
    if table.stream_view_type:
        body["stream_enabled"] = True
        body["stream_view_type"] = table.stream_view_type
    add(blocks, "aws_dynamodb_table", name(table.key), body)


def _bucket(bucket: Bucket, stack: Stack, blocks: Blocks) -> None:
    key = name(bucket.key)
    ref = f"${{aws_s3_bucket.{key}.id}}"
    add(blocks, "aws_s3_bucket", key, {"bucket": bucket.name})
    add(
        blocks,
        "aws_s3_bucket_server_side_encryption_configuration",
        key,
        {
            "bucket": ref,
            "rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "AES256"}]}],
        },
    )
    add(
        blocks,
        "aws_s3_bucket_public_access_block",
        key,
        {
            "bucket": ref,
            "block_public_acls": True,
            "ignore_public_acls": True,
            "block_public_policy": True,
            "restrict_public_buckets": True,
        },
    )
    add(
        blocks,
        "aws_s3_bucket_ownership_controls",
        key,
        {"bucket": ref, "rule": [{"object_ownership": "BucketOwnerEnforced"}]},
    )
    if bucket.versioned:
        add(
            blocks,
            "aws_s3_bucket_versioning",
            key,
            {"bucket": ref, "versioning_configuration": [{"status": "Enabled"}]},
        )
    add(
        blocks,
        "aws_s3_bucket_lifecycle_configuration",
        key,
        {
            "bucket": ref,
            "rule": [
                {
                    "id": "expire-noncurrent-and-abort-incomplete",
                    "status": "Enabled",
                    "filter": [{}],
                    "noncurrent_version_expiration": [
                        {"noncurrent_days": bucket.noncurrent_version_days}
                    ],
                    "abort_incomplete_multipart_upload": [
                        {"days_after_initiation": bucket.abort_incomplete_upload_days}
                    ],
                },
                *(
                    {
                        "id": expiry_rule_id(prefix),
                        "status": "Enabled",
                        "filter": [{"prefix": prefix}],
                        "expiration": [{"days": days}],
                    }
                    for prefix, days in bucket.current_version_days
                ),
            ],
        },
    )
    bucket_arn = interpolate(arns.bucket(bucket.name))
    if bucket.tls_only:
        policy = tls_only_policy(bucket_arn, interpolate(arns.objects(bucket.name, "")))
        add(blocks, "aws_s3_bucket_policy", key, {"bucket": ref, "policy": json.dumps(policy)})
    if bucket.queue_notifications:
        queues = []
        depends_on = []
        for notification in bucket.queue_notifications:
            queue = stack.queue(notification.queue_key)
            arn = f"${{aws_sqs_queue.{queue_name(queue)}.arn}}"
            policy = s3_send_policy(arn, bucket_arn, INTERPOLATIONS[arns.ACCOUNT])
            add(
                blocks,
                "aws_sqs_queue_policy",
                queue_name(queue),
                {
                    "queue_url": f"${{aws_sqs_queue.{queue_name(queue)}.id}}",
                    "policy": json.dumps(policy),
                },
            )
            depends_on.append(f"aws_sqs_queue_policy.{queue_name(queue)}")
            queues.append(
                {
                    "queue_arn": arn,
                    "events": list(notification.events),
                    "filter_prefix": notification.prefix,
                    "filter_suffix": notification.suffix,
                }
            )
        add(
            blocks,
            "aws_s3_bucket_notification",
            key,
            {"bucket": ref, "queue": queues, "depends_on": depends_on},
        )


def _topic(topic: Topic, stack: Stack, blocks: Blocks) -> None:
    body: dict[str, Any] = {"name": topic.name}
    if topic.fifo:
        body["fifo_topic"] = True
    if topic.kms_key:
        body["kms_master_key_id"] = f"${{aws_kms_key.{name(topic.kms_key)}.arn}}"
    add(blocks, "aws_sns_topic", name(topic.key), body)


def _subscription(subscription: Subscription, stack: Stack, blocks: Blocks) -> None:
    queue = stack.queue(subscription.queue_key)
    topic_arn = f"${{aws_sns_topic.{name(subscription.topic_key)}.arn}}"
    queue_arn = f"${{aws_sqs_queue.{queue_name(queue)}.arn}}"
    body: dict[str, Any] = {
        "topic_arn": topic_arn,
        "protocol": "sqs",
        "endpoint": queue_arn,
        "raw_message_delivery": True,
    }
    if subscription.filter_policy_json:
        body["filter_policy"] = subscription.filter_policy_json
    add(blocks, "aws_sns_topic_subscription", name(subscription.key), body)
    siblings = [s for s in stack.subscriptions if s.queue_key == queue.key]
    if siblings[0] is subscription:  # The queue's first subscription renders its one policy.
        topics = [f"${{aws_sns_topic.{name(s.topic_key)}.arn}}" for s in siblings]
        add(
            blocks,
            "aws_sqs_queue_policy",
            queue_name(queue),
            {
                "queue_url": f"${{aws_sqs_queue.{queue_name(queue)}.id}}",
                "policy": json.dumps(sns_send_policy(queue_arn, topics)),
            },
        )


def _email_identity(identity: EmailIdentity, stack: Stack, blocks: Blocks) -> None:
    add(blocks, "aws_ses_email_identity", name(identity.key), {"email": identity.email})


def _alarm(alarm: Alarm, stack: Stack, blocks: Blocks) -> None:
    topic = f"${{aws_sns_topic.{name(stack.topic(alarm.topic_key).key)}.arn}}"
    add(
        blocks,
        "aws_cloudwatch_metric_alarm",
        name(alarm.key),
        {
            "alarm_name": alarm.name,
            "alarm_description": alarm.description,
            "namespace": alarm.namespace,
            "metric_name": alarm.metric_name,
            "dimensions": dict(alarm.dimensions),
            "statistic": alarm.statistic,
            "period": alarm.period,
            "evaluation_periods": alarm.evaluation_periods,
            "threshold": alarm.threshold,
            "comparison_operator": alarm.comparison,
            "treat_missing_data": alarm.treat_missing_data,
            "alarm_actions": [topic],
            "ok_actions": [topic],
        },
    )


def _dashboard(dashboard: Dashboard, stack: Stack, blocks: Blocks) -> None:
    add(
        blocks,
        "aws_cloudwatch_dashboard",
        name(dashboard.key),
        {
            "dashboard_name": dashboard.name,
            "dashboard_body": dashboard.body(INTERPOLATIONS[arns.REGION]),
        },
    )


RENDERERS: dict[type, Callable[[Any, Stack, Blocks], None]] = {
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


def resources(stack: Stack) -> dict[str, Any]:
    """``eventflow_resources.tf.json``."""
    blocks: Blocks = {}
    for resource in stack.resources:
        renderer = RENDERERS.get(type(resource))
        if renderer is None:
            raise UnrenderableResource(
                f"no Terraform renderer for {type(resource).__name__}; add one to "
                "infra.terraform.RENDERERS"
            )
        renderer(resource, stack, blocks)
    for settings in stack.async_invokes:
        terraform_functions.event_invoke_config(stack, settings, blocks)
    if stack.api is not None:
        terraform_functions.api_stage(stack, blocks)
    outputs = {
        f"{name(q.key)}_queue_url": {"value": f"${{aws_sqs_queue.{name(q.key)}.id}}"}
        for q in (*stack.queues, *stack.failure_queues)
    }
    outputs.update(
        {
            f"{name(t.key)}_topic_arn": {"value": f"${{aws_sns_topic.{name(t.key)}.arn}}"}
            for t in stack.topics
        }
    )
    return {"resource": blocks, "output": outputs}
