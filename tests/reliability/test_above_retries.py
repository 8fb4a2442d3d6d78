"""Faults that botocore's retries do not absorb, so the app's own code must.

* BatchWriteItem leaves part of its items unprocessed: the writer retries
  exactly those, with its own backoff.
* SendMessageBatch reports failed entries: with ``SenderFault: false`` the
  ingest resends them; with ``SenderFault: true`` it fails the attempt, and SQS
  delivers the notification again.
* S3's connection breaks half-way through an object's body: the attempt fails
  and the object is read again from the start.
"""

from __future__ import annotations

from tests.reliability.faults import (
    BrokenObjectStream,
    Every,
    FailBatchEntries,
    PartialBatchWrite,
)
from tests.reliability.world import assert_invariant, csv_file


def test_unprocessed_items_are_written_by_the_writers_own_retries(worlds):
    fault = PartialBatchWrite(Every(1))
    with worlds.new(fault) as world:
        world.upload(csv_file(12, 2))
        world.drain()
        # Every chunk's first BatchWriteItem wrote half; the rest went on retries.
        assert fault.injected >= 3
        assert worlds.clock.sleeps, "the writer retried without backing off"
        assert_invariant(world)


def test_failed_batch_entries_that_are_not_the_senders_fault_are_sent_again(worlds):
    fault = FailBatchEntries(sender_fault=False, select=Every(1))
    with worlds.new(fault) as world:
        world.upload(csv_file(20, 2))  # 5 chunks: sends of 2, 2 and 1
        world.drain()
        assert fault.injected >= 2
        assert_invariant(world)


def test_an_entry_refused_as_the_senders_fault_fails_the_attempt_and_sqs_retries(worlds):
    fault = FailBatchEntries(sender_fault=True, select=Every(99))  # the first send only
    with worlds.new(fault) as world:
        world.upload(csv_file(12, 2))
        world.drain()
        assert fault.injected == 1
        assert world.job(world.uploads[0])["last_error"]["code"] == "queue_send_failed"
        assert_invariant(world)


def test_an_object_body_that_breaks_half_way_is_read_again(worlds):
    fault = BrokenObjectStream(Every(99))  # the first read only
    with worlds.new(fault) as world:
        world.upload(csv_file(40, 3))
        world.drain()
        assert fault.injected == 1
        assert world.job(world.uploads[0])["last_error"] is not None
        assert_invariant(world)
