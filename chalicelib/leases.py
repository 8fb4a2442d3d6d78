"""Leases that outlive the invocation that takes them.

A lease (a parse of an upload, the send of an email) must stay exclusive while
its holder may still run, or a second delivery would do the work at the same
time. An invocation cannot outlive its deadline (Lambda ends it there), so the
remaining time plus a margin, for clocks that differ between hosts, covers
everything the holder may still do.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

# Lambda's longest timeout: the lease when the invocation's deadline is unknown.
MAX_INVOCATION = timedelta(minutes=15)


def invocation_lease(context: Any, margin: timedelta) -> timedelta:
    """How long a lease taken now by this invocation must last: its remaining
    time plus ``margin``, or :data:`MAX_INVOCATION` plus ``margin`` without a
    Lambda context (a direct call)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return MAX_INVOCATION + margin
    return timedelta(milliseconds=remaining()) + margin
