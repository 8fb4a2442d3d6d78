"""S3 and SNS event sources, and the metrics the runtime publishes."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import unquote_plus

from chalice import Chalice

from infra.resources import Bucket, Queue, QueueNotification
from tests.localcloud.runtime_harness import (  # noqa: F401
    Cloud,
    _cloud,
    _moto_endpoint,
    wait_for,
)


def test_s3_events_reach_on_s3_event_without_test_events(cloud: Cloud):
    """AWS: S3 invokes an on_s3_event function with the Records of each
    matching ObjectCreated event. Locally the bucket notifies an internal queue,
    merged with the bucket's existing notifications (which keep working), and
    the s3:TestEvent that the notification set-up sends never reaches the handler."""
    existing = Queue(key="uploads-q", name="uploads-q", visibility_timeout=30)
    bucket = Bucket(
        key="uploads",
        name="uploads",
        tls_only=False,  # moto's server is plain http: a TLS-only policy denies every put
        queue_notifications=(
            QueueNotification(queue_key="uploads-q", prefix="in/", suffix=".csv"),
        ),
    )
    stack, outputs = cloud.provision(queues=(existing,), buckets=(bucket,))
    app, seen = Chalice("t"), []

    @app.on_s3_event(bucket="uploads", prefix="in/", suffix=".csv")
    def ingest(event):
        seen.extend(event.to_dict()["Records"])

    runtime = cloud.run(app, stack, outputs)
    cloud.clients("s3").put_object(Bucket="uploads", Key="in/a+b.csv", Body=b"x")
    cloud.clients("s3").put_object(Bucket="uploads", Key="other/skip.csv", Body=b"x")
    assert wait_for(lambda: seen)
    assert runtime.wait_until_idle(20)
    # Keys arrive URL-encoded, as from S3 (moto also encodes the slashes).
    assert [unquote_plus(r["s3"]["object"]["key"]) for r in seen] == ["in/a+b.csv"]
    assert seen[0]["eventSource"] == "aws:s3"
    assert seen[0]["eventName"].startswith("ObjectCreated:")
    # The provisioned notification survived the merge.
    bodies = [json.loads(m["Body"]) for m in cloud.drain(outputs.queues["uploads-q"]["url"], 2)]
    assert any(b.get("Records") for b in bodies)


def test_sns_messages_reach_on_sns_message_in_lambdas_shape(cloud: Cloud):
    """AWS: SNS invokes an on_sns_message function with one record per message:
    EventSource aws:sns, EventSubscriptionArn, and Sns with Message, Subject,
    MessageAttributes, TopicArn, Type, SigningCertUrl and UnsubscribeUrl."""
    stack, outputs = cloud.provision()
    topic_arn = cloud.clients("sns").create_topic(Name="events")["TopicArn"]
    app, seen = Chalice("t"), []

    @app.on_sns_message(topic="events")
    def notify(event):
        seen.append((event.message, event.subject, event.to_dict()["Records"][0]))

    runtime = cloud.run(app, stack, outputs)
    cloud.clients("sns").publish(
        TopicArn=topic_arn,
        Message="hello",
        Subject="greeting",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "order_created"}},
    )
    assert wait_for(lambda: seen)
    assert runtime.wait_until_idle(20)
    message, subject, record = seen[0]
    assert (message, subject) == ("hello", "greeting")
    assert record["EventSource"] == "aws:sns"
    assert record["EventSubscriptionArn"].startswith(topic_arn)
    sns = record["Sns"]
    assert sns["TopicArn"] == topic_arn and sns["Type"] == "Notification"
    assert sns["MessageAttributes"]["kind"]["Value"] == "order_created"
    assert {"SigningCertUrl", "UnsubscribeUrl", "Timestamp", "MessageId"} <= set(sns)


def test_invocation_and_emf_metrics_reach_cloudwatch(cloud: Cloud):
    """AWS: Lambda publishes AWS/Lambda Invocations, Errors and Duration per
    FunctionName, and CloudWatch turns a handler's EMF log lines into metrics."""
    queue = Queue(key="jobs", name="jobs", visibility_timeout=30)
    stack, outputs = cloud.provision(queues=(queue,))
    cloud.send(outputs.queues["jobs"]["url"], ["a"])
    app = Chalice("t")

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def consume(event):
        emf = {
            "_aws": {
                "Timestamp": 1_700_000_000_000,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "tests",
                        "Dimensions": [["service"]],
                        "Metrics": [{"Name": "RowsWritten", "Unit": "Count"}],
                    }
                ],
            },
            "service": "eventflow",
            "RowsWritten": 7,
        }
        print(json.dumps(emf))

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    cloudwatch = cloud.clients("cloudwatch")

    def total(namespace, name, dimensions, start):
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=name,
            Dimensions=dimensions,
            StartTime=start,
            EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        return sum(p["Sum"] for p in points)

    recent = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    function = [{"Name": "FunctionName", "Value": "t-local-consume"}]
    assert wait_for(lambda: total("AWS/Lambda", "Invocations", function, recent) == 1)
    assert total("AWS/Lambda", "Errors", function, recent) == 0
    emf_start = dt.datetime(2023, 11, 14, tzinfo=dt.UTC)
    service = [{"Name": "service", "Value": "eventflow"}]
    assert wait_for(lambda: total("tests", "RowsWritten", service, emf_start) == 7)
    assert runtime.stats()["consume"] == {
        "invocations": 1,
        "errors": 0,
        "timeouts": 0,
        "last_error": None,
    }
