"""``GET /analytics/daily/{date}``: a day's order counters and revenue, independent of Chalice.

The calling convention and the shared parsing live in :mod:`chalicelib.rest`;
the counting in :mod:`chalicelib.orders.analytics`.
"""

from __future__ import annotations

import re
from datetime import date

from chalicelib import rest
from chalicelib.errors import BadRequest
from chalicelib.lazy import lazy

# app.py imports this module; the counting (and boto3 with it) loads at first use.
analytics = lazy("chalicelib.orders.analytics")

# Exactly YYYY-MM-DD: date.fromisoformat alone also takes 20260201 and 2026-W05-1.
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DAY_PROBLEM = "must be a calendar date as YYYY-MM-DD (UTC), e.g. 2026-02-28"


def parse_day(text: str) -> date:
    """A UTC calendar day; raises :class:`BadRequest` naming ``date`` for anything else."""
    if not _DAY.fullmatch(text):
        raise BadRequest.field("date", DAY_PROBLEM)
    try:
        return date.fromisoformat(text)
    except ValueError:  # 2026-02-30, month 13 ...
        raise BadRequest.field("date", f"{DAY_PROBLEM}; {text} is not a day") from None


def get_daily(services, day, params, raw_body, headers):
    rest.query(params, ())
    table = services.settings.analytics_table
    return 200, analytics.daily(services.clients.dynamodb, table, parse_day(day))
