"""Changes to moto's internals that are installed, undone and checked the same way.

The local cloud replaces a few methods of moto's classes (:mod:`motolocks`,
:mod:`mototransactions`, :mod:`motoshortcuts`, :mod:`outbox`). Each change is a
:class:`Patch`: attributes of moto's classes, each replaced by a function
built from moto's own. A patch is counted: every :meth:`Patch.install` is
matched by one :meth:`Patch.uninstall`, and moto gets its own code back when
the last user is done. So a test that installs through :func:`applied` undoes
exactly what it did, and no test's outcome depends on the tests before it.

Uninstalling refuses when the attribute no longer holds the replacement (code
that wrapped it after us would be thrown away without a word). The targets
are named, not imported, so that tests can check each one against moto as
installed: that it exists, has the signature the replacement was written
for, and is what moto's request dispatch calls.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

_MISSING = object()


class PatchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    """``module.owner.name``: an attribute of one of moto's classes."""

    module: str
    owner: str
    name: str

    def cls(self) -> type:
        return getattr(importlib.import_module(self.module), self.owner)

    def __str__(self) -> str:
        return f"{self.module}.{self.owner}.{self.name}"


Build = Callable[[Any], Any]


class Patch:
    """Named replacements of moto attributes, installed and undone together."""

    def __init__(self, name: str, replacements: dict[Target, Build]):
        self.name = name
        self._builds = replacements
        self._lock = threading.Lock()
        self._users = 0
        # (target, what the class itself held before, the replacement)
        self._saved: list[tuple[Target, Any, Any]] = []

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(self._builds)

    def installed(self) -> bool:
        return self._users > 0

    def replacement(self, target: Target) -> Any:
        """The function that stands in for ``target`` while installed."""
        for saved_target, _, new in self._saved:
            if saved_target == target:
                return new
        raise PatchError(f"{self.name} is not installed")

    def install(self) -> None:
        with self._lock:
            if self._users == 0:
                self._apply()
            self._users += 1

    def uninstall(self) -> None:
        with self._lock:
            if self._users == 0:
                raise PatchError(f"{self.name} is not installed")
            if self._users == 1:
                self._revert()
            self._users -= 1

    def _apply(self) -> None:
        for target, build in self._builds.items():
            cls = target.cls()
            if not hasattr(cls, target.name):
                self._revert()
                raise PatchError(f"{target} is gone: moto changed, re-check {self.name}")
            own = vars(cls).get(target.name, _MISSING)
            new = build(getattr(cls, target.name))
            setattr(cls, target.name, new)
            self._saved.append((target, own, new))

    def _revert(self) -> None:
        while self._saved:
            target, own, new = self._saved[-1]
            cls = target.cls()
            if vars(cls).get(target.name) is not new:
                raise PatchError(f"{target} was replaced while {self.name} was installed")
            if own is _MISSING:
                delattr(cls, target.name)
            else:
                setattr(cls, target.name, own)
            self._saved.pop()


@contextlib.contextmanager
def applied(*patches: Patch) -> Iterator[None]:
    """``patches`` installed inside the block, and undone after it."""
    with contextlib.ExitStack() as stack:
        for patch in patches:
            patch.install()
            stack.callback(patch.uninstall)
        yield
