"""Deletes a declared stack's resources: the inverse of :mod:`infra.provision`.

Used by ``python -m infra destroy`` after ``chalice delete`` has removed the
functions. Every step tolerates a resource that is already gone, so a destroy
that stopped half-way can simply be run again. The bucket is emptied first,
every object version included, because S3 refuses to delete a bucket that
holds anything.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from infra import provision_keys
from infra.resources import Stack

GONE = {
    "NoSuchBucket",
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFound",
    "ResourceNotFound",
}


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class Teardown:
    def __init__(self, clients: Any):
        self._clients = clients

    def destroy(self, stack: Stack) -> list[str]:
        """Delete everything the stack declares; returns what was deleted."""
        deleted: list[str] = []
        cloudwatch = self._clients("cloudwatch")
        names = [alarm.name for alarm in stack.alarms]
        for start in range(0, len(names), 100):  # both calls take at most 100 names
            chunk = names[start : start + 100]
            existing = [
                alarm["AlarmName"]
                for alarm in cloudwatch.describe_alarms(AlarmNames=chunk)["MetricAlarms"]
            ]
            if existing:
                cloudwatch.delete_alarms(AlarmNames=existing)
                deleted += [f"alarm {name}" for name in existing]
        for dashboard in stack.dashboards:
            if self._gone_ok(cloudwatch.delete_dashboards, DashboardNames=[dashboard.name]):
                deleted.append(f"dashboard {dashboard.name}")
        ses = self._clients("ses")
        for identity in stack.email_identities:
            if self._gone_ok(ses.delete_identity, Identity=identity.email):
                deleted.append(f"email identity {identity.email}")
        sns = self._clients("sns")
        # Subscriptions go with their topic.
        for topic in stack.topics:
            arn = self._topic_arn(topic.name)
            if arn and self._gone_ok(sns.delete_topic, TopicArn=arn):
                deleted.append(f"topic {topic.name}")
        for bucket in stack.buckets:
            if self._delete_bucket(bucket.name):
                deleted.append(f"bucket {bucket.name}")
        ddb = self._clients("dynamodb")
        for table in stack.tables:
            if self._gone_ok(ddb.delete_table, TableName=table.name):
                deleted.append(f"table {table.name}")
        sqs = self._clients("sqs")
        names = [n for q in stack.queues for n in (q.name, q.dlq_name)]
        names += [q.name for q in stack.failure_queues]
        for name in names:
            try:
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError as error:
                if _code(error) in GONE:
                    continue
                raise
            sqs.delete_queue(QueueUrl=url)
            deleted.append(f"queue {name}")
        for group in stack.log_groups:
            if provision_keys.delete_log_group(self._clients, group):
                deleted.append(f"log group {group.name}")
        # Last: until its deletion date, the key still decrypts what it encrypted.
        for key in stack.keys:
            if provision_keys.delete_key(self._clients, key):
                deleted.append(f"key {key.alias}")
        return deleted

    @staticmethod
    def _gone_ok(call, **kwargs) -> bool:
        try:
            call(**kwargs)
        except ClientError as error:
            if _code(error) in GONE:
                return False
            raise
        return True

    def _topic_arn(self, name: str) -> str | None:
        paginator = self._clients("sns").get_paginator("list_topics")
        for page in paginator.paginate():
            for topic in page.get("Topics", []):
                if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                    return topic["TopicArn"]
        return None

    def _delete_bucket(self, name: str) -> bool:
        s3 = self._clients("s3")
        try:
            paginator = s3.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=name):
                doomed = [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                if doomed:
                    s3.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
            s3.delete_bucket(Bucket=name)
        except ClientError as error:
            if _code(error) in GONE:
                return False
            raise
        return True
