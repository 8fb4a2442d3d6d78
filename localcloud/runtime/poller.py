"""What every event-source poller shares: its thread, its stop signal, and
the count of batches it has in flight (for ``wait_until_idle``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class Poller:
    """One poller thread per event source; subclasses implement :meth:`poll`."""

    name = "poller"

    def __init__(self, function: str, stopping: threading.Event, poll_interval: float):
        self.function = function
        self._stopping = stopping
        self._poll_interval = poll_interval
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        # Bumped whenever a batch starts: lets wait_until_idle see work that
        # started and finished between two of its checks.
        self.activity = 0
        self._in_flight_lock = threading.Lock()
        self._workers: set[threading.Thread] = set()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"localcloud-{self.name}-{self.function}"
        )
        self._thread.start()

    def join(self, timeout: float) -> None:
        for thread in [self._thread, *list(self._workers)]:
            if thread is not None and thread.is_alive():
                thread.join(timeout)

    def threads(self) -> list[threading.Thread]:
        return [t for t in [self._thread, *list(self._workers)] if t is not None]

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll()
            except Exception:
                # A poller must outlive a transient error, as Lambda's does.
                log.exception("%s poller for %s failed; retrying", self.name, self.function)
                self._stopping.wait(1.0)

    def poll(self) -> None:
        raise NotImplementedError

    # -- in-flight accounting --------------------------------------------------

    def _begin(self) -> None:
        with self._in_flight_lock:
            self._in_flight += 1
            self.activity += 1

    def _end(self) -> None:
        with self._in_flight_lock:
            self._in_flight -= 1

    @property
    def busy(self) -> bool:
        with self._in_flight_lock:
            return self._in_flight > 0

    def is_idle(self) -> bool:
        """Nothing in flight here and nothing left at the source."""
        raise NotImplementedError

    def _spawn(self, target: Any, *args: Any) -> None:
        """Run one batch on a worker thread; the caller already counted it in flight."""

        def run() -> None:
            try:
                target(*args)
            except Exception:
                log.exception("%s batch for %s failed", self.name, self.function)
            finally:
                self._end()
                self._workers.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"localcloud-batch-{self.function}")
        self._workers.add(thread)
        thread.start()
