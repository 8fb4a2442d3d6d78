"""Least-privilege IAM policies, one per function, derived from the declaration.

Each function's policy is built from two sources:

* :data:`ACCESS`, a small table of what each function's code does with which
  declared resource (one line per resource; changing what a handler calls is a
  one-line change here);
* the declared event sources: a function that consumes a queue or a stream
  gets exactly the actions Lambda's poller needs on it, and on a stream's
  on-failure queue.

Every statement names concrete actions (never a wildcard) on ARNs of declared
resources. ARNs are :mod:`infra.arns` templates, so the same document is
rendered into CloudFormation, Terraform and the ``chalice deploy`` policy files.

:func:`allows` is a small evaluator of these documents (Allow statements,
``*`` and ``?`` globs in resources, and the few condition operators used
here), used by the tests that check the policy covers what the handlers really
call.

A grant may carry a condition. The shared idempotency table is the case:
each consumer may touch only the records under its own key prefix
(``dynamodb:LeadingKeys``), so one function cannot claim or erase another's
processed-event markers.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.config import REJECTS_PREFIX, UPLOADS_PREFIX
from chalicelib.orders import analytics, inventory, notifications
from chalicelib.orders.markers import marker_id
from chalicelib.orders.store import key_record_id
from infra import arns
from infra.declaration import Stack

POLICY_VERSION = "2012-10-17"

# What Lambda's SQS poller does with the function's role.
SQS_CONSUMER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
)
# What Lambda's DynamoDB-stream poller does with the function's role.
STREAM_CONSUMER_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)
# The log groups are declared (infra.declaration.LogGroup) with their
# retention; without CreateLogGroup, Lambda cannot make one that never expires.
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
LEADING_KEYS = "dynamodb:LeadingKeys"
# Lambda's active tracing sends segments with the function's role.
TRACING_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")

# Each function's own records in the idempotency table, by key prefix.
ORDER_KEYS = key_record_id("")
INVENTORY_MARKERS = marker_id(inventory.CONSUMER, "")
ANALYTICS_MARKERS = marker_id(analytics.CONSUMER, "")
NOTIFICATION_CLAIMS = marker_id(notifications.CONSUMER, "")


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

    def statement(self, stack: Stack) -> dict[str, Any]:
        table = stack.table(self.table_key)
        resources = [arns.table(table.name)]
        if self.indexes:
            resources += [arns.index(table.name, index.name) for index in table.indexes]
        statement = _statement(
            f"Table{_camel(self.table_key)}", "dynamodb", self.actions, resources
        )
        if self.key_prefixes:
            patterns = [f"{prefix}*" for prefix in self.key_prefixes]
            statement["Condition"] = {"ForAllValues:StringLike": {LEADING_KEYS: patterns}}
        return statement


@dataclass(frozen=True)
class ObjectAccess:
    """S3 object actions under one key prefix of a declared bucket."""

    bucket_key: str
    prefix: str
    actions: str

    def statement(self, stack: Stack) -> dict[str, Any]:
        bucket = stack.bucket(self.bucket_key)
        sid = f"Objects{_camel(self.bucket_key)}{_camel(self.prefix)}"
        return _statement(sid, "s3", self.actions, [arns.objects(bucket.name, self.prefix)])


@dataclass(frozen=True)
class QueueAccess:
    """SQS actions on a declared queue, or (``dlq``) on its dead-letter queue."""

    queue_key: str
    actions: str
    dlq: bool = False

    def statement(self, stack: Stack) -> dict[str, Any]:
        queue = stack.queue(self.queue_key)
        name, key = (queue.dlq_name, queue.dlq_key) if self.dlq else (queue.name, queue.key)
        return _statement(f"Queue{_camel(key)}", "sqs", self.actions, [arns.queue(name)])


@dataclass(frozen=True)
class TopicAccess:
    """SNS actions on a declared topic (PublishBatch is authorized as sns:Publish)."""

    topic_key: str
    actions: str

    def statement(self, stack: Stack) -> dict[str, Any]:
        topic = stack.topic(self.topic_key)
        return _statement(
            f"Topic{_camel(self.topic_key)}", "sns", self.actions, [arns.topic(topic.name)]
        )


@dataclass(frozen=True)
class IdentityAccess:
    """SES actions as a declared sender identity (SendEmail is authorized on the From identity)."""

    identity_key: str
    actions: str

    def statement(self, stack: Stack) -> dict[str, Any]:
        identity = stack.email_identity(self.identity_key)
        return _statement(
            f"Mail{_camel(self.identity_key)}",
            "ses",
            self.actions,
            [arns.ses_identity(identity.email)],
        )


@dataclass(frozen=True)
class KeyAccess:
    """KMS actions on a declared key, only through one service (SNS encrypting a topic).

    The key's ARN is minted at creation, so the grant names the account's keys
    and narrows them to the one carrying the declared alias.
    """

    key_key: str
    actions: str
    via_service: str

    def statement(self, stack: Stack) -> dict[str, Any]:
        key = stack.kms_key(self.key_key)
        statement = _statement(f"Key{_camel(self.key_key)}", "kms", self.actions, [arns.keys()])
        statement["Condition"] = {
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": [key.alias]},
            "StringEquals": {"kms:ViaService": f"{self.via_service}.{arns.REGION}.amazonaws.com"},
        }
        return statement


Grant = TableAccess | ObjectAccess | QueueAccess | TopicAccess | IdentityAccess | KeyAccess

_INGEST: tuple[Grant, ...] = (
    # GetObjectVersion: the bucket is versioned and S3 events name the version.
    ObjectAccess("uploads", UPLOADS_PREFIX, "GetObject GetObjectVersion"),
    # Rejects reports go up with upload_fileobj, which may use multipart.
    ObjectAccess("uploads", REJECTS_PREFIX, "PutObject AbortMultipartUpload"),
    QueueAccess("ingest", "SendMessage GetQueueUrl"),
    TableAccess("ingests", "GetItem PutItem UpdateItem"),
)

# Placing and moving orders (chalicelib.orders.service), from the API or the intake.
_ORDERS: tuple[Grant, ...] = (
    TableAccess("products", "BatchGetItem"),
    # The order and its idempotency key commit in one TransactWriteItems,
    # which IAM authorizes per item (PutItem on each table).
    TableAccess("orders", "GetItem PutItem UpdateItem"),
    TableAccess("idempotency", "GetItem PutItem", key_prefixes=(ORDER_KEYS,)),
)

# What each function's own code calls.
ACCESS: dict[str, tuple[Grant, ...]] = {
    "api_handler": (
        TableAccess("readings", "GetItem PutItem DeleteItem Query", indexes=True),
        TableAccess("ingests", "GetItem Query", indexes=True),
        # Presigned upload URLs carry the signer's permissions.
        ObjectAccess("uploads", UPLOADS_PREFIX, "PutObject"),
        # _ORDERS, plus the product routes and the customer's orders query.
        TableAccess("products", "BatchGetItem GetItem UpdateItem"),
        TableAccess("orders", "GetItem PutItem UpdateItem Query", indexes=True),
        TableAccess("idempotency", "GetItem PutItem", key_prefixes=(ORDER_KEYS,)),
    ),
    "intake_orders": (
        *_ORDERS,
        # A message no retry can fix goes to the DLQ at once, with its reason.
        QueueAccess("order-intake", "SendMessage GetQueueUrl", dlq=True),
    ),
    "publish_order_events": (
        TopicAccess("order-events", "Publish"),
        # The topic is encrypted: SNS encrypts each message with the caller's rights.
        KeyAccess("data", "GenerateDataKey Decrypt", via_service="sns"),
    ),
    "update_inventory": (
        # Reservation, release and consumption: the order, its products and the
        # event's marker in one TransactWriteItems (authorized per item).
        TableAccess("orders", "GetItem UpdateItem"),
        TableAccess("products", "BatchGetItem UpdateItem"),
        TableAccess("idempotency", "PutItem", key_prefixes=(INVENTORY_MARKERS,)),
    ),
    # -- notifications: claim the event, send as the sender identity, mark it sent
    # (chalicelib.orders.claims); every step on the claim is one conditional UpdateItem.
    "send_notifications": (
        TableAccess("idempotency", "UpdateItem", key_prefixes=(NOTIFICATION_CLAIMS,)),
        IdentityAccess("sender", "SendEmail"),
    ),
    "ingest_from_queue": _INGEST,
    "ingest_from_s3": _INGEST,
    "write_readings": (
        # BatchGetItem: a repeated chunk checks which readings were edited since.
        TableAccess("readings", "BatchWriteItem BatchGetItem"),
        # The chunk marker (Put) and the counters (Update) commit in one
        # TransactWriteItems; IAM has no action of that name and authorizes
        # each item's own action instead.
        TableAccess("ingests", "PutItem UpdateItem GetItem"),
    ),
}

# -- orders: analytics consumer ----------------------------------------------------
ACCESS["update_analytics"] = (
    # The day's counters (Update) and the event's marker (Put) commit in one
    # TransactWriteItems, authorized per item.
    TableAccess("daily-analytics", "UpdateItem"),
    TableAccess("idempotency", "PutItem", key_prefixes=(ANALYTICS_MARKERS,)),
)
# GET /analytics/daily/{date} reads one day's item.
ACCESS["api_handler"] += (TableAccess("daily-analytics", "GetItem"),)


def policy(stack: Stack, function: str) -> dict[str, Any]:
    """The IAM policy document (ARN templates) for one declared function."""
    declared = stack.function(function)
    if function not in ACCESS:
        raise KeyError(f"no access declared for function {function!r} in infra.iam.ACCESS")
    log_resources = [
        arns.log_group(declared.physical_name),
        arns.log_streams(declared.physical_name),
    ]
    statements = [_statement("Logs", "logs", "", log_resources, LOG_ACTIONS)]
    if declared.tracing:
        # X-Ray's write actions cannot be scoped to a resource: IAM accepts only "*".
        statements.append(_statement("Tracing", "xray", "", ["*"], TRACING_ACTIONS))
    statements += [grant.statement(stack) for grant in ACCESS[function]]
    statements += _consumer_statements(stack, function)
    return {"Version": POLICY_VERSION, "Statement": _merge_same_sid(statements)}


def policies(stack: Stack) -> dict[str, dict[str, Any]]:
    return {function.name: policy(stack, function.name) for function in stack.functions}


def _consumer_statements(stack: Stack, function: str) -> list[dict[str, Any]]:
    statements = []
    destinations: list[str] = []
    queue_keys = {queue.key for queue in stack.queues}
    for source in stack.event_sources:
        if source.function != function:
            continue
        if source.source_key in queue_keys:
            queue = stack.queue(source.source_key)
            statements.append(
                _statement(
                    f"Consume{_camel(queue.key)}",
                    "sqs",
                    "",
                    [arns.queue(queue.name)],
                    SQS_CONSUMER_ACTIONS,
                )
            )
        else:
            table = stack.table(source.source_key)
            statements.append(
                _statement(
                    f"Stream{_camel(table.key)}",
                    "dynamodb",
                    "",
                    [arns.stream(table.name)],
                    STREAM_CONSUMER_ACTIONS,
                )
            )
        if source.on_failure_queue_key:
            destinations.append(source.on_failure_queue_key)
    asynchronous = stack.async_invoke(function)
    if asynchronous is not None:
        destinations.append(asynchronous.on_failure_queue_key)
    # Lambda sends a stream's or an asynchronous invocation's on-failure
    # record with the function's own role.
    for key in dict.fromkeys(destinations):
        failures = stack.failure_queue(key)
        statements.append(
            _statement(
                f"OnFailure{_camel(failures.key)}",
                "sqs",
                "SendMessage",
                [arns.queue(failures.name)],
            )
        )
    return statements


def _statement(
    sid: str,
    service: str,
    actions: str,
    resources: list[str],
    full_actions: Iterable[str] = (),
) -> dict[str, Any]:
    names = [f"{service}:{action}" for action in actions.split()] + list(full_actions)
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(set(names)), "Resource": resources}


def _merge_same_sid(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two grants on the same resource (e.g. a queue sent to and consumed) share a Sid."""
    merged: dict[str, dict[str, Any]] = {}
    for statement in statements:
        sid = statement["Sid"]
        same = merged.get(sid, {})
        if same.get("Resource") == statement["Resource"] and same.get("Condition") == statement.get(
            "Condition"
        ):
            merged[sid]["Action"] = sorted(set(merged[sid]["Action"]) | set(statement["Action"]))
        else:
            while sid in merged:
                sid += "X"
            merged[sid] = {**statement, "Sid": sid}
    return list(merged.values())


