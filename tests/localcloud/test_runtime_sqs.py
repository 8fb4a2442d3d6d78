"""SQS event-source semantics, each test stating the AWS behaviour it reproduces."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from chalice import Chalice

from chalicelib.batch import RetryPolicy, sqs_batch
from infra.functions import EventSourceSettings
from infra.resources import Queue
from tests.localcloud.runtime_harness import (  # noqa: F401
    Cloud,
    Recorder,
    _cloud,
    _moto_endpoint,
    wait_for,
)


def _one_queue(cloud: Cloud, *, name="jobs", visibility=1, max_receive=5, report=True):
    queue = Queue(
        key="jobs", name=name, visibility_timeout=visibility, max_receive_count=max_receive
    )
    sources = (EventSourceSettings(function="consume", source_key="jobs"),) if report else ()
    stack, outputs = cloud.provision(queues=(queue,), event_sources=sources)
    return stack, outputs, outputs.queues["jobs"]["url"], outputs.queues["jobs-dlq"]["url"]


def test_batch_size_bounds_each_invocation(cloud: Cloud):
    """AWS: Lambda invokes the function with at most BatchSize messages per batch."""
    stack, outputs, url, _ = _one_queue(cloud)
    cloud.send(url, [f"m{i}" for i in range(7)])
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs", batch_size=3)
    def consume(event):
        seen.add(event.to_dict()["Records"])

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert sorted(seen.bodies()) == sorted(f"m{i}" for i in range(7))
    assert all(1 <= len(call) <= 3 for call in seen.calls)


def test_batching_window_gathers_a_fuller_batch(cloud: Cloud):
    """AWS: with MaximumBatchingWindowInSeconds, Lambda keeps gathering messages
    until the batch is full or the window has passed, then invokes once."""
    stack, outputs, url, _ = _one_queue(cloud, visibility=10)
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs", batch_size=4, maximum_batching_window_in_seconds=5)
    def consume(event):
        seen.add(event.to_dict()["Records"])

    runtime = cloud.run(app, stack, outputs)
    for i in range(4):
        cloud.send(url, [f"m{i}"])
        time.sleep(0.1)
    assert runtime.wait_until_idle(20)
    assert [len(call) for call in seen.calls] == [4]


def test_in_flight_messages_stay_invisible(cloud: Cloud):
    """AWS: a message in a batch being processed is invisible to other consumers
    until its visibility timeout ends or Lambda deletes it."""
    stack, outputs, url, _ = _one_queue(cloud, visibility=30)
    release = threading.Event()
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs", batch_size=1)
    def consume(event):
        seen.add(event.to_dict()["Records"])
        release.wait(10)

    cloud.send(url, ["slow"])
    runtime = cloud.run(app, stack, outputs)
    try:
        assert wait_for(lambda: seen.calls)
        assert cloud.depth(url) == (0, 1)
        other = cloud.clients("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=0)
        assert not other.get("Messages")
    finally:
        release.set()
    assert runtime.wait_until_idle(20)
    assert seen.bodies() == ["slow"]


def test_raising_handler_fails_the_whole_batch(cloud: Cloud):
    """AWS: if the function raises, every message of the batch becomes visible
    again after the visibility timeout and is redelivered."""
    stack, outputs, url, _ = _one_queue(cloud)
    cloud.send(url, ["a", "b"])
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def consume(event):
        if seen.add(event.to_dict()["Records"]) == 1:
            raise RuntimeError("boom")

    runtime = cloud.run(app, stack, outputs)
    assert wait_for(lambda: len(seen.bodies()) >= 4)
    assert runtime.wait_until_idle(20)
    assert sorted(seen.bodies()) == ["a", "a", "b", "b"]
    receive_counts = {r["attributes"]["ApproximateReceiveCount"] for r in seen.calls[-1]}
    assert receive_counts == {"2"}
    stats = runtime.stats()["consume"]
    assert stats["errors"] == 1 and stats["last_error"] == "RuntimeError: boom"


def test_partial_batch_response_returns_only_named_messages(cloud: Cloud):
    """AWS (ReportBatchItemFailures): only the messages named in batchItemFailures
    become visible again; the rest of the batch is deleted."""
    stack, outputs, url, _ = _one_queue(cloud)
    cloud.send(url, ["a", "b", "c"])
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def consume(event):
        records = event.to_dict()["Records"]
        seen.add(records)
        failed = [r["messageId"] for r in records if r["body"] == "b"]
        if seen.bodies().count("b") == 1:
            return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
        return None

    runtime = cloud.run(app, stack, outputs)
    assert wait_for(lambda: seen.bodies().count("b") == 2)
    assert runtime.wait_until_idle(20)
    assert sorted(seen.bodies()) == ["a", "b", "b", "c"]


@pytest.mark.parametrize(
    "malformed",
    [
        lambda ids: {"batchItemFailures": [{"itemIdentifier": ""}]},
        lambda ids: {"batchItemFailures": [{"itemIdentifier": None}]},
        lambda ids: {"batchItemFailures": [{"messageId": ids[0]}]},
        lambda ids: {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
    ],
    ids=["empty-id", "null-id", "wrong-key", "unknown-id"],
)
def test_malformed_batch_response_fails_the_whole_batch(cloud: Cloud, malformed):
    """AWS: an empty or null itemIdentifier, a wrong key, or an identifier that
    matches no message makes Lambda treat the whole batch as failed."""
    stack, outputs, url, _ = _one_queue(cloud)
    cloud.send(url, ["a", "b"])
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def consume(event):
        records = event.to_dict()["Records"]
        if seen.add(records) == 1:
            return malformed([r["messageId"] for r in records])
        return None

    runtime = cloud.run(app, stack, outputs)
    assert wait_for(lambda: len(seen.bodies()) >= 4)
    assert runtime.wait_until_idle(20)
    assert sorted(seen.bodies()) == ["a", "a", "b", "b"]
    assert "invalid batch response" in runtime.stats()["consume"]["last_error"]


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["null", "empty", "empty-list", "null-list"],
)
def test_empty_batch_response_is_complete_success(cloud: Cloud, response: Any):
    """AWS: a null or empty response, or a null or empty batchItemFailures list,
    is a complete success: every message is deleted."""
    stack, outputs, url, _ = _one_queue(cloud)
    cloud.send(url, ["a", "b"])
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def consume(event):
        seen.add(event.to_dict()["Records"])
        return response

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert sorted(seen.bodies()) == ["a", "b"]


def test_response_ignored_without_report_batch_item_failures(cloud: Cloud):
    """AWS: without FunctionResponseTypes ReportBatchItemFailures (the default for
    an undeclared mapping), Lambda ignores the response body: the batch succeeds."""
    stack, outputs, url, _ = _one_queue(cloud, report=False)
    cloud.send(url, ["a"])
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def consume(event):
        records = event.to_dict()["Records"]
        seen.add(records)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert seen.bodies() == ["a"]


def test_redrive_to_dlq_after_max_receive_count(cloud: Cloud):
    """AWS: a message received maxReceiveCount times without being deleted is
    moved to the queue's dead-letter queue."""
    stack, outputs, url, dlq_url = _one_queue(cloud, max_receive=2)
    cloud.send(url, ["poison"])
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def consume(event):
        seen.add(event.to_dict()["Records"])
        raise ValueError("poison")

    runtime = cloud.run(app, stack, outputs)
    assert wait_for(lambda: cloud.depth(dlq_url)[0] == 1, timeout=20)
    assert runtime.wait_until_idle(20)
    assert seen.bodies() == ["poison", "poison"]
    assert [m["Body"] for m in cloud.drain(dlq_url)] == ["poison"]


