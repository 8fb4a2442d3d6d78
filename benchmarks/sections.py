"""The sections of ``python -m benchmarks``, each run in a process of its own.

moto keeps its state per process, and a section's memory or threads must not
colour the next one's figures, so ``python -m benchmarks`` runs each section
as ``python -m benchmarks.sections NAME OUT.json [--quick]``. A section is a
function of the sizes in :data:`FULL` or :data:`QUICK` that returns plain
data; every figure it reports comes with the baseline it was measured
against, in the same run.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

FULL: dict[str, Any] = {
    "calls_rows": [10_000, 100_000],
    "orders": 2,
    "throughput_rows": [10_000, 20_000, 50_000, 100_000],
    "baseline_rows": 20_000,
    "naive_rows": 1_000,
    "memory_rows": [10_000, 100_000, 300_000, 600_000, 1_000_000],
    "cold_runs": 9,
    "query_items": [1_000, 100_000],
    "package": True,
    # Concurrent clients, and the orders each of them places at that level.
    "orders_load": {1: 16, 8: 4, 16: 4},
}
# Tiny sizes, for the smoke test: every section runs, no figure means anything.
QUICK: dict[str, Any] = {
    "calls_rows": [200],
    "orders": 1,
    "throughput_rows": [300, 600],
    "baseline_rows": 300,
    "naive_rows": 40,
    "memory_rows": [1_000],
    "cold_runs": 2,
    "query_items": [60, 120],
    "package": False,
    "orders_load": {1: 4, 2: 4},
}


def calls(sizes: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.calls import measure, offline_env
    from sample_data.generate import write_rows

    offline_env()
    files = [("sample", (ROOT / "sample_data/readings_clean.csv").read_bytes())]
    for rows in sizes["calls_rows"]:
        out = io.StringIO()
        write_rows(out, rows)
        files.append((f"{rows} rows", out.getvalue().encode()))
    runs = []
    for label, body in files:
        result = measure(body)
        per_thousand = 1000 / result["rows"]
        runs.append(
            {
                "label": label,
                **result,
                "per_1000_rows": {
                    k: round(v * per_thousand, 2) for k, v in result["calls"].items()
                },
                "total_per_1000_rows": round(result["total"] * per_thousand, 1),
                "floor_per_1000_rows": round(result["floor"] * per_thousand, 1),
                "naive_per_1000_rows": 2000,
            }
        )
    return {"runs": runs}


def orders(sizes: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.order_calls import measure

    return measure(sizes["orders"])


def throughput(sizes: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.calls import offline_env
    from benchmarks.naive import naive_rate
    from benchmarks.throughput import baseline_rate, pipeline_rate, process_cpu, raw_rate
    from localcloud.cloud import LocalCloud

    offline_env()
    # As make run starts it: moto in a process of its own.
    with LocalCloud(aws_port=0, api_port=0, moto_process=True) as cloud:
        bucket = cloud.stack.settings.uploads_bucket
        items = sizes["baseline_rows"]
        # The ceiling is moto writing the pipeline's own items into a table shaped
        # like the readings table (keys and index), measured before every pipeline
        # run and after the last. One client thread trading requests with moto's
        # process swings with the machine's scheduling (2,800 to 5,600 items/s from
        # one run to the next here, whatever moto holds), so the median of the runs
        # is the ceiling; the small-item rate is kept for comparison.
        raws = []
        small_before = baseline_rate(cloud.clients, items)
        naive = naive_rate(cloud.clients, bucket, sizes["naive_rows"])
        runs = []
        for rows in sizes["throughput_rows"]:
            raws.append(raw_rate(cloud, items))
            moto_before, handlers_before = process_cpu(cloud.moto_pid)
            rate, detail = pipeline_rate(cloud, rows, timeout=max(120.0, rows / 100))
            moto_after, handlers_after = process_cpu(cloud.moto_pid)
            moto_cpu, handlers_cpu = moto_after - moto_before, handlers_after - handlers_before
            runs.append(
                {
                    "rows": rows,
                    "rows_per_s": round(rate, 1),
                    "seconds": detail["seconds"],
                    "state": detail["job"]["state"],
                    # Where the time went: CPU seconds of each process over the run.
                    "moto_cpu_seconds": round(moto_cpu, 2),
                    "handlers_cpu_seconds": round(handlers_cpu, 2),
                }
            )
        raws.append(raw_rate(cloud, items))
        small_after = baseline_rate(cloud.clients, items)
        invocations = cloud.runtime.stats()
    raw = statistics.median(raws)
    small = (small_before + small_after) / 2
    for run in runs:
        run["over_raw"] = round(run["rows_per_s"] / raw, 3)
        run["over_raw_small"] = round(run["rows_per_s"] / small, 3)
        run["over_naive"] = round(run["rows_per_s"] / naive["rows_per_s"], 2)
    return {
        "raw_batchwriteitem_items_per_s": {
            "runs": [round(r, 1) for r in raws],
            "min": round(min(raws), 1),
            "max": round(max(raws), 1),
            "median": round(raw, 1),
            "items": items,
        },
        "raw_small_items_per_s": {
            "before": round(small_before, 1),
            "after": round(small_after, 1),
            "mean": round(small, 1),
            "items": items,
        },
        "naive": {**naive, "over_raw": round(naive["rows_per_s"] / raw, 3)},
        "runs": runs,
        "invocations": invocations,
    }


def orders_load(sizes: dict[str, Any]) -> dict[str, Any]:
    """``benchmarks.orders_load``: orders/s end to end at each level of concurrent
    clients, against moto alone serving the same calls."""
    from benchmarks.orders_load import measure

    levels = sizes["orders_load"]
    return measure(list(levels), levels)


def memory(sizes: dict[str, Any]) -> dict[str, Any]:
    """``benchmarks.memory``: each size ingested in a process of its own, timed."""
    from benchmarks import memory as measured
    from benchmarks.calls import offline_env

    offline_env()
    figures = measured.measure(sizes["memory_rows"])
    runs = [
        {
            "rows": r["rows"],
            "file_mib": r["file_mib"],
            "peak_rss_mib": r["peak_rss_mib"],
            "idle_rss_mib": r["idle_rss_mib"],
            "above_idle_mib": r["peak_above_idle_mib"],
            "seconds": r["seconds"],
            "state": r["state"],
        }
        for r in figures["results"]
    ]
    return {"method": figures["method"], "runs": runs}


def cold_start(sizes: dict[str, Any]) -> dict[str, Any]:
    from benchmarks import cold_import, package_size

    result: dict[str, Any] = {"imports": cold_import.measure(sizes["cold_runs"])}
    if sizes["package"]:
        try:
            result["package"] = package_size.measure()
        except Exception as error:  # no network for the wheels: say so, keep the rest
            result["package"] = {"error": f"{type(error).__name__}: {str(error)[-400:]}"}
    else:
        result["package"] = {"skipped": "quick mode (packaging downloads wheels)"}
    return result


def queries(sizes: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.queries import measure

    small, large = sizes["query_items"]
    return measure(small, large)


SECTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "calls": calls,
    "orders": orders,
    "throughput": throughput,
    "orders_load": orders_load,
    "memory": memory,
    "cold_start": cold_start,
    "queries": queries,
}


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    name, out = args[0], Path(args[1])
    sizes = QUICK if "--quick" in args[2:] else FULL
    started = time.perf_counter()
    result = SECTIONS[name](sizes)
    result["seconds"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
