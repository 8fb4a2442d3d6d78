"""Crashes at every call position of the ingest handler and of the writer.

For one file (the ingest handler, one S3 notification) and for each of its
chunks (the writer, one chunk per invocation), a clean run first counts the AWS calls the invocation
makes. Then, for every position N of those calls, a fresh world runs the same
invocation and kills it just before call N, and again just after call N's
response arrived; the event is then delivered again, as SQS would after the
visibility timeout, and everything is drained. Every position is tried; none
is sampled. After each, the invariant must hold.

The ingest crashes are replayed in both orders a real deployment allows: the
writer may drain the chunks sent before the crash either before or after the
notification comes back.
"""

from __future__ import annotations

from tests.reliability.world import World, assert_invariant, csv_file

FILE = csv_file(12, 2)  # 3 chunks of 4 rows, 2 sends, a rejects report


def _count_calls(worlds, setup, target) -> list[str]:
    with worlds.new() as world:
        setup(world)
        world.injector.crash_at(0, after=False)  # start counting; position 0 never fires
        delivery = world.deliver(target)
        assert delivery is not None and not delivery.failed
        return list(world.injector.calls)


def _crash_everywhere(worlds, setup, target, orders, expected_calls: list[str]) -> int:
    calls = _count_calls(worlds, setup, target)
    # The positions tried; a change in what the handler calls shows up here first.
    assert calls == expected_calls
    runs = 0
    for position in range(1, len(calls) + 1):
        for after in (False, True):
            for order in orders:
                with worlds.new() as world:
                    setup(world)
                    world.injector.crash_at(position, after=after)
                    delivery = world.deliver(target)
                    where = (
                        f"{'after' if after else 'before'} call {position} ({calls[position - 1]})"
                    )
                    assert delivery is not None and delivery.crashed, f"no crash {where}"
                    world.drain(order=order)
                    try:
                        assert_invariant(world)
                    except AssertionError as error:
                        raise AssertionError(f"crash {where}, drained {order}: {error}") from None
                runs += 1
    return runs


def _uploaded(world: World) -> None:
    world.upload(FILE)


def _ingested(world: World) -> None:
    world.upload(FILE)
    assert world.deliver("s3-events").failed == 0


INGEST_CALLS = [
    "dynamodb:PutItem",  # the job, with run 1 and its lease
    "s3:GetObject",
    "sqs:GetQueueUrl",
    "sqs:SendMessageBatch",  # chunks 0 and 1
    "sqs:SendMessageBatch",  # chunk 2
    "s3:PutObject",  # the rejects report
    "dynamodb:UpdateItem",  # the totals
]
CHUNK_CALLS = [
    "dynamodb:BatchWriteItem",  # the chunk's 4 readings
    "dynamodb:TransactWriteItems",  # its marker and the counters
    "dynamodb:GetItem",  # is the job complete?
]
# The writer takes one chunk per invocation (batch size 1); the last completes the job.
WRITER_CALLS = [CHUNK_CALLS, CHUNK_CALLS, [*CHUNK_CALLS, "dynamodb:UpdateItem"]]


def _writer_invocations(worlds) -> list[list[str]]:
    """The calls of each writer invocation for the file, in the order they run."""
    with worlds.new() as world:
        _ingested(world)
        invocations = []
        while True:
            world.injector.crash_at(0, after=False)  # start counting; position 0 never fires
            delivery = world.deliver("ingest")
            if delivery is None:
                return invocations
            assert not delivery.failed
            invocations.append(list(world.injector.calls))


def test_the_ingest_survives_a_crash_at_every_call(worlds):
    orders = (("s3-events", "ingest"), ("ingest", "s3-events"))
    runs = _crash_everywhere(worlds, _uploaded, "s3-events", orders, INGEST_CALLS)
    assert runs == len(INGEST_CALLS) * 2 * len(orders)


def test_the_writer_survives_a_crash_at_every_call(worlds):
    """Every call of each of the file's three writer invocations, one chunk each."""
    invocations = _writer_invocations(worlds)
    assert invocations == WRITER_CALLS
    runs = 0
    for earlier, calls in enumerate(invocations):

        def setup(world: World, earlier: int = earlier) -> None:
            _ingested(world)
            for _ in range(earlier):  # the chunks written before the one that crashes
                assert world.deliver("ingest").failed == 0

        runs += _crash_everywhere(worlds, setup, "ingest", (("s3-events", "ingest"),), calls)
    assert runs == sum(len(calls) for calls in WRITER_CALLS) * 2
