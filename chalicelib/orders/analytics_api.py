"""``GET /analytics/daily/{date}``: a day's order counters and revenue, independent of Chalice.

The calling convention and the shared parsing live in :mod:`chalicelib.rest`;
the counting in :mod:`chalicelib.orders.analytics`.
"""

from __future__ import annotations

from chalicelib import rest
from chalicelib.lazy import lazy

# app.py imports this module; the counting (and boto3 with it) loads at first use.
analytics = lazy("chalicelib.orders.analytics")


def get_daily(services, day, params, raw_body, headers):
    rest.query(params, ())
    table = services.settings.analytics_table
    return 200, analytics.daily(services.clients.dynamodb, table, rest.day("date", day))
