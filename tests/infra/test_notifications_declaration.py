"""The notifications consumer's resources, as declared once and derived everywhere else."""

from __future__ import annotations

import json
import zipfile

import pytest

from chalicelib.orders import claims, emails
from chalicelib.orders.states import EventType
from infra import arns, iam
from infra.resources import MAX_RECEIVE_COUNT
from infra.stageconfig import StageConfig
from tests.infra.conftest import stack_for
from tests.plugins.iam_calls import iam_requests

ACCOUNT = arns.Account(account_id="123456789012", region="us-east-1")


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_a_standard_queue_with_a_dlq_subscribed_to_every_event_type_and_alarmed(stage):
    stack = stack_for(stage)
    queue = stack.queue("notifications")
    assert (queue.name, queue.fifo) == (f"eventflow-{stage}-notifications", False)
    assert queue.dlq_name == f"eventflow-{stage}-notifications-dlq"
    [subscription] = [s for s in stack.subscriptions if s.queue_key == "notifications"]
    assert subscription.topic_key == "order-events" and stack.topic("order-events").fifo
    assert subscription.filter_policy == {"event_type": sorted(str(t) for t in EventType)}
    assert stack.event_source("send_notifications").report_batch_item_failures
    alarms = {alarm.key for alarm in stack.alarms}
    assert {"notifications-dlq-not-empty", "notifications-oldest-message-age"} <= alarms
    assert {"send-notifications-errors", "send-notifications-throttles"} <= alarms


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_the_sender_identity_is_the_stage_s_configured_address(stage):
    stack = stack_for(stage)
    configured = StageConfig.load(stage).environment()["EVENTFLOW_MAIL_FROM"]
    assert stack.email_identity("sender").email == stack.settings.mail_from == configured


def test_send_notifications_may_send_only_as_the_sender_and_only_update_claims():
    stack = stack_for("prod")
    policy = iam.fill(iam.policy(stack, "send_notifications"), ACCOUNT)
    granted = {
        (action, resource)
        for statement in policy["Statement"]
        if not statement["Sid"].startswith(("Logs", "Consume", "Tracing"))
        for action in statement["Action"]
        for resource in statement["Resource"]
    }
    sender = stack.settings.mail_from
    assert granted == {
        ("ses:SendEmail", f"arn:aws:ses:us-east-1:123456789012:identity/{sender}"),
        ("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:123456789012:table/"
         "eventflow-prod-idempotency"),
    }  # fmt: skip
    # The recorded-calls plugin checks SendEmail against the From identity:
    # mail from another address is a violation.
    for source, allowed in ((sender, True), (f"Orders <{sender}>", True), ("x@evil.test", False)):
        [(action, resource)] = iam_requests("ses", "SendEmail", {"Source": source}, "us-east-1")
        assert iam.allows(policy, action, resource) is allowed, source


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_a_crashed_invocation_s_message_returns_only_after_its_lease_has_ended(stage):
    """A batch that crashes comes back after the visibility timeout; by then the lease
    the dead invocation took (its remaining time, at most its timeout, plus a margin)
    has expired, so the redelivery sends instead of failing on a dead holder's claim."""
    stack = stack_for(stage)
    timeout = stack.function("send_notifications").timeout
    longest_lease = timeout + claims.LEASE_MARGIN.total_seconds()
    assert stack.queue("notifications").visibility_timeout > longest_lease


def test_provisioning_verifies_the_sender_identity(clients, outputs, settings):
    identities = clients("ses").list_identities()["Identities"]
    assert settings.mail_from in identities


def test_provisioning_creates_the_queue_with_its_dlq_and_subscribes_it(clients, outputs, settings):
    sqs, name = clients.sqs, settings.notifications_queue
    queue, dlq = outputs.queues["notifications"], outputs.queues["notifications-dlq"]
    assert queue["url"] == sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue["url"], AttributeNames=["All"])
    assert attributes["Attributes"]["QueueArn"] == queue["arn"]
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dlq["arn"], "maxReceiveCount": MAX_RECEIVE_COUNT}
    topic = outputs.topics["order-events"]["arn"]
    subscriptions = clients.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    [ours] = [s for s in subscriptions if s["Endpoint"] == queue["arn"]]
    got = clients.sns.get_subscription_attributes(SubscriptionArn=ours["SubscriptionArn"])
    assert got["Attributes"]["RawMessageDelivery"] == "true"
    assert json.loads(got["Attributes"]["FilterPolicy"]) == {
        "event_type": sorted(str(t) for t in EventType)
    }


def test_the_deployment_package_ships_every_email_template(prod_cfn_dir):
    with zipfile.ZipFile(prod_cfn_dir / "deployment.zip") as package:
        shipped = set(package.namelist())
    for kind in emails.kinds():
        for suffix in (".subject", ".txt"):
            assert f"chalicelib/templates/{kind}{suffix}" in shipped
