"""The declaration's four renderings agree: CloudFormation, Terraform and the provisioner.

Each rendering is read back into one neutral shape (names, DLQ wiring,
maxReceiveCount, visibility timeouts, encryption, key schemas, PITR), and the
shapes must be equal. The provisioner's shape is read from moto after it ran,
so it reflects what was really created, not what was asked for.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.aws import Clients
from infra import cloudformation, cloudformation_ids, terraform
from infra.provision import Provisioner
from tests.infra.conftest import stack_for

Shape = dict[str, Any]


def _keys(schema: list[dict[str, str]]) -> tuple[str, ...]:
    return tuple(k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"]))


def from_cloudformation(stack) -> Shape:
    resources = cloudformation.merge_template(stack)["Resources"]
    queues, tables = {}, {}
    by_id = {logical_id: r for logical_id, r in resources.items() if "Type" in r}
    for resource in by_id.values():
        props = resource["Properties"]
        if resource["Type"] == "AWS::SQS::Queue":
            redrive = props.get("RedrivePolicy")
            dlq = by_id[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]] if redrive else None
            queues[props["QueueName"]] = {
                "dlq": dlq["Properties"]["QueueName"] if dlq else None,
                "max_receive_count": redrive["maxReceiveCount"] if redrive else None,
                "visibility_timeout": props.get("VisibilityTimeout", 30),
                "sse": props["SqsManagedSseEnabled"],
            }
        elif resource["Type"] == "AWS::DynamoDB::Table":
            tables[props["TableName"]] = {
                "key": _keys(props["KeySchema"]),
                "indexes": {
                    i["IndexName"]: _keys(i["KeySchema"])
                    for i in props.get("GlobalSecondaryIndexes", [])
                },
                "sse": props["SSESpecification"]["SSEEnabled"],
                "pitr": props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
                "ttl": props.get("TimeToLiveSpecification", {}).get("AttributeName"),
            }
    subscriptions = set()
    for resource in by_id.values():
        if resource["Type"] == "AWS::SNS::Subscription":
            props = resource["Properties"]
            topic = by_id[props["TopicArn"]["Ref"]]["Properties"]["TopicName"]
            queue = by_id[props["Endpoint"]["Fn::GetAtt"][0]]["Properties"]["QueueName"]
            policy = props.get("FilterPolicy")
            subscriptions.add(
                (topic, queue, props["RawMessageDelivery"], json.dumps(policy, sort_keys=True))
            )
    topics = {
        r["Properties"]["TopicName"]: r["Properties"].get("FifoTopic", False)
        for r in by_id.values()
        if r["Type"] == "AWS::SNS::Topic"
    }
    aliases = {
        r["Properties"]["TargetKeyId"]["Ref"]: r["Properties"]["AliasName"]
        for r in by_id.values()
        if r["Type"] == "AWS::KMS::Alias"
    }
    security = {
        "topic_keys": {
            r["Properties"]["TopicName"]: aliases[r["Properties"]["KmsMasterKeyId"]["Ref"]]
            for r in by_id.values()
            if r["Type"] == "AWS::SNS::Topic"
        },
        "log_groups": {
            r["Properties"]["LogGroupName"]: (
                r["Properties"]["RetentionInDays"],
                aliases[r["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]],
            )
            for r in by_id.values()
            if r["Type"] == "AWS::Logs::LogGroup"
        },
        "expiry": {
            (rule["Prefix"], rule["ExpirationInDays"])
            for r in by_id.values()
            if r["Type"] == "AWS::S3::Bucket"
            for rule in r["Properties"]["LifecycleConfiguration"]["Rules"]
            if "ExpirationInDays" in rule
        },
    }
    return {
        "queues": queues,
        "tables": tables,
        "topics": topics,
        "subscriptions": subscriptions,
        "security": security,
    }


def from_terraform(stack) -> Shape:
    resources = terraform.resources(stack)["resource"]
    sqs = resources["aws_sqs_queue"]
    queues = {}
    for body in sqs.values():
        redrive = body.get("redrive_policy")
        dlq = max_receive = None
        if redrive:
            dlq_ref = redrive.split("aws_sqs_queue.")[1].split(".arn")[0]
            dlq = sqs[dlq_ref]["name"]
            max_receive = int(redrive.split("maxReceiveCount = ")[1].split("}")[0])
        queues[body["name"]] = {
            "dlq": dlq,
            "max_receive_count": max_receive,
            "visibility_timeout": body.get("visibility_timeout_seconds", 30),
            "sse": body["sqs_managed_sse_enabled"],
        }
    tables = {}
    for body in resources["aws_dynamodb_table"].values():
        tables[body["name"]] = {
            "key": tuple(k for k in (body["hash_key"], body.get("range_key")) if k),
            "indexes": {
                i["name"]: tuple(k for k in (i["hash_key"], i.get("range_key")) if k)
                for i in body.get("global_secondary_index", [])
            },
            "sse": body["server_side_encryption"][0]["enabled"],
            "pitr": body["point_in_time_recovery"][0]["enabled"],
            "ttl": body["ttl"][0]["attribute_name"] if "ttl" in body else None,
        }
    names = {key: body["name"] for key, body in resources["aws_sns_topic"].items()}
    subscriptions = set()
    for body in resources.get("aws_sns_topic_subscription", {}).values():
        topic = names[body["topic_arn"].split("aws_sns_topic.")[1].split(".arn")[0]]
        queue = sqs[body["endpoint"].split("aws_sqs_queue.")[1].split(".arn")[0]]["name"]
        policy = json.loads(body["filter_policy"]) if "filter_policy" in body else None
        subscriptions.add(
            (topic, queue, body["raw_message_delivery"], json.dumps(policy, sort_keys=True))
        )
    topics = {
        body["name"]: body.get("fifo_topic", False) for body in resources["aws_sns_topic"].values()
    }
    aliases = {
        f"${{aws_kms_key.{name}.arn}}": body["name"]
        for name, body in resources["aws_kms_alias"].items()
    }
    security = {
        "topic_keys": {
            body["name"]: aliases[body["kms_master_key_id"]]
            for body in resources["aws_sns_topic"].values()
        },
        "log_groups": {
            body["name"]: (body["retention_in_days"], aliases[body["kms_key_id"]])
            for body in resources["aws_cloudwatch_log_group"].values()
        },
        "expiry": {
            (rule["filter"][0]["prefix"], rule["expiration"][0]["days"])
            for body in resources["aws_s3_bucket_lifecycle_configuration"].values()
            for rule in body["rule"]
            if "expiration" in rule
        },
    }
    return {
        "queues": queues,
        "tables": tables,
        "topics": topics,
        "subscriptions": subscriptions,
        "security": security,
    }


def from_moto(stack) -> Shape:
    clients = Clients()
    outputs = Provisioner(clients).apply(stack)
    sqs, ddb = clients.sqs, clients.dynamodb
    arn_to_name = {q["arn"]: q["name"] for q in outputs.queues.values()}
    queues = {}
    for queue in outputs.queues.values():
        attrs = sqs.get_queue_attributes(QueueUrl=queue["url"], AttributeNames=["All"])[
            "Attributes"
        ]
        redrive = json.loads(attrs["RedrivePolicy"]) if "RedrivePolicy" in attrs else None
        queues[queue["name"]] = {
            "dlq": arn_to_name[redrive["deadLetterTargetArn"]] if redrive else None,
            "max_receive_count": int(redrive["maxReceiveCount"]) if redrive else None,
            "visibility_timeout": int(attrs["VisibilityTimeout"]),
            "sse": attrs.get("SqsManagedSseEnabled") == "true",
        }
    tables = {}
    for table in outputs.tables.values():
        description = ddb.describe_table(TableName=table["name"])["Table"]
        backups = ddb.describe_continuous_backups(TableName=table["name"])
        ttl = ddb.describe_time_to_live(TableName=table["name"])["TimeToLiveDescription"]
        tables[table["name"]] = {
            "key": _keys(description["KeySchema"]),
            "indexes": {
                i["IndexName"]: _keys(i["KeySchema"])
                for i in description.get("GlobalSecondaryIndexes", [])
            },
            "sse": description.get("SSEDescription", {}).get("Status") == "ENABLED",
            "pitr": backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
                "PointInTimeRecoveryStatus"
            ]
            == "ENABLED",
            "ttl": ttl.get("AttributeName"),
        }
    sns = clients.sns
    topics, subscriptions, listed_count = {}, set(), 0
    for topic in outputs.topics.values():
        attributes = sns.get_topic_attributes(TopicArn=topic["arn"])["Attributes"]
        topics[topic["name"]] = attributes.get("FifoTopic") == "true"
        listed = sns.list_subscriptions_by_topic(TopicArn=topic["arn"])["Subscriptions"]
        listed_count += len(listed)
        for subscription in listed:
            attributes = sns.get_subscription_attributes(
                SubscriptionArn=subscription["SubscriptionArn"]
            )["Attributes"]
            policy = (
                json.loads(attributes["FilterPolicy"]) if "FilterPolicy" in attributes else None
            )
            subscriptions.add(
                (
                    topic["name"],
                    arn_to_name[subscription["Endpoint"]],
                    attributes["RawMessageDelivery"] == "true",
                    json.dumps(policy, sort_keys=True),
                )
            )
    kms, logs, s3 = clients("kms"), clients("logs"), clients.s3
    aliases = {
        a["TargetKeyId"]: a["AliasName"]
        for a in kms.list_aliases()["Aliases"]
        if "TargetKeyId" in a
    }

    def alias_of(key_arn: str) -> str:
        return aliases[key_arn.rsplit("/", 1)[1]]

    security = {
        "topic_keys": {
            topic["name"]: alias_of(
                sns.get_topic_attributes(TopicArn=topic["arn"])["Attributes"]["KmsMasterKeyId"]
            )
            for topic in outputs.topics.values()
        },
        "log_groups": {
            g["logGroupName"]: (g["retentionInDays"], alias_of(g["kmsKeyId"]))
            for g in logs.describe_log_groups()["logGroups"]
        },
        "expiry": {
            (rule["Filter"]["Prefix"], rule["Expiration"]["Days"])
            for bucket in outputs.buckets.values()
            for rule in s3.get_bucket_lifecycle_configuration(Bucket=bucket["name"])["Rules"]
            if "Expiration" in rule
        },
    }
    return {
        "queues": queues,
        "tables": tables,
        "topics": topics,
        "subscriptions": subscriptions,
        "listed": listed_count,
        "security": security,
    }


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_cloudformation_terraform_and_the_provisioner_agree(stage):
    stack = stack_for(stage)
    cfn, tf = from_cloudformation(stack), from_terraform(stack)
    with mock_aws():
        created = from_moto(stack)
    assert cfn == tf
    assert cfn == {k: v for k, v in created.items() if k != "listed"}
    # And they hold what the declaration says, not merely the same mistake.
    for queue in stack.queues:
        assert cfn["queues"][queue.name]["dlq"] == queue.dlq_name
        assert cfn["queues"][queue.name]["max_receive_count"] == queue.max_receive_count
        assert cfn["queues"][queue.name]["visibility_timeout"] == queue.visibility_timeout
    assert all(q["sse"] for q in cfn["queues"].values())
    assert all(t["sse"] and t["pitr"] for t in cfn["tables"].values())
    assert set(cfn["tables"]) == {table.name for table in stack.tables}
    assert cfn["topics"] == {topic.name: topic.fifo for topic in stack.topics}
    assert len(cfn["subscriptions"]) == len(stack.subscriptions)
    # Encryption and retention, as declared: one key for every topic and log group.
    alias = stack.kms_key("data").alias
    assert cfn["security"]["topic_keys"] == {topic.name: alias for topic in stack.topics}
    assert cfn["security"]["log_groups"] == {
        group.name: (group.retention_days, alias) for group in stack.log_groups
    }
    assert cfn["security"]["expiry"] == set(stack.bucket("uploads").current_version_days)


def test_subscriptions_render_alike_and_provisioning_them_twice_changes_nothing():
    """A stack with subscriptions (one filtered, one not, one FIFO queue) renders the same
    everywhere, and the provisioner's Subscribe is idempotent."""
    from dataclasses import replace

    from infra.resources import Queue, Subscription

    base = stack_for("local")
    extra_queues = (
        Queue(key="tap-fifo", name="eventflow-local-tap.fifo", visibility_timeout=30),
        Queue(key="tap", name="eventflow-local-tap", visibility_timeout=30),
    )
    stack = replace(
        base,
        queues=base.queues + extra_queues,
        subscriptions=(
            Subscription("tap-fifo", "order-events", "tap-fifo", {"new_status": ["SHIPPED"]}),
            Subscription("tap", "order-events", "tap"),
        ),
    )
    cfn, tf = from_cloudformation(stack), from_terraform(stack)
    with mock_aws():
        created = from_moto(stack)
        again = from_moto(stack)
    assert cfn["subscriptions"] == tf["subscriptions"] == created["subscriptions"]
    assert again["subscriptions"] == created["subscriptions"]
    assert again["listed"] == created["listed"] == len(stack.subscriptions)
    assert (
        "eventflow-local-order-events.fifo",
        "eventflow-local-tap.fifo",
        True,
        '{"new_status": ["SHIPPED"]}',
    ) in cfn["subscriptions"]


