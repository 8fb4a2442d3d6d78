"""The parse lease: a second notification of an object does not parse and send it
again while the first parse runs, or after it; a parse that died is redone.

S3 may deliver a notification twice (and moto always sends two for a
multipart upload). The job records who parses the object and until when;
another delivery that finds the lease held, or the object parsed, ends at
once without reading the object or sending a chunk.
"""

from __future__ import annotations

from chalicelib.readings import handlers
from chalicelib.services import Services
from tests.reliability.faults import Call, FaultInjector, Rule
from tests.reliability.world import FaultyClients, assert_invariant, csv_file, shared_session


class WhileSending(Rule):
    """At the first SendMessageBatch, runs ``action`` (another delivery, meanwhile)."""

    def __init__(self, action):
        super().__init__()
        self.action = action

    def apply(self, call: Call, execute):
        if call.name == "sqs:SendMessageBatch" and not self.injected:
            self.injected += 1
            self.action()
        return None


def test_a_second_notification_while_the_first_parse_runs_sends_nothing(worlds):
    seen: dict = {}

    def deliver_duplicate():
        # Another function instance takes the duplicate notification meanwhile.
        world = worlds.active
        messages = world.admin.sqs.receive_message(
            QueueUrl=world.outputs.queues["s3-events"]["url"], MaxNumberOfMessages=1
        )["Messages"]
        other = FaultInjector()
        services = Services(world.settings, FaultyClients(shared_session(), other), world.clock)
        event = {"Records": [{"messageId": "duplicate", "body": messages[0]["Body"]}]}
        seen["response"] = handlers.ingest_from_queue(event, world.context("x"), services)
        seen["calls"] = list(other.calls)
        world.admin.sqs.delete_message(
            QueueUrl=world.outputs.queues["s3-events"]["url"],
            ReceiptHandle=messages[0]["ReceiptHandle"],
        )

    with worlds.new(WhileSending(deliver_duplicate)) as world:
        upload = world.upload(csv_file(12, 2))
        world.notify_again(upload)
        world.drain()

        assert seen["response"] == {"batchItemFailures": []}
        # It looked at the job, and left: no read of the object, no chunk sent.
        assert seen["calls"] == ["dynamodb:PutItem", "dynamodb:GetItem"]
        assert world.job(upload)["run"] == 1
        assert_invariant(world)


def test_a_notification_after_the_parse_finished_sends_nothing(world):
    upload = world.upload(csv_file(12, 2))
    assert world.deliver("s3-events").failed == 0  # parsed; the writer has not run
    world.notify_again(upload)
    world.injector.calls.clear()
    assert world.deliver("s3-events").failed == 0
    assert "sqs:SendMessageBatch" not in world.injector.calls
    world.drain()
    assert world.job(upload)["run"] == 1
    assert_invariant(world)


def test_a_parse_that_died_half_way_is_redone_once(world):
    upload = world.upload(csv_file(12, 2))
    world.injector.crash_at(4, after=True)  # after the first chunks were sent
    assert world.deliver("s3-events").crashed
    # Its visibility timeout has passed (and with it the lease), and a
    # duplicate notification arrives too: one of the two re-parses, the other
    # finds the object parsed.
    world.notify_again(upload)
    world.drain()
    assert world.job(upload)["run"] == 2
    assert_invariant(world)
