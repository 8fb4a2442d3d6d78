"""Applies the stage's and each function's environment variables.

``os.environ`` is process-global, while Lambda gives every function its own
environment. The common part (top-level and stage variables) is the same for
every function, so it is applied once when the runtime starts and restored when
it stops. A function whose own ``environment_variables`` differ from the stage's
runs under an exclusive lock with its variables swapped in; every other
invocation holds the lock shared, so the common case stays fully concurrent and
no handler ever sees another function's variables.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping


class _SharedExclusiveLock:
    """Many shared holders or one exclusive holder."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._exclusive)
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._exclusive and self._shared == 0)
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class Environment:
    def __init__(self, stage_env: Mapping[str, str]):
        self._stage_env = dict(stage_env)
        self._saved: dict[str, str | None] = {}
        self._lock = _SharedExclusiveLock()

    def apply_stage(self) -> None:
        for name, value in self._stage_env.items():
            self._saved.setdefault(name, os.environ.get(name))
            os.environ[name] = str(value)

    def restore(self) -> None:
        _restore(self._saved)
        self._saved = {}

    def overrides(self, function_env: Mapping[str, str]) -> dict[str, str]:
        """What a function's environment adds to or changes from the stage's."""
        return {k: str(v) for k, v in function_env.items() if self._stage_env.get(k) != v}

    @contextlib.contextmanager
    def applied(self, overrides: Mapping[str, str]) -> Iterator[None]:
        """Run a block with a function's variables in ``os.environ``."""
        if not overrides:
            with self._lock.shared():
                yield
            return
        with self._lock.exclusive():
            saved = {name: os.environ.get(name) for name in overrides}
            os.environ.update(overrides)
            try:
                yield
            finally:
                _restore(saved)


def _restore(saved: Mapping[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
