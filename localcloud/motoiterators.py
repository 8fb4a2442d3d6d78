"""DynamoDB Streams shard iterators in the local cloud expire after 15 minutes, as AWS's do.

moto 5.2 keeps every shard iterator it ever issued in one dict per backend
(``DynamoDBStreamsBackend.shard_iterators``): one from each
``GetShardIterator`` and one more from every ``GetRecords`` (its
``NextShardIterator``), about 1 KB each. A stream poller asks four times a
second, so a long ``make run`` grew moto by hundreds of megabytes a day. In
AWS an iterator expires 15 minutes after it was issued, and ``GetRecords``
then answers ``ExpiredIteratorException``.

Here each backend's dict forgets iterators older than :data:`TTL_SECONDS`
(checked whenever one is issued, oldest first, so the cost is one comparison
per poll), and ``GetRecords`` on an iterator it does not hold answers
``ExpiredIteratorException`` (HTTP 400) instead of moto's ``KeyError`` (HTTP
500). That includes an iterator issued before ``POST /moto-api/reset``: AWS
has no reset; the nearest thing, a stream that is gone, also ends the
iterator. A consumer re-opens the shard from its checkpoint either way
(``localcloud.runtime.streams``).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from localcloud.motopatch import Patch, Target

# AWS: "A shard iterator expires 15 minutes after it is returned to the requester."
TTL_SECONDS = 15 * 60

_install_lock = threading.Lock()
_clock: Callable[[], float] = time.monotonic
_ttl: float | None = None


class ExpiringIterators(dict):
    """A dict of shard iterators that drops each one ``_ttl`` seconds after it was stored."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        now = _clock()
        self._issued: deque[tuple[float, str]] = deque((now, key) for key in self)
        self._lock = threading.Lock()

    def __setitem__(self, key: str, value: Any) -> None:
        with self._lock:
            super().__setitem__(key, value)
            self._issued.append((_clock(), key))
        self.forget_expired()

    def forget_expired(self) -> None:
        if _ttl is None:
            return
        cutoff = _clock() - _ttl
        with self._lock:
            # Issued in order, so the expired ones are all at the front.
            while self._issued and self._issued[0][0] <= cutoff:
                _, key = self._issued.popleft()
                self.pop(key, None)


def _iterators(backend: Any) -> ExpiringIterators:
    """The backend's iterator dict, made expiring (a backend made before install, or by a
    reset, starts with moto's plain dict)."""
    iterators = backend.shard_iterators
    if not isinstance(iterators, ExpiringIterators):
        iterators = backend.shard_iterators = ExpiringIterators(iterators)
    return iterators


def _expired(iterator_arn: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(
        "ExpiredIteratorException",
        f"The shard iterator has expired (older than {TTL_SECONDS // 60} minutes) or was "
        f"never issued: {iterator_arn[:80]}...",
    )


def _registering(get_shard_iterator: Any) -> Any:
    @functools.wraps(get_shard_iterator)
    def patched_get_shard_iterator(self: Any, *args: Any, **kwargs: Any) -> Any:
        _iterators(self)
        return get_shard_iterator(self, *args, **kwargs)

    return patched_get_shard_iterator


def _refusing_unknown(get_records: Any) -> Any:
    @functools.wraps(get_records)
    def patched_get_records(self: Any, iterator_arn: str, limit: int) -> Any:
        iterators = _iterators(self)
        iterators.forget_expired()
        if iterator_arn not in iterators:
            raise _expired(iterator_arn)
        return get_records(self, iterator_arn, limit)

    return patched_get_records


_BACKEND = ("moto.dynamodbstreams.models", "DynamoDBStreamsBackend")
ITERATORS = Patch(
    "motoiterators: shard iterators expire after 15 minutes",
    {
        Target(*_BACKEND, "get_shard_iterator"): _registering,
        Target(*_BACKEND, "get_records"): _refusing_unknown,
    },
)
PATCHES = (ITERATORS,)


def install(clock: Callable[[], float] = time.monotonic, ttl_seconds: float = TTL_SECONDS) -> None:
    """Make moto's stream iterators expire (undo with :func:`uninstall`); ``clock`` is for
    tests, and taken by the first install only."""
    global _clock, _ttl
    with _install_lock:
        if not ITERATORS.installed():
            _clock, _ttl = clock, ttl_seconds
        ITERATORS.install()


def uninstall() -> None:
    """Undo one :func:`install` (nothing if none is left); once the last is undone, moto
    has its own methods back, and dicts already made expiring stop expiring."""
    global _clock, _ttl
    with _install_lock:
        if not ITERATORS.installed():
            return
        ITERATORS.uninstall()
        if not ITERATORS.installed():
            _clock, _ttl = time.monotonic, None


def installed() -> bool:
    return ITERATORS.installed()
