"""Terraform files rendered from the declaration, next to ``chalice package``'s own.

``chalice package --pkg-format terraform`` writes ``chalice.tf.json`` and
rejects ``--merge-template``; Terraform's override files do the same job.
Two files are written:

* ``eventflow_resources.tf.json``: every declared resource, each rendered by
  one function in :data:`RENDERERS` (an unknown type raises
  :class:`~infra.cloudformation.UnrenderableResource`), and the
  asynchronous-invocation settings of functions S3 invokes
  (``aws_lambda_function_event_invoke_config``, on Chalice's function);
* ``eventflow_override.tf.json``: merged by Terraform into Chalice's blocks:
  the mapping settings Chalice cannot express, each role's least-privilege
  policy, the bucket notification ordered after our bucket, and Chalice's pins
  (Terraform ``< 1.4.0``, AWS provider ``< 5``) lifted.

ARNs reuse the data sources Chalice's file declares (``data.aws_partition.chalice``
and friends), so the rendered files are only valid next to Chalice's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from infra import arns, iam, keys
from infra.cloudformation import UnrenderableResource
from infra.functions import AsyncInvokeSettings
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
from infra.shapes import expiry_rule_id, s3_send_policy, sns_send_policy, tls_only_policy

Blocks = dict[str, dict[str, Any]]

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
INTERPOLATIONS = {
    arns.PARTITION: "${data.aws_partition.chalice.partition}",
    arns.REGION: "${data.aws_region.chalice.name}",
    arns.ACCOUNT: "${data.aws_caller_identity.chalice.account_id}",
}


def interpolate(text: str) -> str:
    for placeholder, expression in INTERPOLATIONS.items():
        text = text.replace(placeholder, expression)
    return text


def name(key: str) -> str:
    """A Terraform resource name for a declaration key."""
    return key.replace("-", "_").replace("/", "_")


def queue_name(queue: Queue) -> str:
    return name(queue.key)


def dlq_name(queue: Queue) -> str:
    return name(queue.dlq_key)


def _add(blocks: Blocks, kind: str, resource_name: str, body: dict[str, Any]) -> None:
    existing = blocks.setdefault(kind, {})
    if resource_name in existing:
        raise ValueError(f"{kind}.{resource_name} declared twice")
    existing[resource_name] = body


def _queue(queue: Queue, stack: Stack, blocks: Blocks) -> None:
    fifo = {"fifo_queue": True} if queue.fifo else {}
    _add(
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
    _add(
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
    _add(
        blocks,
        "aws_sqs_queue",
        name(queue.key),
        {
            "name": queue.name,
            "message_retention_seconds": queue.retention_seconds,
            "sqs_managed_sse_enabled": True,
        },
    )


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
    _add(blocks, "aws_lambda_function_event_invoke_config", settings.function, body)


def _key(key: Key, stack: Stack, blocks: Blocks) -> None:
    # Chalice names each function's role "<function>_role".
    policy = keys.key_policy(stack, key, lambda f: f"${{aws_iam_role.{f}_role.arn}}")
    _add(
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
    _add(
        blocks,
        "aws_kms_alias",
        name(key.key),
        {"name": key.alias, "target_key_id": f"${{aws_kms_key.{name(key.key)}.key_id}}"},
    )


def _log_group(group: LogGroup, stack: Stack, blocks: Blocks) -> None:
    body: dict[str, Any] = {"name": group.name, "retention_in_days": group.retention_days}
    if group.kms_key:
        body["kms_key_id"] = f"${{aws_kms_key.{name(group.kms_key)}.arn}}"
    _add(blocks, "aws_cloudwatch_log_group", name(group.key), body)


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
    _add(blocks, "aws_dynamodb_table", name(table.key), body)


def _bucket(bucket: Bucket, stack: Stack, blocks: Blocks) -> None:
    key = name(bucket.key)
    ref = f"${{aws_s3_bucket.{key}.id}}"
    _add(blocks, "aws_s3_bucket", key, {"bucket": bucket.name})
    _add(
        blocks,
        "aws_s3_bucket_server_side_encryption_configuration",
        key,
        {
            "bucket": ref,
            "rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "AES256"}]}],
        },
    )
    _add(
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
    _add(
        blocks,
        "aws_s3_bucket_ownership_controls",
        key,
        {"bucket": ref, "rule": [{"object_ownership": "BucketOwnerEnforced"}]},
    )
    if bucket.versioned:
        _add(
            blocks,
            "aws_s3_bucket_versioning",
            key,
            {"bucket": ref, "versioning_configuration": [{"status": "Enabled"}]},
        )
    _add(
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
        _add(blocks, "aws_s3_bucket_policy", key, {"bucket": ref, "policy": json.dumps(policy)})
    if bucket.queue_notifications:
        queues = []
        depends_on = []
        for notification in bucket.queue_notifications:
            queue = stack.queue(notification.queue_key)
            arn = f"${{aws_sqs_queue.{queue_name(queue)}.arn}}"
            policy = s3_send_policy(arn, bucket_arn, INTERPOLATIONS[arns.ACCOUNT])
            _add(
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
        _add(
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
    _add(blocks, "aws_sns_topic", name(topic.key), body)


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
    _add(blocks, "aws_sns_topic_subscription", name(subscription.key), body)
    siblings = [s for s in stack.subscriptions if s.queue_key == queue.key]
    if siblings[0] is subscription:  # The queue's first subscription renders its one policy.
        topics = [f"${{aws_sns_topic.{name(s.topic_key)}.arn}}" for s in siblings]
        _add(
            blocks,
            "aws_sqs_queue_policy",
            queue_name(queue),
            {
                "queue_url": f"${{aws_sqs_queue.{queue_name(queue)}.id}}",
                "policy": json.dumps(sns_send_policy(queue_arn, topics)),
            },
        )


def _email_identity(identity: EmailIdentity, stack: Stack, blocks: Blocks) -> None:
    _add(blocks, "aws_ses_email_identity", name(identity.key), {"email": identity.email})


def _alarm(alarm: Alarm, stack: Stack, blocks: Blocks) -> None:
    topic = f"${{aws_sns_topic.{name(stack.topic(alarm.topic_key).key)}.arn}}"
    _add(
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
    _add(
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
        event_invoke_config(stack, settings, blocks)
    if stack.api is not None:
        api_stage(stack, blocks)
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
    _add(
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
    _add(
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
