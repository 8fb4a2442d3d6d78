"""Feeds ``on_s3_event`` and ``on_sns_message`` handlers through internal queues.

moto cannot invoke a Python Lambda, but it can deliver S3 notifications and
SNS messages to SQS. So each such function gets an internal queue: the bucket
notifies it (merged into the bucket's existing notification configuration,
since ``put_bucket_notification_configuration`` replaces the whole of it), or
it subscribes to the topic (so moto applies any filter policy). The queue is
then polled like any other, one message per invocation, because S3 and SNS
invoke Lambda asynchronously, one event at a time.

Lambda retries a failed asynchronous invocation twice (or as the function's
declared :class:`~infra.functions.AsyncInvokeSettings` say), each attempt
with the same request id. After the last failed attempt, a function with a
declared on-failure queue gets Lambda's failure record sent there
(:mod:`localcloud.runtime.destinations`); for any other function the internal
queue's redrive policy keeps the event in its ``-lc-failed`` DLQ, for
inspection, where Lambda would have discarded it.
"""

from __future__ import annotations

import json
from typing import Any

from localcloud.runtime.destinations import SqsDestination
from localcloud.runtime.sqs import QueueSource
from localcloud.runtime.wiring import Wiring

# One attempt plus Lambda's two asynchronous retries, unless declared otherwise.
ASYNC_ATTEMPTS = 3


def _attempts(wiring: Wiring, function: str) -> int:
    settings = wiring.stack.async_invoke(function)
    return 1 + settings.maximum_retry_attempts if settings else ASYNC_ATTEMPTS


def _on_exhausted(wiring: Wiring, function: str) -> SqsDestination | None:
    settings = wiring.stack.async_invoke(function)
    if settings is None:
        return None
    queue = wiring.outputs.queues[settings.on_failure_queue_key]
    return SqsDestination(
        wiring.clients("sqs"), queue["url"], wiring.full_name(function), wiring.region
    )


def internal_queue_name(wiring: Wiring, function: str, suffix: str = "") -> str:
    # SQS names are at most 80 characters.
    return f"{wiring.full_name(function)}-lc{suffix}"[:80]


def _internal_queue(wiring: Wiring, function: str) -> dict[str, str]:
    sqs = wiring.clients("sqs")
    dlq_url = sqs.create_queue(QueueName=internal_queue_name(wiring, function, "-failed"))[
        "QueueUrl"
    ]
    dlq_arn = _arn(sqs, dlq_url)
    # The handler's timeout bounds a run, so a failed event is retried just after it.
    visibility = wiring.stage_config.lambda_timeout(function) + 1
    name = internal_queue_name(wiring, function)
    attributes = {
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": _attempts(wiring, function)}
        ),
    }
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return {"name": name, "url": url, "arn": _arn(sqs, url)}


def _arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


# -- S3 ---------------------------------------------------------------------------


def s3_source(config: Any, wiring: Wiring, concurrency: int) -> QueueSource:
    queue = _internal_queue(wiring, config.name)
    s3 = wiring.clients("s3")
    notification_id = f"localcloud-{config.name}"
    current = s3.get_bucket_notification_configuration(Bucket=config.bucket)
    current.pop("ResponseMetadata", None)
    queue_configurations = [
        c for c in current.get("QueueConfigurations", []) if c.get("Id") != notification_id
    ]
    ours: dict[str, Any] = {
        "Id": notification_id,
        "QueueArn": queue["arn"],
        "Events": list(config.events),
    }
    rules = [
        {"Name": name, "Value": value}
        for name, value in (("prefix", config.prefix), ("suffix", config.suffix))
        if value
    ]
    if rules:
        ours["Filter"] = {"Key": {"FilterRules": rules}}
    current["QueueConfigurations"] = [*queue_configurations, ours]
    s3.put_bucket_notification_configuration(
        Bucket=config.bucket, NotificationConfiguration=current
    )
    return QueueSource(
        function=config.name,
        queue_name=queue["name"],
        url=queue["url"],
        arn=queue["arn"],
        batch_size=1,
        concurrency=concurrency,
        to_event=s3_event,
        async_attempts=_attempts(wiring, config.name),
        on_exhausted=_on_exhausted(wiring, config.name),
    )


def s3_event(message: dict[str, Any]) -> dict[str, Any] | None:
    """The Lambda event for one S3 notification; None for ``s3:TestEvent``."""
    body = json.loads(message.get("Body") or "{}")
    if body.get("Event") == "s3:TestEvent" or not body.get("Records"):
        return None
    # moto writes the records in the shape S3 gives Lambda.
    return {"Records": body["Records"]}


# -- SNS --------------------------------------------------------------------------


def sns_source(config: Any, wiring: Wiring, concurrency: int) -> QueueSource:
    sns = wiring.clients("sns")
    topic = config.topic
    # CreateTopic is idempotent: it returns the existing topic's ARN.
    topic_arn = topic if topic.startswith("arn:") else sns.create_topic(Name=topic)["TopicArn"]
    queue = _internal_queue(wiring, config.name)
    subscription_arn = None
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        for subscription in page["Subscriptions"]:
            if subscription["Endpoint"] == queue["arn"]:
                subscription_arn = subscription["SubscriptionArn"]
    if subscription_arn is None:
        subscription_arn = sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue["arn"], ReturnSubscriptionArn=True
        )["SubscriptionArn"]

    def to_event(message: dict[str, Any]) -> dict[str, Any] | None:
        return sns_event(message, subscription_arn)

    return QueueSource(
        function=config.name,
        queue_name=queue["name"],
        url=queue["url"],
        arn=queue["arn"],
        batch_size=1,
        concurrency=concurrency,
        to_event=to_event,
        async_attempts=_attempts(wiring, config.name),
        on_exhausted=_on_exhausted(wiring, config.name),
    )


def sns_event(message: dict[str, Any], subscription_arn: str) -> dict[str, Any] | None:
    """The Lambda event for one SNS envelope as delivered to SQS."""
    envelope = json.loads(message.get("Body") or "{}")
    if envelope.get("Type") != "Notification":
        return None
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": envelope.get("SignatureVersion", "1"),
                    "Timestamp": envelope.get("Timestamp"),
                    "Signature": envelope.get("Signature", ""),
                    # Lambda spells these two "Url"; the SQS envelope, "URL".
                    "SigningCertUrl": envelope.get("SigningCertURL", ""),
                    "MessageId": envelope.get("MessageId"),
                    "Message": envelope.get("Message"),
                    "MessageAttributes": envelope.get("MessageAttributes", {}),
                    "Type": "Notification",
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
                    "TopicArn": envelope.get("TopicArn"),
                    "Subject": envelope.get("Subject"),
                },
            }
        ]
    }
