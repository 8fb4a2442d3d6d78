"""Dollars per million rows and per thousand orders, from the counted calls.

The calls' billed units (:mod:`benchmarks.billing`), what Lambda's poller is
billed for delivering the batches, and the Lambda and API Gateway requests
are priced at the on-demand list prices in ``benchmarks/prices.json``. The
floor is the DynamoDB writes no design can avoid: one write request unit per
row stored (a reading is under 1 KiB), and one per state an order passes
through. Lambda duration, CloudWatch logs and storage are left out: they
depend on settings and retention, not on the calls.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PRICES = Path(__file__).resolve().parent / "prices.json"

# The states each kind of order is stored in over its life.
ORDER_STATES = {
    "shipped": 4,
    "cancelled": 3,
}  # PENDING, CONFIRMED, then SHIPPED+DELIVERED or CANCELLED


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    return json.loads(path.read_text())


def unit_prices(prices: Mapping[str, Any]) -> dict[str, float]:
    """Dollars per unit, keyed as :mod:`benchmarks.billing` names the units."""
    return {
        "dynamodb.wru": prices["dynamodb"]["per_million_write_request_units"] / 1e6,
        "dynamodb.rru": prices["dynamodb"]["per_million_read_request_units"] / 1e6,
        "sqs.standard_requests": prices["sqs"]["standard_per_million_requests"] / 1e6,
        "sqs.fifo_requests": prices["sqs"]["fifo_per_million_requests"] / 1e6,
        "sns.standard_publish_requests": prices["sns"]["standard_per_million_publish_requests"]
        / 1e6,
        "sns.fifo_publish_requests": prices["sns"]["fifo_per_million_publish_requests"] / 1e6,
        "s3.tier1_requests": prices["s3"]["per_thousand_put_copy_post_list"] / 1e3,
        "s3.tier2_requests": prices["s3"]["per_thousand_get_select_head"] / 1e3,
        "ses.emails": prices["ses"]["per_thousand_emails"] / 1e3,
        "lambda.requests": prices["lambda"]["per_million_requests"] / 1e6,
        "apigateway.requests": prices["apigateway"]["rest_per_million_requests"] / 1e6,
    }


def price(units: Mapping[str, float], prices: Mapping[str, Any], scale: float) -> dict[str, Any]:
    """Dollars for ``units`` times ``scale``, by dimension; unpriced units are listed apart."""
    per_unit = unit_prices(prices)
    by_dimension = {
        name: round(count * scale * per_unit[name], 6)
        for name, count in sorted(units.items())
        if name in per_unit
    }
    return {
        "dollars": round(sum(by_dimension.values()), 4),
        "by_dimension": by_dimension,
        "unpriced": sorted(name for name in units if name not in per_unit),
    }


def ingest_cost(calls: Mapping[str, Any], prices: Mapping[str, Any]) -> dict[str, Any]:
    """Per million rows, from one measured ingest (``benchmarks.calls.measure``)."""
    units: Counter[str] = Counter(calls["billed"])
    units.update(calls["esm_billed"])
    units["lambda.requests"] += sum(calls["invocations"].values())
    scale = 1e6 / calls["rows"]
    priced = price(units, prices, scale)
    floor = prices["dynamodb"]["per_million_write_request_units"]
    # The seed design: a SendMessage and a PutItem per row, Lambda delivering 10 a batch.
    naive_units = {
        "sqs.standard_requests": 1 + 2 / 10,
        "dynamodb.wru": 1,
        "lambda.requests": 1 / 10,
    }
    naive = price(naive_units, prices, 1e6)
    return {
        "measured_rows": calls["rows"],
        "per_million_rows": priced,
        "floor_per_million_rows": floor,
        "ratio_to_floor": round(priced["dollars"] / floor, 3),
        "naive_per_million_rows": naive["dollars"],
        "naive_ratio_to_floor": round(naive["dollars"] / floor, 3),
    }


def order_cost(kind: str, life: Mapping[str, Any], prices: Mapping[str, Any]) -> dict[str, Any]:
    """Per thousand orders, from the per-order figures of ``benchmarks.order_calls``."""
    units: Counter[str] = Counter(life["billed_per_order"])
    units.update(life["esm_billed_per_order"])
    units["lambda.requests"] += sum(life["invocations_per_order"].values())
    units["apigateway.requests"] += life["api_requests_per_order"]
    priced = price(units, prices, 1e3)
    floor = ORDER_STATES[kind] * prices["dynamodb"]["per_million_write_request_units"] / 1e3
    return {
        "per_thousand_orders": priced,
        "floor_per_thousand_orders": round(floor, 6),
        "ratio_to_floor": round(priced["dollars"] / floor, 2),
    }


def model(
    calls: Mapping[str, Any] | None, orders: Mapping[str, Any] | None, prices: Mapping[str, Any]
) -> dict[str, Any]:
    """The whole cost section, from whatever parts were measured."""
    result: dict[str, Any] = {
        "prices_taken_on": prices["taken_on"],
        "region": prices["region"],
    }
    if calls:
        largest = max(calls["runs"], key=lambda run: run["rows"])
        result["ingest"] = ingest_cost(largest, prices)
    if orders:
        result["orders"] = {
            kind: order_cost(kind, orders[kind], prices) for kind in ORDER_STATES if kind in orders
        }
    return result
