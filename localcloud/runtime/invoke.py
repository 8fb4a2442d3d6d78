"""Runs one handler invocation in-process, the way Lambda would.

The handler runs in a worker thread of its own, with a fresh context object,
the function's environment, and its stdout captured (for EMF). The caller waits
until the function's ``lambda_timeout``: Python cannot kill a thread, so at the
deadline the invocation is *reported* as timed out, its result holder is
abandoned (a late return value is never read), and the batch is treated as
failed, which is what Lambda does with a timed-out invocation.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localcloud.runtime.capture import ThreadStdout
from localcloud.runtime.context import LambdaContext
from localcloud.runtime.environ import Environment
from localcloud.runtime.metrics import MetricsPublisher

log = logging.getLogger(__name__)

OK, ERROR, TIMEOUT, ABORTED = "ok", "error", "timeout", "aborted"


@dataclass
class Outcome:
    status: str
    response: Any = None
    error: str | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass
class FunctionStats:
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    last_error: str | None = None


class Stats:
    """Thread-safe per-function counters, as ``EventSourceRuntime.stats()`` reports them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._functions: dict[str, FunctionStats] = {}

    def register(self, function: str) -> None:
        with self._lock:
            self._functions.setdefault(function, FunctionStats())

    def record(self, function: str, outcome: Outcome) -> None:
        with self._lock:
            stats = self._functions.setdefault(function, FunctionStats())
            stats.invocations += 1
            # As in CloudWatch, a timeout is also an error.
            if outcome.status in (ERROR, TIMEOUT):
                stats.errors += 1
                stats.last_error = outcome.error
            if outcome.status == TIMEOUT:
                stats.timeouts += 1

    def note_error(self, function: str, message: str) -> None:
        """A failure that is not a function error (e.g. an invalid batch response)."""
        with self._lock:
            self._functions.setdefault(function, FunctionStats()).last_error = message

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: dict(vars(s)) for name, s in self._functions.items()}


@dataclass
class _Result:
    """Written by the handler thread; read only if the caller still waits."""

    done: threading.Event = field(default_factory=threading.Event)
    response: Any = None
    error: str | None = None
    abandoned: bool = False


class Invoker:
    """Invokes one function's handler; shared by every poller of that function."""

    def __init__(
        self,
        *,
        function: str,
        handler: Callable[[dict[str, Any], Any], Any],
        full_name: str,
        timeout_seconds: float,
        memory_mb: int,
        region: str,
        environment: Environment,
        env_overrides: dict[str, str],
        stdout: ThreadStdout,
        stats: Stats,
        metrics: MetricsPublisher,
        stopping: threading.Event,
        poll_interval: float,
    ):
        self.function = function
        self.full_name = full_name
        self.timeout_seconds = timeout_seconds
        self._handler = handler
        self._memory_mb = memory_mb
        self._region = region
        self._environment = environment
        self._env_overrides = env_overrides
        self._stdout = stdout
        self._stats = stats
        self._metrics = metrics
        self._stopping = stopping
        self._poll_interval = poll_interval
        stats.register(function)

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Outcome:
        """Run the handler once; ``request_id`` keeps an asynchronous event's id across retries."""
        given = {"aws_request_id": request_id} if request_id is not None else {}
        context = LambdaContext(
            function_name=self.full_name,
            memory_limit_in_mb=self._memory_mb,
            timeout_seconds=self.timeout_seconds,
            region=self._region,
            **given,
        )
        result = _Result()
        started = time.monotonic()
        deadline = started + self.timeout_seconds
        with self._environment.applied(self._env_overrides):
            worker = threading.Thread(
                target=self._run,
                args=(event, context, result),
                name=f"localcloud-{self.function}-{context.aws_request_id[:8]}",
                daemon=True,  # a timed-out handler cannot be killed; never block exit on it
            )
            worker.start()
            status = OK
            while not result.done.wait(self._poll_interval):
                if time.monotonic() >= deadline:
                    status = TIMEOUT
                    break
                if self._stopping.is_set():
                    status = ABORTED
                    break
        duration_ms = (time.monotonic() - started) * 1000
        if status != OK:
            result.abandoned = True
        if status == TIMEOUT:
            outcome = Outcome(
                TIMEOUT,
                error=f"Task timed out after {self.timeout_seconds:.2f} seconds",
                duration_ms=duration_ms,
            )
        elif status == ABORTED:
            return Outcome(ABORTED, error="runtime stopping", duration_ms=duration_ms)
        elif result.error is not None:
            outcome = Outcome(ERROR, error=result.error, duration_ms=duration_ms)
        else:
            outcome = Outcome(OK, response=result.response, duration_ms=duration_ms)
        self._stats.record(self.function, outcome)
        self._metrics.invocation(self.full_name, not outcome.ok, duration_ms)
        if outcome.status == TIMEOUT:
            log.warning("%s %s: %s", self.full_name, context.aws_request_id, outcome.error)
        return outcome

    def _run(self, event: dict[str, Any], context: LambdaContext, result: _Result) -> None:
        with self._stdout.capture() as printed:
            try:
                result.response = self._handler(event, context)
            except Exception as error:
                result.error = f"{type(error).__name__}: {error}"
                # Lambda logs the traceback of an unhandled error; so do we.
                log.error(
                    "%s %s failed:\n%s",
                    self.full_name,
                    context.aws_request_id,
                    traceback.format_exc().rstrip(),
                )
        # Lambda would have killed a timed-out invocation: nothing it does
        # afterwards (its return value, its metrics) may count.
        if not result.abandoned:
            self._metrics.emf("".join(printed))
        result.done.set()
