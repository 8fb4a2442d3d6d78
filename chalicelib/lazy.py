"""Modules imported at their first use, so that importing ``app.py`` stays cheap.

Every Lambda function of the app imports the whole of ``app.py`` on its cold
start, yet each uses only its own handler's dependencies: the API functions
never need Powertools' batch processors, the stream handler never needs the
readings' pydantic models, the readings writer never needs the orders domain.
So the modules that ``app.py`` imports (the ``api`` and ``handlers`` modules,
``rest``, ``services``, ``aws``) name their heavy dependencies through
:func:`lazy`, and a function pays only for what its handler touches, the
first time it touches it. ``tests/test_cold_import.py`` keeps it that way.

A lazy module is used like the module itself (``service.place_order(...)``);
setting an attribute on it sets it on the module, so ``monkeypatch.setattr``
works through it too.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``; imports it at the first attribute access."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_module", None)

    def _load(self) -> ModuleType:
        module = self._module
        if module is None:
            # The import system's own per-module lock makes concurrent first
            # uses (the local runtime's threads) import it once.
            module = importlib.import_module(self._name)
            object.__setattr__(self, "_module", module)
        return module

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._load(), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._load(), attribute, value)

    def __delattr__(self, attribute: str) -> None:
        delattr(self._load(), attribute)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy(name: str) -> Any:
    """The module ``name``, imported when first used rather than now.

    Typed ``Any``: what it stands for is only known once it is imported.
    """
    return LazyModule(name)
