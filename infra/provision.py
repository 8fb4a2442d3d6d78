"""Creates a declared :class:`~infra.resources.Stack`, idempotently.

Running it twice changes nothing; running it after the declaration changed
brings mutable settings (queue attributes, TTL, notifications) up to date.
Table key schemas cannot change in place, so a changed key schema is reported
rather than silently ignored.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from infra import arns, provision_bucket, provision_keys
from infra.outputs import Outputs
from infra.resources import (
    Alarm,
    Dashboard,
    EmailIdentity,
    FailureQueue,
    Queue,
    Stack,
    Subscription,
    Table,
    Topic,
)
from infra.shapes import (
    attribute_definitions,
    global_secondary_indexes,
    key_schema,
    sns_send_policy,
)


class ProvisionError(RuntimeError):
    pass


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class Provisioner:
    """Applies a stack through the given clients (``clients(service)`` returns one)."""

    def __init__(self, clients, sleep=time.sleep):
        self._clients = clients
        self._sleep = sleep

    def apply(self, stack: Stack) -> Outputs:
        region = self._clients("sqs").meta.region_name
        outputs = Outputs(region=region)
        if stack.keys:
            target = provision_keys.account(self._clients, region)
            for key in stack.keys:
                outputs.keys[key.key] = provision_keys.ensure_key(self._clients, stack, key, target)
        for group in stack.log_groups:
            key_arn = outputs.keys[group.kms_key]["arn"] if group.kms_key else None
            outputs.log_groups[group.key] = provision_keys.ensure_log_group(
                self._clients, group, key_arn
            )
        for queue in stack.queues:
            outputs.queues[queue.key], outputs.queues[queue.dlq_key] = self.queue(queue)
        for failures in stack.failure_queues:
            outputs.queues[failures.key] = self.failure_queue(failures)
        for table in stack.tables:
            outputs.tables[table.key] = self.table(table)
        for bucket in stack.buckets:
            outputs.buckets[bucket.key] = provision_bucket.ensure_bucket(
                self._clients, bucket, outputs
            )
        for topic in stack.topics:
            outputs.topics[topic.key] = self.topic(topic, outputs)
        for queue_key in dict.fromkeys(s.queue_key for s in stack.subscriptions):
            self._allow_topics_to_send(stack, queue_key, outputs)
        for subscription in stack.subscriptions:
            self.subscription(subscription, outputs)
        for identity in stack.email_identities:
            self.email_identity(identity)
        for alarm in stack.alarms:
            self.alarm(alarm, outputs)
        for dashboard in stack.dashboards:
            self.dashboard(dashboard, region)
        return outputs

    def describe(self, stack: Stack) -> Outputs:
        """The outputs of an already provisioned stack, without changing anything."""
        sqs, ddb = self._clients("sqs"), self._clients("dynamodb")
        outputs = Outputs(region=sqs.meta.region_name)
        try:
            named = [(q.key, q.name) for q in stack.queues]
            named += [(q.dlq_key, q.dlq_name) for q in stack.queues]
            named += [(q.key, q.name) for q in stack.failure_queues]
            for key, name in named:
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
                outputs.queues[key] = self._queue_output(name, url)
            for table in stack.tables:
                outputs.tables[table.key] = self._table_output(
                    ddb.describe_table(TableName=table.name)["Table"]
                )
            for key in stack.keys:
                outputs.keys[key.key] = provision_keys.describe_key(self._clients, key)
        except ClientError as error:
            raise ProvisionError(f"stage {stack.stage} is not provisioned: {error}") from error
        for group in stack.log_groups:
            outputs.log_groups[group.key] = {"name": group.name}
        for bucket in stack.buckets:
            outputs.buckets[bucket.key] = {
                "name": bucket.name,
                "arn": f"arn:aws:s3:::{bucket.name}",
            }
        # Topic ARNs follow from the account, which any queue ARN already names.
        account = next(iter(outputs.queues.values()))["arn"].split(":")[4] if stack.queues else ""
        for topic in stack.topics:
            filled = arns.Account(account_id=account, region=outputs.region).fill(
                arns.topic(topic.name)
            )
            outputs.topics[topic.key] = {"name": topic.name, "arn": filled}
        return outputs

    # -- SQS ---------------------------------------------------------------

    def queue(self, queue: Queue) -> tuple[dict[str, str], dict[str, str]]:
        common = {"SqsManagedSseEnabled": "true"}
        fifo = {"FifoQueue": "true"} if queue.fifo else {}
        dlq_url = self._ensure_queue(
            queue.dlq_name,
            {**common, **fifo, "MessageRetentionPeriod": str(queue.dlq_retention_seconds)},
        )
        dlq = self._queue_output(queue.dlq_name, dlq_url)
        source_url = self._ensure_queue(
            queue.name,
            {
                **common,
                **fifo,
                "VisibilityTimeout": str(queue.visibility_timeout),
                "MessageRetentionPeriod": str(queue.retention_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq["arn"], "maxReceiveCount": queue.max_receive_count}
                ),
            },
        )
        return self._queue_output(queue.name, source_url), dlq

    def failure_queue(self, queue: FailureQueue) -> dict[str, str]:
        url = self._ensure_queue(
            queue.name,
            {
                "SqsManagedSseEnabled": "true",
                "MessageRetentionPeriod": str(queue.retention_seconds),
            },
        )
        return self._queue_output(queue.name, url)

    def _ensure_queue(self, name: str, attributes: dict[str, str]) -> str:
        sqs = self._clients("sqs")
        try:
            return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        except ClientError as error:
            if _code(error) not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
        # It exists with other attributes: bring them up to date. FifoQueue is
        # immutable and already right, or the name would not have matched.
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        mutable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        sqs.set_queue_attributes(QueueUrl=url, Attributes=mutable)
        return url

    def _queue_output(self, name: str, url: str) -> dict[str, str]:
        arn = self._clients("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return {"name": name, "url": url, "arn": arn}

    # -- DynamoDB ------------------------------------------------------------

    def table(self, table: Table) -> dict[str, str]:
        ddb = self._clients("dynamodb")
        try:
            description = ddb.describe_table(TableName=table.name)["Table"]
            self._check_key_schema(table, description)
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise
            description = ddb.create_table(**self._create_table_args(table))["TableDescription"]
            ddb.get_waiter("table_exists").wait(
                TableName=table.name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
        if table.ttl_attribute:
            self._ensure_ttl(table)
        self._ensure_pitr(table)
        return self._table_output(description)

    def _ensure_pitr(self, table: Table) -> None:
        ddb = self._clients("dynamodb")
        current = ddb.describe_continuous_backups(TableName=table.name)
        status = (
            current["ContinuousBackupsDescription"]
            .get("PointInTimeRecoveryDescription", {})
            .get("PointInTimeRecoveryStatus")
        )
        if (status == "ENABLED") == table.point_in_time_recovery:
            return
        ddb.update_continuous_backups(
            TableName=table.name,
            PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": table.point_in_time_recovery
            },
        )

    @staticmethod
    def _create_table_args(table: Table) -> dict[str, Any]:
        args: dict[str, Any] = {
            "TableName": table.name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": attribute_definitions(table),
            "KeySchema": key_schema(table.partition_key, table.sort_key),
            "SSESpecification": {"Enabled": True},
        }
        if table.indexes:
            args["GlobalSecondaryIndexes"] = global_secondary_indexes(table)
        if table.stream_view_type:
            args["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": table.stream_view_type,
            }
        return args

    @staticmethod
    def _check_key_schema(table: Table, description: dict[str, Any]) -> None:
        wanted = [table.partition_key.name] + ([table.sort_key.name] if table.sort_key else [])
        actual = [k["AttributeName"] for k in description["KeySchema"]]
        if wanted != actual:
            raise ProvisionError(
                f"table {table.name} exists with key {actual}, declared {wanted}; "
                "key schemas cannot change in place"
            )

    def _ensure_ttl(self, table: Table) -> None:
        ddb = self._clients("dynamodb")
        current = ddb.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return
        ddb.update_time_to_live(
            TableName=table.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )

    @staticmethod
    def _table_output(description: dict[str, Any]) -> dict[str, str]:
        output = {"name": description["TableName"], "arn": description["TableArn"]}
        if description.get("LatestStreamArn"):
            output["stream_arn"] = description["LatestStreamArn"]
        return output

    # -- SNS, CloudWatch -----------------------------------------------------

    def topic(self, topic: Topic, outputs: Outputs) -> dict[str, str]:
        # CreateTopic is idempotent for the same name and attributes; mutable
        # ones (the key) are set apart, so a changed one does not make it fail.
        attributes = {"FifoTopic": "true"} if topic.fifo else {}
        sns = self._clients("sns")
        arn = sns.create_topic(Name=topic.name, Attributes=attributes)["TopicArn"]
        if topic.kms_key:
            sns.set_topic_attributes(
                TopicArn=arn,
                AttributeName="KmsMasterKeyId",
                AttributeValue=outputs.keys[topic.kms_key]["arn"],
            )
        return {"name": topic.name, "arn": arn}

    def _allow_topics_to_send(self, stack: Stack, queue_key: str, outputs: Outputs) -> None:
        queue = outputs.queues[queue_key]
        topics = [
            outputs.topics[s.topic_key]["arn"]
            for s in stack.subscriptions
            if s.queue_key == queue_key
        ]
        self._clients("sqs").set_queue_attributes(
            QueueUrl=queue["url"],
            Attributes={"Policy": json.dumps(sns_send_policy(queue["arn"], topics))},
        )

    def subscription(self, subscription: Subscription, outputs: Outputs) -> None:
        """Subscribe the queue (once: Subscribe returns the existing one) and set its
        attributes, so a changed filter policy is applied to an existing subscription."""
        sns = self._clients("sns")
        arn = sns.subscribe(
            TopicArn=outputs.topics[subscription.topic_key]["arn"],
            Protocol="sqs",
            Endpoint=outputs.queues[subscription.queue_key]["arn"],
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        sns.set_subscription_attributes(
            SubscriptionArn=arn, AttributeName="RawMessageDelivery", AttributeValue="true"
        )
        policy = subscription.filter_policy_json
        if policy:
            sns.set_subscription_attributes(
                SubscriptionArn=arn, AttributeName="FilterPolicy", AttributeValue=policy
            )

    def email_identity(self, identity: EmailIdentity) -> None:
        # Idempotent; in AWS it mails the address a link that completes the verification.
        self._clients("ses").verify_email_identity(EmailAddress=identity.email)

    def alarm(self, alarm: Alarm, outputs: Outputs) -> None:
        # PutMetricAlarm creates or replaces: idempotent by name.
        topic_arn = outputs.topics[alarm.topic_key]["arn"]
        self._clients("cloudwatch").put_metric_alarm(
            AlarmName=alarm.name,
            AlarmDescription=alarm.description,
            Namespace=alarm.namespace,
            MetricName=alarm.metric_name,
            Dimensions=[{"Name": n, "Value": v} for n, v in alarm.dimensions],
            Statistic=alarm.statistic,
            Period=alarm.period,
            EvaluationPeriods=alarm.evaluation_periods,
            Threshold=float(alarm.threshold),
            ComparisonOperator=alarm.comparison,
            TreatMissingData=alarm.treat_missing_data,
            AlarmActions=[topic_arn],
            OKActions=[topic_arn],
        )

    def dashboard(self, dashboard: Dashboard, region: str) -> None:
        self._clients("cloudwatch").put_dashboard(
            DashboardName=dashboard.name, DashboardBody=dashboard.body(region)
        )