def test_fifo_keeps_group_order_and_does_not_block_other_groups(cloud: Cloud):
    """AWS (FIFO): at most one batch per message group is in flight; a failure
    holds the group's later messages back so none overtakes it, while other
    message groups keep flowing."""
    stack, outputs, url, _ = _one_queue(cloud, name="jobs.fifo")
    bodies = ["a1", "a2", "a3", "b1", "b2"]
    cloud.send(url, bodies, MessageGroupId=lambda b: b[0], MessageDeduplicationId=lambda b: b)
    app, lock = Chalice("t"), threading.Lock()
    done: list[str] = []
    active: set[str] = set()
    overlaps: list[str] = []
    attempts: dict[str, int] = {}

    batch_sizes: list[int] = []

    @app.on_sqs_message(queue="jobs.fifo", batch_size=1)
    def consume(event):
        # Observations only: asserting here would fail on the runtime's thread.
        records = event.to_dict()["Records"]
        batch_sizes.append(len(records))
        record = records[0]
        body, group = record["body"], record["attributes"]["MessageGroupId"]
        with lock:
            if group in active:
                overlaps.append(group)
            active.add(group)
            attempts[body] = attempts.get(body, 0) + 1
        time.sleep(0.05)
        with lock:
            active.discard(group)
            if body == "a1" and attempts[body] == 1:
                raise RuntimeError("first attempt fails")
            done.append(body)

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert set(batch_sizes) == {1}
    assert not overlaps
    assert [b for b in done if b[0] == "a"] == ["a1", "a2", "a3"]
    assert [b for b in done if b[0] == "b"] == ["b1", "b2"]
    # Group b finished while a1 waited out its visibility timeout.
    assert done.index("b2") < done.index("a1")


