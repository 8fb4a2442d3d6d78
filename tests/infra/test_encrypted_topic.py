"""The order-events topic is encrypted with the stage's key, and its queues still receive.

Its messages carry customers' email addresses. The key is provisioned in the
local cloud too (moto's KMS), so the same declaration runs everywhere.
"""

from __future__ import annotations

import json

from moto import mock_aws

from chalicelib.aws import Clients
from infra import keys
from infra.provision import Provisioner
from tests.infra.conftest import stack_for


def test_the_local_cloud_encrypts_the_topic_and_delivers_to_every_consumer():
    stack = stack_for("local")
    with mock_aws():
        clients = Clients()
        outputs = Provisioner(clients).apply(stack)
        again = Provisioner(clients).apply(stack)
        kms, sns, sqs = clients("kms"), clients("sns"), clients("sqs")

        key = kms.describe_key(KeyId=stack.kms_key("data").alias)["KeyMetadata"]
        assert outputs.keys["data"]["arn"] == again.keys["data"]["arn"] == key["Arn"]
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
        policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
        publishers = next(
            s for s in policy["Statement"] if s["Sid"] == "PublishersUseKeyThroughSns"
        )
        role = keys.role_template(stack, "publish_order_events").split(":role/")[1]
        assert publishers["Condition"]["ArnEquals"]["aws:PrincipalArn"] == [
            f"arn:aws:iam::123456789012:role/{role}"
        ]
        topic = outputs.topics["order-events"]["arn"]
        attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
        assert attributes["KmsMasterKeyId"] == key["Arn"]

        sns.publish(
            TopicArn=topic,
            Message=json.dumps({"order_id": "o-1", "customer_email": "a@example.com"}),
            MessageGroupId="o-1",
            MessageDeduplicationId="o-1-1",
            MessageAttributes={
                "event_type": {"DataType": "String", "StringValue": "ORDER_CREATED"},
                "new_status": {"DataType": "String", "StringValue": "PENDING"},
            },
        )
        for queue_key in ("inventory", "notifications", "analytics"):
            url = outputs.queues[queue_key]["url"]
            got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)["Messages"]
            assert json.loads(got[0]["Body"])["order_id"] == "o-1", queue_key
