"""ARNs of declared resources, as templates that each renderer fills in its own way.

An ARN template uses CloudFormation's ``Fn::Sub`` placeholders for the parts
that only the target account knows (``${AWS::Partition}``, ``${AWS::Region}``,
``${AWS::AccountId}``). CloudFormation wraps the template in ``Fn::Sub``,
Terraform swaps in data-source interpolations, and ``chalice deploy`` (and the
tests) substitute concrete values with :meth:`Account.fill`.
"""

from __future__ import annotations

from dataclasses import dataclass

PARTITION = "${AWS::Partition}"
REGION = "${AWS::Region}"
ACCOUNT = "${AWS::AccountId}"


def table(name: str) -> str:
    return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def index(table_name: str, index_name: str) -> str:
    return f"{table(table_name)}/index/{index_name}"


def stream(table_name: str) -> str:
    # Stream labels are minted at creation; a policy names them all.
    return f"{table(table_name)}/stream/*"


def queue(name: str) -> str:
    return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}"


def bucket(name: str) -> str:
    return f"arn:{PARTITION}:s3:::{name}"


def objects(bucket_name: str, prefix: str) -> str:
    return f"{bucket(bucket_name)}/{prefix}*"


def topic(name: str) -> str:
    return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{name}"


def ses_identity(email: str) -> str:
    return f"arn:{PARTITION}:ses:{REGION}:{ACCOUNT}:identity/{email}"


def log_group(function_physical_name: str) -> str:
    return log_group_named(f"/aws/lambda/{function_physical_name}")


def log_group_named(name: str) -> str:
    return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{name}"


def keys() -> str:
    """Every KMS key of the account and region (policies narrow it by alias)."""
    return f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/*"


def role(name: str) -> str:
    return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"


def account_root() -> str:
    return f"arn:{PARTITION}:iam::{ACCOUNT}:root"


def log_streams(function_physical_name: str) -> str:
    return f"{log_group(function_physical_name)}:*"


@dataclass(frozen=True)
class Account:
    """Concrete values for the placeholders."""

    account_id: str
    region: str
    partition: str = "aws"

    def fill(self, template: str) -> str:
        return (
            template.replace(PARTITION, self.partition)
            .replace(REGION, self.region)
            .replace(ACCOUNT, self.account_id)
        )
