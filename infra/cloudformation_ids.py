"""CloudFormation logical ids: the names the merge template shares with Chalice's output.

Chalice names its functions, roles and event sources by
``to_cfn_resource_name``; a patch must use exactly those ids to merge into
Chalice's resource instead of beside it (:func:`infra.cloudformation_functions.check_merged`
catches one that does not). The declared resources' ids follow the same rule,
from their declaration keys.
"""

from __future__ import annotations

from chalice.utils import to_cfn_resource_name

from infra.resources import (
    Alarm,
    Bucket,
    Dashboard,
    EmailIdentity,
    FailureQueue,
    Key,
    LogGroup,
    Queue,
    Subscription,
    Table,
    Topic,
)


def camel(key: str) -> str:
    return to_cfn_resource_name(key.replace("/", "-"))


def function_id(function: str) -> str:
    # Chalice special-cases the API handler's logical id.
    return "APIHandler" if function == "api_handler" else to_cfn_resource_name(function)


def role_id(function: str) -> str:
    return to_cfn_resource_name(f"{function}_role")


def event_id(function: str, kind: str) -> str:
    return to_cfn_resource_name(f"{function}-{kind}-event-source")


def queue_id(queue: Queue) -> str:
    return f"{camel(queue.key)}Queue"


def failure_queue_id(queue: FailureQueue) -> str:
    return f"{camel(queue.key)}Queue"


def event_invoke_config_id(function: str) -> str:
    return f"{function_id(function)}EventInvokeConfig"


def dlq_id(queue: Queue) -> str:
    return f"{camel(queue.key)}Dlq"


def table_id(table: Table) -> str:
    return f"{camel(table.key)}Table"


def bucket_id(bucket: Bucket) -> str:
    return f"{camel(bucket.key)}Bucket"


def topic_id(topic: Topic) -> str:
    return f"{camel(topic.key)}Topic"


def alarm_id(alarm: Alarm) -> str:
    return f"{camel(alarm.key)}Alarm"


def dashboard_id(dashboard: Dashboard) -> str:
    return f"{camel(dashboard.key)}Dashboard"


def key_id(key: Key) -> str:
    return f"{camel(key.key)}Key"


def log_group_id(group: LogGroup) -> str:
    return f"{camel(group.key)}Group"


def sub(template: str) -> dict[str, str]:
    return {"Fn::Sub": template}


def subscription_id(subscription: Subscription) -> str:
    return f"{camel(subscription.key)}Subscription"


def email_identity_id(identity: EmailIdentity) -> str:
    return f"{camel(identity.key)}EmailIdentity"