def async_from_cloudformation(stack) -> Shape:
    resources = cloudformation.merge_template(stack)["Resources"]
    names = {lid: r["Properties"].get("QueueName") for lid, r in resources.items() if "Type" in r}
    functions = {cloudformation_ids.function_id(f.name): f.name for f in stack.functions}
    return {
        functions[r["Properties"]["FunctionName"]["Ref"]]: {
            "retries": r["Properties"]["MaximumRetryAttempts"],
            "on_failure": names[
                r["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
            ],
        }
        for r in resources.values()
        if r.get("Type") == "AWS::Lambda::EventInvokeConfig"
    }


def async_from_terraform(stack) -> Shape:
    resources = terraform.resources(stack)["resource"]
    queues = resources["aws_sqs_queue"]
    shape = {}
    for function, body in resources.get("aws_lambda_function_event_invoke_config", {}).items():
        destination = body["destination_config"][0]["on_failure"][0]["destination"]
        shape[function] = {
            "retries": body["maximum_retry_attempts"],
            "on_failure": queues[destination.split("aws_sqs_queue.")[1].split(".arn")[0]]["name"],
        }
    return shape


def async_from_deploy(stack) -> Shape:
    from infra.deploy import wanted_async_settings

    outputs = Provisioner(Clients()).apply(stack)
    names = {q["arn"]: q["name"] for q in outputs.queues.values()}
    shape = {}
    for settings in stack.async_invokes:
        wanted = wanted_async_settings(settings, outputs)
        shape[settings.function] = {
            "retries": wanted["MaximumRetryAttempts"],
            "on_failure": names[wanted["DestinationConfig"]["OnFailure"]["Destination"]],
        }
    return shape


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_asynchronous_invocation_settings_agree(stage):
    """Retries and on-failure queue of S3-invoked functions, as each path applies them."""
    stack = stack_for(stage)
    cfn, tf = async_from_cloudformation(stack), async_from_terraform(stack)
    with mock_aws():
        deployed = async_from_deploy(stack)
    assert cfn == tf == deployed
    assert cfn == {
        s.function: {
            "retries": s.maximum_retry_attempts,
            "on_failure": stack.failure_queue(s.on_failure_queue_key).name,
        }
        for s in stack.async_invokes
    }
