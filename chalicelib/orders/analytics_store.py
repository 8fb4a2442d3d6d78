"""The daily analytics table: one item per UTC day, its counters and revenue.

The counting rules (which event advances which counter) live in
:mod:`chalicelib.orders.analytics`; this module owns the item's shape.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from chalicelib.dynamo import from_item, to_item
from chalicelib.orders.keys import ANALYTICS_PK
from chalicelib.orders.money import format_money

REVENUE = "revenue"
COUNTERS = ("orders_created", "orders_confirmed", "orders_rejected", "orders_cancelled")


class AnalyticsStore:
    def __init__(self, client: Any, table: str):
        self.client = client
        self.table = table

    def counter_update(self, day: str, counter: str, revenue: Decimal) -> dict[str, Any]:
        """The ``TransactWriteItems`` entry that adds one to ``counter`` of ``day``
        and ``revenue`` (when not zero) to its revenue."""
        expression = "ADD #counter :one"
        values: dict[str, Any] = {":one": 1}
        names = {"#counter": counter}
        if revenue:
            expression += ", #revenue :revenue"
            names["#revenue"] = REVENUE
            values[":revenue"] = revenue
        return {
            "Update": {
                "TableName": self.table,
                "Key": to_item({ANALYTICS_PK: day}),
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_item(values),
            }
        }

    def daily(self, day: date) -> dict[str, Any]:
        """A day's counters, zeros for a day with nothing; revenue as ``"12.50"``."""
        key = to_item({ANALYTICS_PK: day.isoformat()})
        item = self.client.get_item(TableName=self.table, Key=key).get("Item")
        values = from_item(item) if item else {}
        return {
            "date": day.isoformat(),
            **{counter: int(values.get(counter, 0)) for counter in COUNTERS},
            REVENUE: format_money(values.get(REVENUE, Decimal(0))),
        }
