"""Fixtures for the fault-injection suite: worlds on moto, instant retries, small chunks.

Retries must not wait: the app's own backoff sleeps on the injected
``InstantClock``, and botocore's standard retry mode sleeps through
``botocore.endpoint.time.sleep``, which is replaced here by one that only
records the delay. Chunks are shrunk (4 rows, 2 per SendMessageBatch), so a
file of a dozen rows makes several chunks and several sends, and the crash
suite's call positions stay few enough to try every one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import botocore.endpoint
import pytest
from moto import mock_aws

from chalicelib.readings import chunks
from tests.reliability.faults import FaultInjector, Rule
from tests.reliability.world import SteppingClock, World, build_world

CHUNK_ROWS = 4
BATCH_ENTRIES = 2


class RecordedSleeps:
    """Stands in for the ``time`` module inside botocore's endpoint."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def botocore_sleeps(monkeypatch) -> RecordedSleeps:
    recorded = RecordedSleeps()
    monkeypatch.setattr(botocore.endpoint, "time", recorded)
    return recorded


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch) -> None:
    monkeypatch.setattr(chunks, "MAX_CHUNK_ROWS", CHUNK_ROWS)
    monkeypatch.setattr(chunks, "MAX_BATCH_ENTRIES", BATCH_ENTRIES)


class Worlds:
    """Makes worlds, one moto mock each, and points the app's handlers at the active one."""

    def __init__(self, app, clock: SteppingClock):
        self.app = app
        self.clock = clock
        self.active: World | None = None

    @contextmanager
    def new(self, *rules: Rule, stage: str = "local", build=build_world) -> Iterator[World]:
        # The stage the handlers' calls are checked against (tests/plugins/iam_calls.py).
        previous = os.environ.get("EVENTFLOW_STAGE")
        os.environ["EVENTFLOW_STAGE"] = stage
        with mock_aws():
            self.active = build(stage, FaultInjector(list(rules)), self.clock, self.app)
            try:
                yield self.active
            finally:
                self.active = None
                if previous is None:
                    os.environ.pop("EVENTFLOW_STAGE", None)
                else:
                    os.environ["EVENTFLOW_STAGE"] = previous

    def services(self):
        assert self.active is not None and self.active.current is not None
        return self.active.current


@pytest.fixture
def worlds(monkeypatch, botocore_sleeps) -> Worlds:
    import app as app_module

    worlds = Worlds(app_module.app, SteppingClock())
    # app.py's handlers ask for services(); give them the current invocation's process.
    monkeypatch.setattr(app_module, "services", worlds.services)
    return worlds


@pytest.fixture
def world(worlds) -> Iterator[World]:
    with worlds.new() as world:
        yield world
