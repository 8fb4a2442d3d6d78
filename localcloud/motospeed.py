"""Takes work off moto's per-request path that gives the same answer every time.

moto's server picks the backend for each request from its Host header: it
lists moto's package directory (one ``stat`` per service, about 170) and then
tries every service's URL patterns, under a lock that every request takes. For
one host the answer never changes, so :func:`install` remembers it per host.
Every request to the local cloud pays this, and the pipeline makes more
requests per row than a bare BatchWriteItem loop does (its queue polls, sends,
deletes and job updates), so it paid for it more than the writes themselves.

The answers are the ones moto would compute: the cache is filled by calling
moto's own method once per host. Installed once per process by the local
cloud's server; it patches moto's class, so it applies to every moto server in
the process.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Memoize moto's host-to-backend lookup (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        lookup = DomainDispatcherApplication.get_backend_for_host
        # Every dispatcher matches against the same, module-level patterns.
        known: dict[str, Any] = {}

        @functools.wraps(lookup)
        def remembered(self: Any, host: str | None) -> Any:
            backend = known.get(host) if host is not None else None
            if backend is None:
                backend = lookup(self, host)
                if backend is not None and host is not None:
                    known[host] = backend
            return backend

        DomainDispatcherApplication.get_backend_for_host = remembered  # type: ignore[method-assign]
        _installed = True


def installed() -> bool:
    return _installed