def test_fifo_partial_failure_keeps_later_messages_of_the_group(cloud: Cloud):
    """AWS (FIFO): after a failed message, the later messages of its group must
    not be deleted ahead of it; the runtime returns them with the failure."""
    stack, outputs, url, _ = _one_queue(cloud, name="jobs.fifo")
    cloud.send(url, ["a1", "a2", "a3"], MessageGroupId="a", MessageDeduplicationId=lambda b: b)
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs.fifo", batch_size=10)
    def consume(event):
        records = event.to_dict()["Records"]
        if seen.add(records) == 1:
            failed = [r["messageId"] for r in records if r["body"] == "a2"]
            return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
        return None

    runtime = cloud.run(app, stack, outputs)
    assert wait_for(lambda: len(seen.calls) >= 2)
    assert runtime.wait_until_idle(20)
    assert [r["body"] for r in seen.calls[0]] == ["a1", "a2", "a3"]
    assert [r["body"] for call in seen.calls[1:] for r in call] == ["a2", "a3"]


def test_timed_out_handler_is_reported_and_its_batch_retried(cloud: Cloud):
    """AWS: an invocation that exceeds the function's timeout is stopped, counted
    as an error (timeout), and its batch is retried after the visibility timeout."""
    stack, outputs, url, _ = _one_queue(cloud, visibility=2)
    cloud.send(url, ["slow"])
    app, seen, release = Chalice("t"), Recorder(), threading.Event()

    @app.on_sqs_message(queue="jobs", batch_size=1)
    def consume(event):
        if seen.add(event.to_dict()["Records"]) == 1:
            release.wait(10)  # far past the 1 s timeout

    config = cloud.config(functions={"consume": {"lambda_timeout": 1}})
    runtime = cloud.run(app, stack, outputs, config)
    try:
        assert wait_for(lambda: len(seen.calls) >= 2, timeout=20)
        assert runtime.wait_until_idle(20)
    finally:
        release.set()
    stats = runtime.stats()["consume"]
    assert stats["timeouts"] == 1 and stats["errors"] == 1
    assert stats["invocations"] == 2
    assert "timed out" in stats["last_error"]


def test_concurrency_is_bounded_by_maximum_concurrency(cloud: Cloud):
    """AWS: MaximumConcurrency caps how many batches of one SQS mapping run at once."""
    stack, outputs, url, _ = _one_queue(cloud, visibility=10)
    cloud.send(url, [f"m{i}" for i in range(8)])
    app, lock = Chalice("t"), threading.Lock()
    active, peak, count = [0], [0], [0]

    @app.on_sqs_message(queue="jobs", batch_size=1, maximum_concurrency=2)
    def consume(event):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
            count[0] += 1

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert count[0] == 8
    assert 1 <= peak[0] <= 2


