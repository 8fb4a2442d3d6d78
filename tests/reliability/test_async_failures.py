"""Asynchronous ingest invocations that fail are not dropped (the ``dev`` stage's trigger).

S3 invokes ``ingest_from_s3`` asynchronously. Lambda tries an event three
times (with one request id), then sends its record to the declared
on-failure queue, where an alarm fires. After the fix, ``python -m ops dlq
replay ingest-failures`` ingests the objects again, and nothing is lost.
The world plays Lambda's asynchronous retries; the record is the one the
local cloud writes (``localcloud.runtime.destinations``).
"""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from localcloud.runtime.destinations import failure_record
from localcloud.runtime.invoke import ERROR, Outcome
from ops.__main__ import main as ops_main
from tests import events
from tests.reliability.faults import Persistent
from tests.reliability.world import assert_invariant, csv_file


@pytest.fixture(autouse=True)
def short_polls(monkeypatch):
    monkeypatch.setattr("ops.queues.WAIT_SECONDS", 0)


def ops(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = ops_main(["--stage", "dev", *argv], console=Console(file=out, width=240))
    return code, out.getvalue()


def invoke_async(world, event) -> list[str]:
    """Lambda's asynchronous invocation: 1 + MaximumRetryAttempts tries, then the record."""
    settings = world.stack.async_invoke("ingest_from_s3")
    context = world.context("ingest_from_s3")
    errors = []
    attempts = 1 + settings.maximum_retry_attempts
    for _ in range(attempts):
        try:
            world.invoke("ingest_from_s3", event, context)
        except Exception as error:  # the function failed: Lambda retries it
            errors.append(f"{type(error).__name__}: {error}")
            continue
        return errors
    record = failure_record(
        event=event,
        outcome=Outcome(ERROR, error=errors[-1]),
        attempts=attempts,
        request_id=context.aws_request_id,
        function_name=context.function_name,
        region=world.outputs.region,
    )
    failures = world.outputs.queues[settings.on_failure_queue_key]["url"]
    world.admin.sqs.send_message(QueueUrl=failures, MessageBody=json.dumps(record))
    return errors


def test_an_ingest_that_failed_every_attempt_is_kept_and_replayed_after_the_fix(worlds):
    denied = Persistent(lambda call: call.name == "s3:GetObject", code="AccessDenied")
    with worlds.new(denied, stage="dev") as world:
        upload = world.upload(csv_file(12, 2))
        event = events.s3_event(
            events.s3_record(upload.ref.bucket, upload.ref.key, upload.ref.etag or "")
        )
        errors = invoke_async(world, event)
        assert len(errors) == 3 and all("AccessDenied" in e for e in errors)
        assert world.queue_depths()["ingest-failures"] == (1, 0)  # the alarm's metric

        code, out = ops("dlq", "peek", "ingest-failures")
        assert code == 0 and "gave up after 3 attempt(s)" in out and "AccessDenied" in out
        assert world.job(upload)["ingest_id"] in out

        denied.enabled = False  # the policy is fixed
        code, out = ops("dlq", "replay", "ingest-failures")
        assert code == 0 and "replayed 1 record(s)" in out, out
        world.drain(order=("ingest",))

        assert_invariant(world)  # the failure queue is empty too


def test_a_redrive_of_an_on_failure_queue_says_to_replay_instead(worlds):
    with worlds.new(stage="dev"):
        code, out = ops("dlq", "redrive", "ingest-failures")
    assert code == 2 and "dlq replay ingest-failures" in out
