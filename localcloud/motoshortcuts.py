"""Shortcuts through two of moto's costly steps, each giving the answer moto gives.

Two places cost the local cloud more than the work they do:

* **The backend of a request.** moto's server picks the backend for each
  request from its Host header: it lists moto's package directory (one
  ``stat`` per service, about 170) and then tries every service's URL
  patterns, under a lock that every request takes. For one host the answer
  never changes, so it is remembered per host, computed by moto's own method.
  The pipeline makes more requests per row than a bare BatchWriteItem loop
  (queue polls, sends, deletes, job updates), so it paid this more often.
* **A new DynamoDB item's size.** moto checks the 400 KB item limit as it
  builds an item, attribute by attribute, and each step adds up the size of
  every attribute set so far: a reading's 11 attributes cost 66 attribute
  sizes instead of 11, the largest single cost of a BatchWriteItem in moto.
  A new item is built here with a running total instead; the sizes are moto's
  own, and an item over the limit is refused (``ItemSizeTooLarge``) exactly
  when moto would refuse it, since a running total passes the limit at some
  step if and only if it passes it at the last. Items changed by an update
  expression still go through moto's own check.

Each part is a :class:`~localcloud.motopatch.Patch` of moto's classes, so it
applies to every moto server in the process, and to ``mock_aws`` too;
uninstalling gives moto its own code back.
"""

from __future__ import annotations

import functools
from typing import Any

from localcloud.motopatch import Patch, Target


def _remembering(lookup: Any) -> Any:
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

    return remembered


def _sized_in_one_pass(original: Any) -> Any:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    @functools.wraps(original)
    def init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = LimitedSizeDict()
        total = 0
        for key, value in attrs.items():
            typed = DynamoType(value)
            total += bytesize(key) + typed.size()
            if total > ITEM_SIZE_LIMIT:
                raise ItemSizeTooLarge
            # Past the check already made above; moto's own __setitem__ would redo it.
            dict.__setitem__(self.attrs, key, typed)

    return init


# moto's own bound (LimitedSizeDict): between the documented 400 KB and the
# 409-410 KB that AWS was found to accept.
ITEM_SIZE_LIMIT = 405000

BACKEND_LOOKUP = Patch(
    "motoshortcuts: backend per host",
    {
        Target(
            "moto.moto_server.werkzeug_app", "DomainDispatcherApplication", "get_backend_for_host"
        ): _remembering
    },
)
ITEM_SIZE = Patch(
    "motoshortcuts: item size in one pass",
    {Target("moto.dynamodb.models.dynamo_type", "Item", "__init__"): _sized_in_one_pass},
)
PATCHES = (BACKEND_LOOKUP, ITEM_SIZE)
