"""How often the runtime polls, and what it asks of the interpreter while it runs
(the work taken off moto's request path is tested in ``test_moto_patches_speed``).

Every poll is a request that moto serves in the runtime's own process, so an
idle source polled every 50 ms takes time from the handlers; see
``docs/local-cloud-semantics.md`` (Polling and the interpreter lock).
"""

from __future__ import annotations

import sys
import threading

from chalice import Chalice

from infra.resources import Queue
from localcloud.runtime import poller
from localcloud.runtime.runtime import SWITCH_INTERVAL_SECONDS
from tests.localcloud.runtime_harness import (  # noqa: F401
    Cloud,
    _cloud,
    _moto_endpoint,
)


class _Waits(threading.Event):
    """A stop signal that never fires and records how long each wait was."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(round(timeout or 0, 4))
        return False


def test_an_idle_source_is_polled_less_often_down_to_four_times_a_second():
    """AWS: Lambda polls a stream shard four times a second; an idle source here
    is polled no more often than that, and at once again when a poll finds work."""
    stopping = _Waits()
    source = poller.Poller("f", stopping, poll_interval=0.02)
    for _ in range(6):
        source._wait_idle()
    source._found_work()
    source._wait_idle()
    assert stopping.waits == [0.02, 0.04, 0.08, 0.16, 0.25, 0.25, 0.02]
    assert poller.IDLE_POLL_SECONDS == 0.25


def test_a_poll_interval_longer_than_the_idle_bound_is_kept():
    stopping = _Waits()
    source = poller.Poller("f", stopping, poll_interval=1.0)
    source._wait_idle()
    source._wait_idle()
    assert stopping.waits == [1.0, 1.0]


def test_the_runtime_shortens_the_switch_interval_only_while_it_runs(cloud: Cloud):
    before = sys.getswitchinterval()
    stack, outputs = cloud.provision(queues=(Queue(key="jobs", name="jobs", visibility_timeout=5),))
    app = Chalice("t")

    @app.on_sqs_message(queue="jobs")
    def consume(event):
        return None

    runtime = cloud.run(app, stack, outputs)
    assert sys.getswitchinterval() == min(before, SWITCH_INTERVAL_SECONDS)
    runtime.stop()
    assert sys.getswitchinterval() == before
