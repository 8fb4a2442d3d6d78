"""The key policy of a declared customer-managed KMS key, for every renderer.

Each renderer names the publishing functions' roles its own way (a
CloudFormation ``GetAtt``, a Terraform reference, the ARN ``chalice deploy``
gives the role), so it passes ``role_arn``. Everything else is an
:mod:`infra.arns` template. The publishers are matched by ``aws:PrincipalArn``
under the account principal, not named as principals: a key policy that
names a role which does not exist yet is refused, and ``python -m infra
deploy`` creates the key before ``chalice deploy`` creates the roles. Under
the account principal, the role's own IAM policy must allow the use too
(``infra.iam.KeyAccess``): both gates must agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra import arns, iam
from infra.resources import ALERTS_TOPIC_KEY, Key, Stack

# What the account's administrators may do: manage the key, never use it.
ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
)
# What SNS needs to encrypt a message at publish and decrypt it for delivery.
SNS_USE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
LOGS_USE_ACTIONS = (
    "kms:Decrypt*",
    "kms:Describe*",
    "kms:Encrypt*",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
)


def role_template(stack: Stack, function: str) -> str:
    """The role ``chalice deploy`` creates for a function (one role per function)."""
    return arns.role(stack.settings.name(function))


def key_policy(stack: Stack, key: Key, role_arn: Callable[[str], Any]) -> dict[str, Any]:
    account = {"AWS": arns.account_root()}
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AdministerNotUse",
            "Effect": "Allow",
            "Principal": account,
            "Action": list(ADMIN_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "SnsUsesKeyForThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": list(SNS_USE_ACTIONS),
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": arns.ACCOUNT}},
        },
    ]
    alerts = [t for t in stack.topics if t.key == ALERTS_TOPIC_KEY and t.kms_key == key.key]
    if alerts and stack.alarms:
        # CloudWatch publishes alarm notifications to the encrypted alerts topic.
        statements.append(
            {
                "Sid": "CloudWatchAlarmsUseKey",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": list(SNS_USE_ACTIONS),
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": arns.ACCOUNT}},
            }
        )
    if key.sns_publishers:
        statements.append(
            {
                "Sid": "PublishersUseKeyThroughSns",
                "Effect": "Allow",
                "Principal": account,
                "Action": list(SNS_USE_ACTIONS),
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {"aws:PrincipalArn": [role_arn(f) for f in key.sns_publishers]},
                    "StringEquals": {"kms:ViaService": f"sns.{arns.REGION}.amazonaws.com"},
                },
            }
        )
    groups = [g for g in stack.log_groups if g.kms_key == key.key]
    if groups:
        statements.append(
            {
                "Sid": "LogsUsesKeyForDeclaredGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{arns.REGION}.amazonaws.com"},
                "Action": list(LOGS_USE_ACTIONS),
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {
                        "kms:EncryptionContext:aws:logs:arn": [
                            arns.log_group_named(g.name) for g in groups
                        ]
                    }
                },
            }
        )
    return {"Version": iam.POLICY_VERSION, "Statement": statements}
