"""The event-source runtime: runs a Chalice app's event handlers locally.

It discovers the app's event sources, starts one poller thread per source, and
invokes the handlers in-process with Lambda's event-source-mapping semantics
(see the module docstrings of ``sqs``, ``streams`` and ``notifications``, and
``docs/local-cloud-semantics.md``).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from infra.outputs import Outputs
from infra.resources import Stack
from infra.stageconfig import StageConfig
from localcloud.runtime import capture
from localcloud.runtime.environ import Environment
from localcloud.runtime.invoke import Stats
from localcloud.runtime.metrics import MetricsPublisher
from localcloud.runtime.poller import IDLE_POLL_SECONDS, Poller
from localcloud.runtime.sources import build_pollers
from localcloud.runtime.streamlag import LagMonitor
from localcloud.runtime.streams import StreamPoller
from localcloud.runtime.wiring import Wiring

# Idle must be seen this many times in a row, with no batch starting between,
# before wait_until_idle believes it.
IDLE_CONFIRMATIONS = 2

# How long a thread may keep the interpreter lock while another waits for it,
# while the runtime runs (Python's default is 5 ms). moto's server threads
# alternate short bursts of work with socket reads and writes, each of which
# gives the lock up; with the default, every burst queued behind a handler's
# (or the ingest's) CPU-bound stretch for up to 5 ms, and the requests of the
# whole pipeline crawled. Lambda functions run in processes of their own, so
# this makes the local cloud more like AWS, not less.
SWITCH_INTERVAL_SECONDS = 0.001


class EventSourceRuntime:
    def __init__(
        self,
        app: Any,
        stage_config: StageConfig,
        stack: Stack,
        outputs: Outputs,
        clients: Any,
        poll_interval: float = 0.05,
    ):
        self._app = app
        self._stage_config = stage_config
        self._stack = stack
        self._outputs = outputs
        self._clients = clients
        self._poll_interval = poll_interval
        self._stats = Stats()
        self._stopping = threading.Event()
        self._environment = Environment(stage_config.environment())
        self._pollers: list[Poller] = []
        self._metrics: MetricsPublisher | None = None
        self._lag: LagMonitor | None = None
        self._stdout: capture.ThreadStdout | None = None
        self._started = False
        self._switch_interval: float | None = None

    @property
    def pollers(self) -> list[Poller]:
        return list(self._pollers)

    def start(self) -> None:
        """Wire every event source and start its poller; returns at once."""
        if self._started:
            raise RuntimeError("runtime already started")
        self._started = True
        self._stopping.clear()
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL_SECONDS))
        self._environment.apply_stage()
        stdout = self._stdout = capture.install()
        self._metrics = MetricsPublisher(self._clients("cloudwatch"))
        self._metrics.start()
        wiring = Wiring(
            app=self._app,
            stage_config=self._stage_config,
            stack=self._stack,
            outputs=self._outputs,
            clients=self._clients,
            stats=self._stats,
            metrics=self._metrics,
            environment=self._environment,
            stdout=stdout,
            stopping=self._stopping,
            poll_interval=self._poll_interval,
        )
        try:
            self._pollers = build_pollers(wiring)
        except Exception:
            self.stop()
            raise
        for poller in self._pollers:
            poller.start()
        streams = [p for p in self._pollers if isinstance(p, StreamPoller)]
        if streams:
            self._lag = LagMonitor(
                streams,
                self._clients("dynamodbstreams"),
                self._clients("dynamodb"),
                self._metrics,
                self._stopping,
            )
            self._lag.start()

    def wait_until_idle(self, timeout: float = 30.0) -> bool:
        """True once every source is drained and nothing is in flight.

        Idle must last longer than an idle poller's longest wait between polls
        (``IDLE_POLL_SECONDS``): a stream poller knows it has caught up only as
        of its last poll, so a record written since is seen by its next one.
        """
        deadline = time.monotonic() + timeout
        quiet_for = IDLE_POLL_SECONDS + self._poll_interval
        confirmations = 0
        idle_since: float | None = None
        while time.monotonic() < deadline:
            before = self._activity()
            idle = all(p.is_idle() for p in self._pollers)
            if idle and self._activity() == before:
                now = time.monotonic()
                idle_since = now if idle_since is None else idle_since
                confirmations += 1
                if confirmations >= IDLE_CONFIRMATIONS and now - idle_since >= quiet_for:
                    return True
            else:
                confirmations, idle_since = 0, None
            time.sleep(max(self._poll_interval, 0.02) * 2)
        return False

    def _activity(self) -> int:
        return sum(p.activity for p in self._pollers)

    @contextlib.contextmanager
    def forwarding_metrics(self) -> Iterator[None]:
        """Forward the EMF lines the calling thread prints meanwhile to the local CloudWatch,
        as Lambda's log service would; for code that runs outside an invocation (the API)."""
        stdout, metrics = self._stdout, self._metrics
        if stdout is None or metrics is None:
            yield
            return
        with stdout.capture() as printed:
            yield
        metrics.emf("".join(printed))

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per function: invocations, errors, timeouts, the last error and, for a stream
        mapping, its ``lag`` (:class:`~localcloud.runtime.streamlag.StreamLag`)."""
        stats = self._stats.snapshot()
        lag = self._lag.snapshot() if self._lag is not None else {}
        for function, figures in lag.items():
            stats.setdefault(function, {})["lag"] = figures
        return stats

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every poller and batch thread; in-flight batches are abandoned
        (their messages reappear after the visibility timeout, as after a crash)."""
        if not self._started:
            return
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for poller in self._pollers:
            poller.join(max(0.0, deadline - time.monotonic()))
        if self._lag is not None:
            self._lag.join(max(0.0, deadline - time.monotonic()))
            self._lag = None
        if self._metrics is not None:
            self._metrics.stop(max(0.1, deadline - time.monotonic()))
            self._metrics = None
        capture.uninstall()
        self._stdout = None
        self._environment.restore()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        self._pollers = []
        self._started = False
