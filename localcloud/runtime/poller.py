"""What every event-source poller shares: its thread, its stop signal, the
count of batches it has in flight (for ``wait_until_idle``), and how long it
waits between polls that found nothing.

Sources that cannot be long-polled (FIFO queues, streams) are polled again
after ``poll_interval``, doubling the wait after each empty poll up to
:data:`IDLE_POLL_SECONDS`, and back to ``poll_interval`` as soon as a poll
finds work. Every poll is a request that moto serves in this process, under the
same interpreter lock as the handlers: an idle runtime polling every 50 ms took
a quarter of a core from the handlers and moto while a file was being written.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

# Lambda polls each stream shard four times a second; an idle source here is
# not polled less often than that either.
IDLE_POLL_SECONDS = 0.25


class Poller:
    """One poller thread per event source; subclasses implement :meth:`poll`."""

    name = "poller"

    def __init__(self, function: str, stopping: threading.Event, poll_interval: float):
        self.function = function
        self._stopping = stopping
        self._poll_interval = poll_interval
        self._idle_wait = poll_interval
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

    def _wait_idle(self) -> None:
        """After a poll that found nothing: wait, longer each time in a row."""
        self._stopping.wait(self._idle_wait)
        self._idle_wait = min(self._idle_wait * 2, max(IDLE_POLL_SECONDS, self._poll_interval))

    def _found_work(self) -> None:
        self._idle_wait = self._poll_interval

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
