"""``ops status``: a stalled stream mapping is flagged, and ``--check`` fails until it recovers.

The mapping runs in the local runtime against the tests' moto server; ``ops``
reads only what any AWS client can: the ``IteratorAge`` the runtime publishes
as Lambda does, and the declared iterator-age alarm evaluated on it.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chalice import Chalice
from rich.console import Console

from localcloud.runtime import EventSourceRuntime
from localcloud.runtime.streams import StreamPoller
from ops import alarmstate, lag, reset
from ops.__main__ import main
from ops.snapshot import snapshot
from ops.status import render
from tests.localcloud.runtime_harness import wait_for

FUNCTION = "publish_order_events"
STALL_SECONDS = 1.0
# Bounded waits on outcomes; a loaded machine may need most of them.
LIMIT = 60.0


def check() -> int:
    """``python -m ops status --check`` with the test's small stall threshold."""
    out = io.StringIO()
    code = main(
        ["status", "--check", "--stall-seconds", str(STALL_SECONDS)],
        console=Console(file=out, width=200),
    )
    return code


class Mapping:
    """The orders stream's mapping, with a handler that blocks until released."""

    def __init__(self, target: Any):
        self.target = target
        self.release = threading.Event()
        self.seen: list[dict[str, Any]] = []
        # The declared names: eventflow-local-<function>. Its logs stay Powertools'.
        self.app = Chalice("eventflow", configure_logs=False)
        stream_arn = target.outputs.tables["orders"]["stream_arn"]

        @self.app.on_dynamodb_record(
            stream_arn=stream_arn, batch_size=10, starting_position="TRIM_HORIZON"
        )
        def publish_order_events(event):
            self.seen.extend(event.to_dict()["Records"])
            # Bounded, so that a failing test cannot hang the run.
            self.release.wait(LIMIT)

        self.runtime = EventSourceRuntime(
            self.app,
            target.stage_config,
            target.stack,
            target.outputs,
            target.clients,
            poll_interval=0.02,
        )

    def put(self, order_id: str) -> None:
        table = self.target.stack.table("orders")
        self.target.clients("dynamodb").put_item(
            TableName=table.name,
            Item={table.partition_key.name: {"S": order_id}, "status": {"S": "PENDING"}},
        )

    def keys(self) -> list[str]:
        name = self.target.stack.table("orders").partition_key.name
        return [r["dynamodb"]["Keys"][name]["S"] for r in list(self.seen)]

    def streams_item(self) -> dict[str, Any]:
        snap = snapshot(
            self.target.clients, self.target.stack, self.target.outputs, stall_seconds=STALL_SECONDS
        )
        return next(i for i in snap["streams"]["items"] if i["function"] == FUNCTION)


@pytest.fixture
def mapping(target) -> Iterator[Mapping]:
    mapping = Mapping(target)
    mapping.runtime.start()
    try:
        yield mapping
    finally:
        mapping.release.set()
        mapping.runtime.stop()


def test_a_blocked_mapping_is_stalled_until_its_handler_returns(mapping: Mapping):
    # Nothing waiting: not stalled, and the check passes.
    assert check() == 0
    mapping.put("order-1")
    assert wait_for(lambda: mapping.keys() == ["order-1"], LIMIT)

    # The handler holds the batch: its record grows older than the threshold.
    assert wait_for(lambda: check() == 1, LIMIT)
    item = mapping.streams_item()
    assert item["stalled"] and item["iterator_age_ms"] > STALL_SECONDS * 1000
    assert item["alarm"]["state"] == "OK"  # the declared 60 s alarm is not reached
    # The declared alarm reads exactly what the runtime publishes: with a one-second
    # threshold over one period, the same alarm fires.
    (declared,) = lag.iterator_age_alarms(mapping.target.stack)
    quick = dataclasses.replace(declared, threshold=STALL_SECONDS * 1000, evaluation_periods=1)
    cloudwatch = mapping.target.clients("cloudwatch")
    assert alarmstate.evaluate(cloudwatch, quick)["state"] == "ALARM"
    figures = mapping.runtime.stats()[FUNCTION]["lag"]
    assert (figures["records"], figures["read_error"]) == (1, None)
    snap = snapshot(
        mapping.target.clients,
        mapping.target.stack,
        mapping.target.outputs,
        stall_seconds=STALL_SECONDS,
    )
    out = io.StringIO()
    Console(file=out, width=200).print(render(snap, mapping.runtime.stats()))
    assert "STALLED" in out.getvalue()

    mapping.release.set()
    assert wait_for(lambda: check() == 0, LIMIT)
    assert not mapping.streams_item()["stalled"]
    assert mapping.runtime.stats()[FUNCTION]["lag"]["records"] == 0
    assert mapping.keys() == ["order-1"]


def test_a_mapping_that_cannot_read_its_stream_after_a_reset_is_stalled(mapping: Mapping):
    """The failure of a poller that keeps a refused iterator (as before the re-open
    existed): ``ops status --check`` sees the records it cannot reach, and clears
    once the poller re-opens the table's new stream."""
    mapping.release.set()
    mapping.put("before-reset")
    assert wait_for(lambda: mapping.keys() == ["before-reset"], LIMIT)
    refusals: list[str] = []

    def keep_the_refused_iterator(self: StreamPoller, error: Exception) -> None:
        refusals.append(str(error))
        self._read_error = str(error)[:200]
        self._failing_since = self._failing_since or time.time()
        self._stopping.wait(0.2)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StreamPoller, "_refused", keep_the_refused_iterator)
        reset.reset(mapping.target)
        mapping.put("after-reset")

        assert wait_for(lambda: check() == 1, LIMIT)
        assert refusals, "the poller's old iterator was not refused"
        figures = mapping.runtime.stats()[FUNCTION]["lag"]
        assert figures["records"] == 1 and figures["read_error"]
        assert mapping.keys() == ["before-reset"]

    # The real _refused again: the poller re-opens the table's new stream.
    assert wait_for(lambda: mapping.keys() == ["before-reset", "after-reset"], LIMIT)
    new_arn = mapping.target.clients("dynamodb").describe_table(
        TableName=mapping.target.stack.table("orders").name
    )["Table"]["LatestStreamArn"]
    assert mapping.seen[-1]["eventSourceARN"] == new_arn
    assert wait_for(lambda: check() == 0, LIMIT)