def test_the_declared_maximum_concurrency_bounds_concurrent_invocations(cloud: Cloud):
    """AWS: a mapping's ScalingConfig.MaximumConcurrency caps its concurrent batches.

    The bound comes from the declaration, as deployed (the decorator sets
    none here). Each invocation holds its slot until released, so a runtime
    that ran more at once would show it in the count of those holding one.
    """
    queue = Queue(key="jobs", name="jobs", visibility_timeout=30)
    source = EventSourceSettings(function="consume", source_key="jobs", maximum_concurrency=2)
    stack, outputs = cloud.provision(queues=(queue,), event_sources=(source,))
    cloud.send(outputs.queues["jobs"]["url"], [f"m{i}" for i in range(6)])
    app, lock, release = Chalice("t"), threading.Lock(), threading.Event()
    active, peak, done = [0], [0], [0]

    @app.on_sqs_message(queue="jobs", batch_size=1)
    def consume(event):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        release.wait(20)
        with lock:
            active[0] -= 1
            done[0] += 1

    runtime = cloud.run(app, stack, outputs)
    try:
        assert wait_for(lambda: active[0] == 2, timeout=20)
        # The runtime's default (4) would start a third while two are held.
        assert not wait_for(lambda: active[0] > 2, timeout=2)
    finally:
        release.set()
    assert runtime.wait_until_idle(20)
    assert done[0] == 6 and peak[0] == 2


