"""Per-thread stdout capture, teeing to the real stdout.

``sys.stdout`` is one object for the whole process, yet the runtime needs the
lines each invocation prints (Powertools writes its EMF metrics with ``print``)
while other invocations print at the same time. :class:`ThreadStdout` replaces
``sys.stdout`` while a runtime runs: a write from a thread that registered a
buffer lands in that buffer *and* in the real stdout, so logs still show; a
write from any other thread passes straight through.

Gaps: threads that a handler starts itself are not captured; and whoever
assigns ``sys.stdout`` after the runtime started (pytest does, between a
fixture's setup and the test's call) takes the proxy out.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Iterator
from typing import Any


class ThreadStdout(io.TextIOBase):
    def __init__(self, real: Any):
        self.real = real
        self._buffers: dict[int, list[str]] = {}

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Collect what the calling thread writes until the block ends."""
        ident = threading.get_ident()
        buffer: list[str] = []
        self._buffers[ident] = buffer
        try:
            yield buffer
        finally:
            self._buffers.pop(ident, None)

    def write(self, text: str) -> int:
        buffer = self._buffers.get(threading.get_ident())
        if buffer is not None:
            buffer.append(text)
        return self.real.write(text)

    def flush(self) -> None:
        self.real.flush()

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        # encoding, isatty, fileno...: whatever the real stream offers.
        return getattr(self.real, name)


_lock = threading.Lock()
_installed: ThreadStdout | None = None
_users = 0


def install() -> ThreadStdout:
    """Put the proxy in place (reference counted: runtimes may overlap in tests)."""
    global _installed, _users
    with _lock:
        if _installed is None or sys.stdout is not _installed:
            _installed = ThreadStdout(sys.stdout)
            sys.stdout = _installed
        _users += 1
        return _installed


def uninstall() -> None:
    global _installed, _users
    with _lock:
        _users = max(0, _users - 1)
        if _users == 0 and _installed is not None:
            # Only undo our own replacement: someone may have swapped it since.
            if sys.stdout is _installed:
                sys.stdout = _installed.real
            _installed = None
