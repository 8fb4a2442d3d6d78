"""Provisioning of the declared KMS keys and log groups (used by :mod:`infra.provision`).

A key is found again by its alias, so provisioning twice creates one key; its
policy and rotation are brought up to date each time. A log group's retention
and key are set each time too.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from infra import arns, iam, keys
from infra.resources import Key, LogGroup, Stack


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def account(clients: Any, region: str) -> arns.Account:
    identity = clients("sts").get_caller_identity()
    return arns.Account(
        account_id=identity["Account"], region=region, partition=identity["Arn"].split(":")[1]
    )


def ensure_key(clients: Any, stack: Stack, key: Key, target: arns.Account) -> dict[str, str]:
    kms = clients("kms")
    template = keys.key_policy(stack, key, lambda f: keys.role_template(stack, f))
    policy = json.dumps(iam.map_strings(template, target.fill))
    try:
        key_id = kms.describe_key(KeyId=key.alias)["KeyMetadata"]["KeyId"]
    except ClientError as error:
        if _code(error) != "NotFoundException":
            raise
        key_id = kms.create_key(Description=key.description, Policy=policy)["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=key.alias, TargetKeyId=key_id)
    else:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)
    kms.enable_key_rotation(KeyId=key_id)
    return describe_key(clients, key)


def describe_key(clients: Any, key: Key) -> dict[str, str]:
    metadata = clients("kms").describe_key(KeyId=key.alias)["KeyMetadata"]
    return {"alias": key.alias, "arn": metadata["Arn"], "id": metadata["KeyId"]}


def ensure_log_group(clients: Any, group: LogGroup, key_arn: str | None) -> dict[str, str]:
    logs = clients("logs")
    try:
        args: dict[str, Any] = {"logGroupName": group.name}
        if key_arn:
            args["kmsKeyId"] = key_arn
        logs.create_log_group(**args)
    except ClientError as error:
        if _code(error) != "ResourceAlreadyExistsException":
            raise
        found = logs.describe_log_groups(logGroupNamePrefix=group.name)["logGroups"]
        current = next((g.get("kmsKeyId") for g in found if g["logGroupName"] == group.name), None)
        if key_arn and current != key_arn:
            logs.associate_kms_key(logGroupName=group.name, kmsKeyId=key_arn)
    logs.put_retention_policy(logGroupName=group.name, retentionInDays=group.retention_days)
    return {"name": group.name}


def delete_key(clients: Any, key: Key) -> bool:
    """Remove the alias and schedule the key's deletion (KMS waits at least 7 days)."""
    kms = clients("kms")
    try:
        metadata = kms.describe_key(KeyId=key.alias)["KeyMetadata"]
    except ClientError as error:
        if _code(error) == "NotFoundException":
            return False
        raise
    kms.delete_alias(AliasName=key.alias)
    if metadata.get("KeyState") != "PendingDeletion":
        kms.schedule_key_deletion(KeyId=metadata["KeyId"], PendingWindowInDays=7)
    return True


def delete_log_group(clients: Any, group: LogGroup) -> bool:
    try:
        clients("logs").delete_log_group(logGroupName=group.name)
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            return False
        raise
    return True