def test_event_context_and_environment_are_lambda_shaped(cloud: Cloud):
    """AWS: an SQS batch event carries each record's messageId, receiptHandle,
    body, attributes, messageAttributes, md5OfBody, eventSource, eventSourceARN
    and awsRegion; the context has the function's name, ARN, memory and remaining
    time; the stage's and the function's environment variables are set."""
    stack, outputs, url, _ = _one_queue(cloud)
    cloud.clients("sqs").send_message(
        QueueUrl=url,
        MessageBody="hello",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "greeting"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    app, seen = Chalice("t"), Recorder()
    env: dict[str, Any] = {}

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def consume(event):
        env.update(stage=os.environ.get("STAGE_VAR"), own=os.environ.get("OWN_VAR"))
        env["remaining"] = event.context.get_remaining_time_in_millis()
        seen.add(event.to_dict()["Records"], event.context)

    config = cloud.config(
        functions={
            "consume": {
                "lambda_timeout": 7,
                "lambda_memory_size": 256,
                "environment_variables": {"OWN_VAR": "mine"},
            }
        },
        env={"STAGE_VAR": "stage"},
    )
    runtime = cloud.run(app, stack, outputs, config)
    assert runtime.wait_until_idle(20)
    (record,) = seen.calls[0]
    assert set(record) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == outputs.queues["jobs"]["arn"]
    assert record["awsRegion"] == "us-east-1"
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "greeting",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    context = seen.contexts[0]
    assert context.function_name == "t-local-consume"
    assert context.memory_limit_in_mb == 256
    assert context.invoked_function_arn.endswith(":function:t-local-consume")
    assert context.aws_request_id
    assert 0 < env["remaining"] <= 7000
    assert env["stage"] == "stage" and env["own"] == "mine"
    # Stopping the runtime puts the process environment back.
    runtime.stop()
    assert "STAGE_VAR" not in os.environ and "OWN_VAR" not in os.environ


def test_fifo_records_carry_group_and_sequence(cloud: Cloud):
    """AWS: FIFO records add MessageGroupId, MessageDeduplicationId and
    SequenceNumber to their attributes."""
    stack, outputs, url, _ = _one_queue(cloud, name="jobs.fifo")
    cloud.send(url, ["x"], MessageGroupId="g", MessageDeduplicationId="d")
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs.fifo", batch_size=10)
    def consume(event):
        seen.add(event.to_dict()["Records"])

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    attributes = seen.calls[0][0]["attributes"]
    assert attributes["MessageGroupId"] == "g"
    assert "SequenceNumber" in attributes


def test_filter_criteria_drop_and_delete_unmatched_messages(cloud: Cloud):
    """AWS: with FilterCriteria, Lambda invokes only for messages whose body
    matches a pattern, and deletes the messages that match none."""
    queue = Queue(key="jobs", name="jobs", visibility_timeout=1)
    source = EventSourceSettings(
        function="consume", source_key="jobs", filter_patterns=('{"body": {"kind": ["keep"]}}',)
    )
    stack, outputs = cloud.provision(queues=(queue,), event_sources=(source,))
    url = outputs.queues["jobs"]["url"]
    cloud.send(url, ['{"kind": "keep", "n": 1}', '{"kind": "drop"}', "not json"])
    app, seen = Chalice("t"), Recorder()

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def consume(event):
        seen.add(event.to_dict()["Records"])

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert seen.bodies() == ['{"kind": "keep", "n": 1}']
    assert cloud.depth(url) == (0, 0)


def _flaky_consumer(app: Chalice, queue: str, sqs: Any, seen: Recorder, fails: dict[str, int]):
    """A consumer that backs off (chalicelib.batch); ``fails[body]`` receives fail."""
    policy = RetryPolicy(base_seconds=1)

    @app.on_sqs_message(queue=queue, batch_size=10)
    def consume(event):
        seen.add(event.to_dict()["Records"])

        def handle(record):
            if int(record["attributes"]["ApproximateReceiveCount"]) <= fails.get(record.body, 0):
                raise RuntimeError(f"{record.body} fails this time")

        return sqs_batch(event.to_dict(), event.context, handle, retry=policy, sqs=sqs)

    return consume


def _receive_counts(seen: Recorder, body: str) -> list[str]:
    with seen.lock:
        calls = list(seen.calls)
    return [
        r["attributes"]["ApproximateReceiveCount"] for c in calls for r in c if r["body"] == body
    ]


def test_failed_messages_come_back_on_the_functions_backoff_not_the_visibility_timeout(
    cloud: Cloud,
):
    """AWS: a function may change the visibility of the messages it reports as
    failed (ChangeMessageVisibility) before it returns; each comes back when
    its new timeout ends, not the queue's, and the runtime leaves it so."""
    stack, outputs, url, _ = _one_queue(cloud, visibility=60)
    cloud.send(url, ["flaky", "fine"])
    app, seen = Chalice("t"), Recorder()
    _flaky_consumer(app, "jobs", cloud.clients("sqs"), seen, {"flaky": 2})

    runtime = cloud.run(app, stack, outputs)
    # Three receives within 30 s: without backoff the second could come only
    # after the queue's 60 s visibility timeout. (Backoff: about 1 s, then 2 s.)
    assert wait_for(lambda: len(_receive_counts(seen, "flaky")) == 3, timeout=30)
    assert runtime.wait_until_idle(20)
    assert _receive_counts(seen, "flaky") == ["1", "2", "3"]
    assert _receive_counts(seen, "fine") == ["1"]
    assert cloud.depth(url) == (0, 0)


def test_a_backed_off_fifo_group_comes_back_together_and_in_order(cloud: Cloud):
    """AWS (FIFO): the function backs off a failed message and the later
    messages of its group that failed with it; the group stays blocked until
    they are visible again, then comes back in order; other groups go on."""
    stack, outputs, url, _ = _one_queue(cloud, name="jobs.fifo", visibility=60)
    cloud.send(
        url,
        ["a1", "a2", "a3", "b1"],
        MessageGroupId=lambda b: b[0],
        MessageDeduplicationId=lambda b: b,
    )
    app, seen = Chalice("t"), Recorder()
    _flaky_consumer(app, "jobs.fifo", cloud.clients("sqs"), seen, {"a1": 1})

    runtime = cloud.run(app, stack, outputs)
    assert wait_for(lambda: len(_receive_counts(seen, "a3")) == 2, timeout=30)
    assert runtime.wait_until_idle(20)
    group_a = [r["body"] for call in seen.calls for r in call if r["body"][0] == "a"]
    assert group_a == ["a1", "a2", "a3", "a1", "a2", "a3"]
    assert _receive_counts(seen, "b1") == ["1"]
    assert cloud.depth(url) == (0, 0)
