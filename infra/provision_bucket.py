"""Provisioning of the declared buckets (used by :mod:`infra.provision`).

Every setting is put each time, so provisioning again brings a bucket that
exists up to date: encryption, the public-access block, ownership,
versioning, the lifecycle, the TLS-only policy and the notifications (with
the queue policy that lets S3 send them).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from infra.outputs import Outputs
from infra.resources import Bucket
from infra.shapes import expiry_rule_id, s3_send_policy, tls_only_policy


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def ensure_bucket(clients: Any, bucket: Bucket, outputs: Outputs) -> dict[str, str]:
    """Create the bucket if it is missing and bring every setting of it up to date."""
    s3 = clients("s3")
    arn = f"arn:aws:s3:::{bucket.name}"
    try:
        args: dict[str, Any] = {"Bucket": bucket.name}
        if outputs.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": outputs.region}
        s3.create_bucket(**args)
    except ClientError as error:
        if _code(error) != "BucketAlreadyOwnedByYou":
            raise
    s3.put_bucket_encryption(
        Bucket=bucket.name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=bucket.name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_ownership_controls(
        Bucket=bucket.name,
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    )
    if bucket.versioned:
        s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
    expiries = [
        {
            "ID": expiry_rule_id(prefix),
            "Status": "Enabled",
            "Filter": {"Prefix": prefix},
            "Expiration": {"Days": days},
        }
        for prefix, days in bucket.current_version_days
    ]
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket.name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-noncurrent-and-abort-incomplete",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "NoncurrentVersionExpiration": {
                        "NoncurrentDays": bucket.noncurrent_version_days
                    },
                    "AbortIncompleteMultipartUpload": {
                        "DaysAfterInitiation": bucket.abort_incomplete_upload_days
                    },
                },
                *expiries,
            ]
        },
    )
    if bucket.tls_only:
        s3.put_bucket_policy(
            Bucket=bucket.name,
            Policy=json.dumps(tls_only_policy(arn, f"{arn}/*")),
        )
    configurations = []
    for notification in bucket.queue_notifications:
        queue = outputs.queues[notification.queue_key]
        _allow_s3_to_send(clients, queue, arn)
        configurations.append(
            {
                "QueueArn": queue["arn"],
                "Events": list(notification.events),
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": notification.prefix},
                            {"Name": "suffix", "Value": notification.suffix},
                        ]
                    }
                },
            }
        )
    if configurations:
        s3.put_bucket_notification_configuration(
            Bucket=bucket.name,
            NotificationConfiguration={"QueueConfigurations": configurations},
        )
    return {"name": bucket.name, "arn": arn}


def _allow_s3_to_send(clients: Any, queue: dict[str, str], bucket_arn: str) -> None:
    account = queue["arn"].split(":")[4]
    policy = s3_send_policy(queue["arn"], bucket_arn, account)
    clients("sqs").set_queue_attributes(
        QueueUrl=queue["url"], Attributes={"Policy": json.dumps(policy)}
    )
