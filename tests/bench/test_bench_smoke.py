"""`python -m benchmarks --quick` runs every section and writes its results, report and plots.

A smoke test of the machinery on tiny sizes: it asserts the shape of what the
bench writes, never a figure's value (no timing, nothing machine-dependent).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_every_section_ran_and_reported_its_figures_against_a_baseline(bench):
    results = json.loads((bench / "results.json").read_text())
    assert results["quick"] is True
    assert {"cpus", "python", "os"} <= set(results["machine"])
    assert {name: s["status"] for name, s in results["sections"].items()} == dict.fromkeys(
        ("calls", "orders", "throughput", "orders_load", "memory", "cold_start", "queries"), "ok"
    )
    for run in results["calls"]["runs"]:
        assert run["rows"] > 0 and run["total"] >= run["floor"] > 0
        assert run["calls"]["dynamodb:BatchWriteItem"] >= 1
    for kind in ("shipped", "cancelled"):
        life = results["orders"][kind]
        assert life["total_per_order"] == sum(life["calls_per_order"].values())
        assert life["invocations_per_order"]["publish_order_events"] >= 1
    check_orders_load(results["orders_load"])
    throughput = results["throughput"]
    assert throughput["raw_batchwriteitem_items_per_s"]["median"] > 0
    assert throughput["naive"]["calls_per_1000_rows"] == 2000
    assert all(r["state"] == "COMPLETED" and r["over_raw"] > 0 for r in throughput["runs"])
    assert all("above_idle_mib" in r for r in results["memory"]["runs"])
    imports = results["cold_start"]["imports"]
    assert set(imports["median_seconds"]) == {"boto3", "app", "app_then_boto3"}
    assert set(results["queries"]["large_over_small_median"]) == {"by_location", "by_date"}
    # Not a timing: a page reads the same items from a table twice as big.
    assert results["queries"]["large_over_small_items_read"] == {"by_location": 1.0, "by_date": 1.0}
    cost = results["cost"]
    assert cost["ingest"]["per_million_rows"]["dollars"] > cost["ingest"]["floor_per_million_rows"]
    assert cost["ingest"]["per_million_rows"]["unpriced"] == []
    assert set(cost["orders"]) == {"shipped", "cancelled"}


def check_orders_load(load):
    """Every order of every level settled in the status its client drove it to (the
    section fails otherwise), one of each fate per four; the replay sent the very calls
    the level made; nothing went to a DLQ and no response was a 5xx."""
    levels = load["levels"]
    assert [level["clients"] for level in levels] == [1, 2]
    for level in levels:
        quarter = level["orders"] // 4
        assert level["orders"] == 4 * level["clients"]
        assert level["statuses"] == dict.fromkeys(
            ("DELIVERED", "CANCELLED", "SHIPPED", "CONFIRMED"), quarter
        )
        assert level["moto_alone"]["calls"] == level["app_calls"] + level["poller_calls"]
        assert level["calls_per_order"] == round(level["app_calls"] / level["orders"], 2)
        # Each order made its POST, a PATCH per move, and the consumers' calls.
        assert level["app_calls"] >= 4 * level["orders"]
        for kind, moves in (("POST", 4), ("PATCH", 4)):
            assert level["latency_ms"][kind]["n"] == moves * level["clients"]
    assert load["orders"] == sum(level["orders"] for level in levels)
    calls = sum(level["app_calls"] for level in levels)
    assert load["total_calls_per_order"] == round(calls / load["orders"], 2)
    assert load["server_errors"] == 0 and load["dead_letters"] == 0


def test_the_report_explains_each_section_and_its_plots_exist(bench):
    text = (bench / "report.md").read_text()
    for heading in ("Headline", "AWS calls per 1,000 rows", "AWS calls per order",
                    "Orders under load", "Throughput", "Memory", "Cold start", "Queries",
                    "Cost"):  # fmt: skip
        assert f"## {heading}" in text
    plots = re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", text)
    assert len(plots) == 8
    for plot in plots:
        assert (bench / plot).read_bytes()[:8] == PNG_MAGIC