def _camel(text: str) -> str:
    return "".join(
        part.capitalize() for part in text.replace("/", "-").replace("_", "-").split("-")
    )


def fill(document: dict[str, Any], account: arns.Account) -> dict[str, Any]:
    """The document with concrete ARNs, for ``chalice deploy``'s policy files."""
    return map_strings(document, account.fill)


def map_strings(document: Any, change: Callable[[str], Any]) -> Any:
    """The document with ``change`` applied to every ARN template and condition value."""
    if isinstance(document, dict):
        return {key: map_strings(value, change) for key, value in document.items()}
    if isinstance(document, list):
        return [map_strings(value, change) for value in document]
    if isinstance(document, str) and "${" in document:
        return change(document)
    return document


Context = dict[str, list[str]]


def allows(
    document: dict[str, Any], action: str, resource: str, context: Context | None = None
) -> bool:
    """Whether a (filled) policy allows ``action`` on ``resource``, in a request ``context``.

    Only what these policies use: Allow statements, exact actions, ``*``
    globs in resources (IAM's ``*`` also crosses ``/``, as ``fnmatch``'s does),
    and the condition operators in :data:`OPERATORS`. ``context`` holds the
    request's condition keys, each a list of values (a key the request does
    not carry is absent).
    """
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow" or action not in statement["Action"]:
            continue
        if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in statement["Resource"]):
            continue
        if conditions_hold(statement.get("Condition", {}), context or {}):
            return True
    return False


