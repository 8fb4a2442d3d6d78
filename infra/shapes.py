"""The documents and shapes that the provisioner and both renderers share.

CreateTable and ``AWS::DynamoDB::Table`` take the same key schema, attribute
definitions and indexes; the bucket and queue policies are the same JSON
whether boto3 puts them or a template holds them. Only the ARNs differ:
concrete ones from the provisioner, intrinsics or interpolations from the
renderers, so each document takes its ARNs as arguments.
"""

from __future__ import annotations

from typing import Any

from infra.iam import POLICY_VERSION
from infra.resources import KeyAttribute, Table


def key_schema(partition: KeyAttribute, sort: KeyAttribute | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition.name, "KeyType": "HASH"}]
    if sort is not None:
        schema.append({"AttributeName": sort.name, "KeyType": "RANGE"})
    return schema


def attribute_definitions(table: Table) -> list[dict[str, str]]:
    return [{"AttributeName": a.name, "AttributeType": a.type} for a in table.attributes]


def global_secondary_indexes(table: Table) -> list[dict[str, Any]]:
    return [
        {
            "IndexName": index.name,
            "KeySchema": key_schema(index.partition_key, index.sort_key),
            "Projection": {"ProjectionType": index.projection},
        }
        for index in table.indexes
    ]


def expiry_rule_id(prefix: str) -> str:
    return f"expire-current-{prefix.strip('/')}"


def tls_only_policy(bucket_arn: Any, objects_arn: Any) -> dict[str, Any]:
    """Deny every request to the bucket that does not arrive over TLS."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, objects_arn],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def s3_send_policy(queue_arn: Any, bucket_arn: Any, account: Any) -> dict[str, Any]:
    """Let the uploads bucket, and only it, send notifications to a queue."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AllowUploadsBucketNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": bucket_arn},
                    "StringEquals": {"aws:SourceAccount": account},
                },
            }
        ],
    }


def sns_send_policy(queue_arn: Any, topic_arns: list[Any]) -> dict[str, Any]:
    """Let the named topics, and only them, deliver to a queue."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "AllowTopicDeliveries",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arns}},
            }
        ],
    }
