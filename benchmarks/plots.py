"""The plots of ``benchmarks/report.md``, one PNG per section, drawn from the results.

Each ``plot_*`` function writes ``OUT/plots/NAME.png`` and returns its path
relative to the report, for the Markdown image link.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

PLOTS = "plots"


def save(fig: Any, out_dir: Path, name: str) -> str:
    """Write ``fig`` as ``OUT/plots/NAME.png``, close it, and return the path the report links."""
    path = out_dir / PLOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"{PLOTS}/{name}.png"


def plot_calls(calls: dict[str, Any], out_dir: Path) -> str:
    runs = calls["runs"]
    labels = [r["label"] for r in runs]
    ops = sorted({op for r in runs for op in r["per_1000_rows"]})
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = [0.0] * len(runs)
    for op in ops:
        values = [r["per_1000_rows"].get(op, 0) for r in runs]
        ax.bar(labels, values, bottom=bottom, label=op)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.plot(labels, [r["floor_per_1000_rows"] for r in runs], "k_", markersize=40, mew=2)
    ax.set_ylabel("AWS calls per 1,000 rows")
    ax.set_title("Calls per 1,000 rows (black bar: the floor)")
    ax.legend(fontsize=7)
    return save(fig, out_dir, "calls")


def plot_orders(orders: dict[str, Any], out_dir: Path) -> str:
    kinds = [k for k in ("shipped", "cancelled") if k in orders]
    ops = sorted({op for k in kinds for op in orders[k]["calls_per_order"]})
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        values = [orders[kind]["calls_per_order"].get(op, 0) for op in ops]
        ax.barh([y + i * width for y in range(len(ops))], values, height=width, label=kind)
    ax.set_yticks([y + width * (len(kinds) - 1) / 2 for y in range(len(ops))], ops, fontsize=8)
    ax.set_xlabel("calls per order, over its whole life")
    ax.set_title("AWS calls per order")
    ax.legend()
    return save(fig, out_dir, "order_calls")


def plot_throughput(throughput: dict[str, Any], out_dir: Path) -> str:
    runs = throughput["runs"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["rows"] for r in runs], [r["rows_per_s"] for r in runs], "o-", label="eventflow")
    raw = throughput["raw_batchwriteitem_items_per_s"]["median"]
    ax.axhline(raw, color="k", linestyle="--", label="moto's raw BatchWriteItem")
    ax.axhline(
        throughput["naive"]["rows_per_s"], color="r", linestyle=":", label="per-row baseline"
    )
    ax.set_xlabel("rows in the file")
    ax.set_ylabel("rows per second, upload to COMPLETED")
    ax.set_ylim(bottom=0)
    ax.set_title("Ingest throughput through the local cloud")
    ax.legend()
    return save(fig, out_dir, "throughput")


def plot_memory(memory: dict[str, Any], out_dir: Path) -> str:
    runs = memory["runs"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["rows"] for r in runs], [r["above_idle_mib"] for r in runs], "o-")
    ax.axhline(100, color="r", linestyle=":", label="goal: under 100 MiB above idle")
    ax.set_xscale("log")
    ax.set_xlabel("rows in the file (log scale)")
    ax.set_ylabel("peak RSS above idle (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title("Ingest handler's peak memory")
    ax.legend()
    return save(fig, out_dir, "memory")


def plot_cold_start(cold: dict[str, Any], out_dir: Path) -> str:
    medians = cold["imports"]["median_seconds"]
    names = {"boto3": "import boto3", "app": "import app", "app_then_boto3": "import app, boto3"}
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh([names[k] for k in medians], [v * 1000 for v in medians.values()])
    ax.axvline(medians["boto3"] * 1500, color="r", linestyle=":", label="goal: 1.5x boto3")
    ax.set_xlabel("median milliseconds in a fresh interpreter")
    ax.set_title("Cold import")
    ax.legend()
    return save(fig, out_dir, "cold_start")


def plot_queries(queries: dict[str, Any], out_dir: Path) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
    for ax, figure, title, unit in (
        (axes[0], "median_ms", "whole page on moto (walks the table)", "ms per page"),
        (axes[1], "items_read", "items read (DynamoDB's ScannedCount)", "items per page"),
        (axes[2], "app_calls", "the app's Python calls", "calls per page"),
    ):
        for name in ("by_location", "by_date"):
            values = [queries[size]["pages"][name][figure] for size in ("small", "large")]
            ax.plot(
                [queries["small"]["items"], queries["large"]["items"]], values, "o-", label=name
            )
        ax.set_xscale("log")
        ax.set_xlabel("items in the table")
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    return save(fig, out_dir, "queries")


def plot_cost(cost: dict[str, Any], out_dir: Path) -> str:
    ingest = cost["ingest"]
    by = ingest["per_million_rows"]["by_dimension"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(list(by), list(by.values()))
    ax.axvline(
        ingest["floor_per_million_rows"], color="k", linestyle="--", label="DynamoDB write floor"
    )
    ax.set_xlabel("dollars per million rows")
    ax.set_title(f"Cost per million rows: ${ingest['per_million_rows']['dollars']:.3f}")
    ax.legend()
    return save(fig, out_dir, "cost")