def _like(value: str, pattern: str) -> bool:
    # IAM's StringLike: '*' and '?' only; no character classes.
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": str.__eq__,
    "StringLike": _like,
    "ArnEquals": str.__eq__,
    "ArnLike": _like,
}


def conditions_hold(conditions: dict[str, dict[str, Any]], context: Context) -> bool:
    """IAM's rules: every operator and key must hold; a key's listed values are alternatives.

    ``ForAllValues:`` holds when each of the request's values matches one of
    them, and so when the request carries none; ``ForAnyValue:`` when at least
    one does; a plain operator needs the key.
    """
    for operator, keys in conditions.items():
        qualifier, _, name = operator.rpartition(":")
        match = OPERATORS.get(name)
        if match is None or qualifier not in ("", "ForAllValues", "ForAnyValue"):
            raise ValueError(f"condition operator {operator} is not evaluated here")
        for key, wanted in keys.items():
            patterns = wanted if isinstance(wanted, list) else [wanted]
            values = context.get(key)
            if qualifier == "ForAllValues":
                if not all(any(match(v, p) for p in patterns) for v in values or []):
                    return False
            elif qualifier == "ForAnyValue":
                if not any(match(v, p) for v in values or [] for p in patterns):
                    return False
            elif not values or not any(match(values[0], p) for p in patterns):
                return False
    return True


def wildcard_actions(document: dict[str, Any]) -> list[str]:
    return [a for s in document["Statement"] for a in s["Action"] if "*" in a or "?" in a]
