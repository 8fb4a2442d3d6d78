"""What a function's own code does with a declared resource, as data.

Each :class:`~infra.functions.Function` carries its grants, declared next to
it in its domain's stack file (``infra/stack/``); :mod:`infra.iam` renders
them into the function's least-privilege policy, together with what the
function's event sources need (which follows from the mappings, not from
grants). ``actions`` are the service's action names without the prefix,
separated by spaces: ``"GetItem PutItem"``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableAccess:
    """DynamoDB actions on a declared table and, when ``indexes``, all its indexes.

    With ``key_prefixes``, only on items whose partition key starts with one of
    them (IAM checks ``dynamodb:LeadingKeys`` on every item a request names).
    """

    table_key: str
    actions: str
    indexes: bool = False
    key_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectAccess:
    """S3 object actions under one key prefix of a declared bucket."""

    bucket_key: str
    prefix: str
    actions: str


@dataclass(frozen=True)
class QueueAccess:
    """SQS actions on a declared queue, or (``dlq``) on its dead-letter queue."""

    queue_key: str
    actions: str
    dlq: bool = False


@dataclass(frozen=True)
class TopicAccess:
    """SNS actions on a declared topic (PublishBatch is authorized as sns:Publish)."""

    topic_key: str
    actions: str


@dataclass(frozen=True)
class IdentityAccess:
    """SES actions as a declared sender identity (SendEmail is authorized on the From identity)."""

    identity_key: str
    actions: str


@dataclass(frozen=True)
class KeyAccess:
    """KMS actions on a declared key, only through one service (SNS encrypting a topic).

    The key's ARN is minted at creation, so the grant names the account's keys
    and narrows them to the one carrying the declared alias.
    """

    key_key: str
    actions: str
    via_service: str


Grant = TableAccess | ObjectAccess | QueueAccess | TopicAccess | IdentityAccess | KeyAccess
