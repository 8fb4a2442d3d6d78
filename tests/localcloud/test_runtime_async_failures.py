"""Asynchronous invocations that keep failing: retries, request ids, the on-failure queue."""

from __future__ import annotations

import json
from dataclasses import replace

from chalice import Chalice

from infra.functions import AsyncInvokeSettings
from infra.provision import Provisioner
from infra.resources import Bucket, FailureQueue
from tests.localcloud.runtime_harness import (  # noqa: F401
    Cloud,
    _cloud,
    _moto_endpoint,
    wait_for,
)


def test_an_s3_event_that_keeps_failing_goes_to_the_declared_failure_queue(cloud: Cloud):
    """AWS: Lambda tries an asynchronous event 1 + MaximumRetryAttempts times, with
    the same request id each time, then sends a record of it to the function's
    on-failure destination: condition RetriesExhausted, the attempts, the event
    as requestPayload, and the error as responsePayload."""
    bucket = Bucket(key="uploads", name="uploads", tls_only=False)
    stack, _ = cloud.provision(buckets=(bucket,))
    stack = replace(
        stack,
        failure_queues=(FailureQueue(key="failures", name="ingest-failures"),),
        async_invokes=(AsyncInvokeSettings(function="ingest", on_failure_queue_key="failures"),),
    )
    outputs = Provisioner(cloud.clients).apply(stack)
    app, request_ids = Chalice("t"), []

    @app.on_s3_event(bucket="uploads", prefix="in/")
    def ingest(event):
        request_ids.append(event.context.aws_request_id)
        raise RuntimeError("cannot read it")

    # A 1 s timeout: the internal queue retries 2 s after each failure.
    cloud.run(app, stack, outputs, cloud.config({"ingest": {"lambda_timeout": 1}}))
    cloud.clients("s3").put_object(Bucket="uploads", Key="in/x.csv", Body=b"x")

    [message] = cloud.drain(outputs.queues["failures"]["url"], want=1, timeout=30)
    record = json.loads(message["Body"])
    assert len(request_ids) == 3 and len(set(request_ids)) == 1
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["requestId"] == request_ids[0]
    assert record["requestContext"]["functionArn"].endswith(":function:t-local-ingest:$LATEST")
    assert record["responsePayload"] == {
        "errorType": "RuntimeError",
        "errorMessage": "cannot read it",
    }
    [event_record] = record["requestPayload"]["Records"]
    assert event_record["s3"]["object"]["key"].endswith("x.csv")
    # Nothing was left behind in the runtime's own DLQ for that function.
    failed = cloud.clients("sqs").get_queue_url(QueueName="t-local-ingest-lc-failed")["QueueUrl"]
    assert cloud.depth(failed) == (0, 0)
