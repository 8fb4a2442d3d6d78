"""Least-privilege IAM policies, one per function, derived from the declared stack.

Each function's policy is built from two sources:

* its grants (:mod:`infra.grants`), declared with the function in its
  domain's stack file: what its own code does with which declared resource,
  one line per resource;
* its event sources: a function that consumes a queue or a stream
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
from typing import Any

from infra import arns
from infra.grants import (
    Grant,
    IdentityAccess,
    ObjectAccess,
    QueueAccess,
    TableAccess,
    TopicAccess,
)
from infra.resources import Stack

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
# The log groups are declared (infra.resources.LogGroup) with their
# retention; without CreateLogGroup, Lambda cannot make one that never expires.
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
LEADING_KEYS = "dynamodb:LeadingKeys"
# Lambda's active tracing sends segments with the function's role.
TRACING_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")


def grant_statement(grant: Grant, stack: Stack) -> dict[str, Any]:
    """The statement of one grant, naming the declared resource's ARN templates."""
    if isinstance(grant, TableAccess):
        table = stack.table(grant.table_key)
        resources = [arns.table(table.name)]
        if grant.indexes:
            resources += [arns.index(table.name, index.name) for index in table.indexes]
        statement = _statement(
            f"Table{_camel(grant.table_key)}", "dynamodb", grant.actions, resources
        )
        if grant.key_prefixes:
            patterns = [f"{prefix}*" for prefix in grant.key_prefixes]
            statement["Condition"] = {"ForAllValues:StringLike": {LEADING_KEYS: patterns}}
        return statement
    if isinstance(grant, ObjectAccess):
        bucket = stack.bucket(grant.bucket_key)
        sid = f"Objects{_camel(grant.bucket_key)}{_camel(grant.prefix)}"
        return _statement(sid, "s3", grant.actions, [arns.objects(bucket.name, grant.prefix)])
    if isinstance(grant, QueueAccess):
        queue = stack.queue(grant.queue_key)
        name, key = (queue.dlq_name, queue.dlq_key) if grant.dlq else (queue.name, queue.key)
        return _statement(f"Queue{_camel(key)}", "sqs", grant.actions, [arns.queue(name)])
    if isinstance(grant, TopicAccess):
        topic = stack.topic(grant.topic_key)
        return _statement(
            f"Topic{_camel(grant.topic_key)}", "sns", grant.actions, [arns.topic(topic.name)]
        )
    if isinstance(grant, IdentityAccess):
        identity = stack.email_identity(grant.identity_key)
        return _statement(
            f"Mail{_camel(grant.identity_key)}",
            "ses",
            grant.actions,
            [arns.ses_identity(identity.email)],
        )
    key = stack.kms_key(grant.key_key)
    statement = _statement(f"Key{_camel(grant.key_key)}", "kms", grant.actions, [arns.keys()])
    statement["Condition"] = {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": [key.alias]},
        "StringEquals": {"kms:ViaService": f"{grant.via_service}.{arns.REGION}.amazonaws.com"},
    }
    return statement


def policy(stack: Stack, function: str) -> dict[str, Any]:
    """The IAM policy document (ARN templates) for one declared function."""
    declared = stack.function(function)
    log_resources = [
        arns.log_group(declared.physical_name),
        arns.log_streams(declared.physical_name),
    ]
    statements = [_statement("Logs", "logs", "", log_resources, LOG_ACTIONS)]
    if declared.tracing:
        # X-Ray's write actions cannot be scoped to a resource: IAM accepts only "*".
        statements.append(_statement("Tracing", "xray", "", ["*"], TRACING_ACTIONS))
    statements += [grant_statement(grant, stack) for grant in declared.grants]
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
