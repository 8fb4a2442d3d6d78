"""Each declared queue says what it carries, and that agrees with what feeds it.

``ops dlq peek`` decodes a queue's messages by this kind, so a queue fed by a
topic must carry order events and one fed by S3 its notifications; an
on-failure queue's kind follows from what names it as a destination.
"""

from __future__ import annotations

import pytest

from infra.resources import MessageKind
from infra.stack import declare
from infra.stageconfig import StageConfig


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_every_queue_and_its_dlq_carries_the_kind_of_what_feeds_it(stage):
    stack = declare(StageConfig.load(stage))
    fed_by_topics = {s.queue_key for s in stack.subscriptions}
    fed_by_s3 = {n.queue_key for b in stack.buckets for n in b.queue_notifications}

    for queue in stack.queues:
        assert queue.carries is not None, queue.key
        assert stack.carries(queue.name) is stack.carries(queue.dlq_name) is queue.carries
        if queue.key in fed_by_topics:
            assert queue.carries is MessageKind.ORDER_EVENT, queue.key
        if queue.key in fed_by_s3:
            assert queue.carries is MessageKind.S3_EVENT, queue.key
    assert stack.queue("ingest").carries is MessageKind.READINGS_CHUNK
    assert stack.queue("order-intake").carries is MessageKind.ORDER_INTAKE


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_an_on_failure_queue_carries_the_records_of_what_sends_to_it(stage):
    stack = declare(StageConfig.load(stage))
    streams = {s.on_failure_queue_key for s in stack.event_sources if s.on_failure_queue_key}
    invokes = {a.on_failure_queue_key for a in stack.async_invokes}

    for failures in stack.failure_queues:
        expected = (
            MessageKind.STREAM_BATCH_FAILURE
            if failures.key in streams
            else MessageKind.ASYNC_INVOKE_FAILURE
        )
        assert failures.key in streams | invokes
        assert stack.carries(failures.name) is expected
    assert stack.carries("not-declared") is None
