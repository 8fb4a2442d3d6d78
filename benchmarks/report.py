"""``benchmarks/report.md`` and its plots, from ``benchmarks/results.json``.

Rendering only: every number comes from the results, which hold each figure
with the baseline it was measured against in the same run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

PLOTS = "plots"


def _save(fig: Any, out_dir: Path, name: str) -> str:
    path = out_dir / PLOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"{PLOTS}/{name}.png"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _n(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


# -- plots -------------------------------------------------------------------------


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
    return _save(fig, out_dir, "calls")


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
    return _save(fig, out_dir, "order_calls")


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
    return _save(fig, out_dir, "throughput")


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
    return _save(fig, out_dir, "memory")


def plot_cold_start(cold: dict[str, Any], out_dir: Path) -> str:
    medians = cold["imports"]["median_seconds"]
    names = {"boto3": "import boto3", "app": "import app", "app_then_boto3": "import app, boto3"}
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh([names[k] for k in medians], [v * 1000 for v in medians.values()])
    ax.axvline(medians["boto3"] * 1500, color="r", linestyle=":", label="goal: 1.5x boto3")
    ax.set_xlabel("median milliseconds in a fresh interpreter")
    ax.set_title("Cold import")
    ax.legend()
    return _save(fig, out_dir, "cold_start")


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
    return _save(fig, out_dir, "queries")


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
    return _save(fig, out_dir, "cost")


# -- the report --------------------------------------------------------------------


def headline(results: dict[str, Any]) -> list[list[str]]:
    from benchmarks import orders_load_report  # it draws with this module's helpers

    rows = []
    calls = results.get("calls")
    if calls:
        largest = max(calls["runs"], key=lambda r: r["rows"])
        rows.append(
            [
                f"AWS calls per 1,000 rows ({largest['rows']:,} rows)",
                f"{largest['total_per_1000_rows']}",
                f"{largest['ratio_to_floor']}x the floor ({largest['floor_per_1000_rows']})",
                "within 1.1x",
            ]
        )
    rows += orders_load_report.headline_rows(results.get("orders_load"))
    throughput = results.get("throughput")
    if throughput:
        for run in throughput["runs"]:
            rows.append(
                [
                    f"ingest rows/s, {run['rows']:,} rows",
                    _n(run["rows_per_s"]),
                    f"{run['over_raw']}x moto's raw write rate; {run['over_naive']}x per-row",
                    "at least 0.7x raw",
                ]
            )
    memory = results.get("memory")
    if memory:
        largest = max(memory["runs"], key=lambda r: r["rows"])
        rows.append(
            [
                f"peak RSS above idle, {largest['rows']:,} rows",
                f"{largest['above_idle_mib']} MiB",
                f"idle {largest['idle_rss_mib']} MiB",
                "under 100 MiB, flat",
            ]
        )
    cold = results.get("cold_start")
    if cold:
        imports = cold["imports"]
        rows.append(
            [
                "cold `import app`",
                f"{imports['median_seconds']['app'] * 1000:.0f} ms",
                f"{imports['app_over_boto3']}x `import boto3`; with boto3: "
                f"{imports['app_then_boto3_over_boto3']}x",
                "at most 1.5x",
            ]
        )
    queries = results.get("queries")
    if queries:
        for name in ("by_location", "by_date"):
            large = queries["large"]["pages"][name]
            rows.append(
                [
                    f"page {name}, {queries['large']['items']:,} vs "
                    f"{queries['small']['items']:,} items",
                    f"{large['items_read']:g} items read, {large['app_calls']:,} app calls",
                    f"items read {queries['large_over_small_items_read'][name]}x, app calls "
                    f"{queries['large_over_small_app_calls'][name]}x (app CPU "
                    f"{queries['large_over_small_app_cpu'][name]}x; whole page on moto "
                    f"{queries['large_over_small_median'][name]}x)",
                    "at most 1.5x",
                ]
            )
    cost = results.get("cost", {})
    if "ingest" in cost:
        ingest = cost["ingest"]
        rows.append(
            [
                "dollars per million rows",
                f"${ingest['per_million_rows']['dollars']:.3f}",
                f"{ingest['ratio_to_floor']}x the DynamoDB write floor "
                f"(per-row design: {ingest['naive_ratio_to_floor']}x)",
                "",
            ]
        )
    return rows


PROFILES = Path(__file__).resolve().parent / "profiles"


def where_the_time_goes(throughput: dict[str, Any]) -> list[str]:
    """Each run's CPU by process, and the recorded profiles' CPU by thread role."""
    runs = [r for r in throughput["runs"] if "moto_cpu_seconds" in r]
    parts: list[str] = []
    if runs:
        parts += [
            "Where the time goes: CPU seconds of moto's process and of the handlers' process "
            "(ingest, writer, pollers) over each run, as a share of the run's wall clock; "
            "neither process is busy all the time, so the run waits on the round trips "
            "between them more than on either.",
            "",
            _table(
                ["rows", "seconds", "moto CPU s", "moto busy", "handlers CPU s", "handlers busy"],
                [
                    [
                        f"{r['rows']:,}",
                        r["seconds"],
                        r["moto_cpu_seconds"],
                        f"{r['moto_cpu_seconds'] / r['seconds']:.0%}",
                        r["handlers_cpu_seconds"],
                        f"{r['handlers_cpu_seconds'] / r['seconds']:.0%}",
                    ]
                    for r in runs
                ],
            ),
            "",
        ]
    recorded = [PROFILES / f"pipeline-20k-{when}.txt" for when in ("before", "after")]
    if all(path.exists() for path in recorded):
        parts += [
            "The profiles taken before the throughput work and after it (cProfile on every "
            "thread, moto in the same process, `python -m benchmarks.pipeline_profile`; "
            "`benchmarks/profiles/`), CPU by thread role:",
            "",
            "```",
        ]
        for path in recorded:
            text = path.read_text()
            role_block = text.split("CPU time by thread role", 1)[-1].split("\n\n", 1)[0]
            parts += [path.name + ": " + text.splitlines()[2], *role_block.splitlines()[1:], ""]
        parts += ["```", ""]
    return parts


def render(results: dict[str, Any], out_dir: Path) -> Path:
    """Write ``report.md`` and ``plots/*.png`` into ``out_dir``; returns the report's path."""
    from benchmarks import orders_load_report  # it draws with this module's helpers

    machine = results["machine"]
    command = "python -m benchmarks" + (" --quick" if results["quick"] else "")
    rerun = results.get("only")
    if rerun:
        command += " --only " + " ".join(rerun)
    parts = [
        "# eventflow benchmarks",
        "",
        f"Generated by `make bench` (`{command}`) "
        f"on {results['started']}, in {results['seconds']:.0f} s. Machine: {machine['cpus']} CPUs "
        f"({machine['processor'] or 'unknown processor'}), Python {machine['python']}, "
        f"{machine['os']}; load average {machine['load_average']} at the start. "
        "Every figure is a ratio against a baseline measured in the same run, on the same "
        "machine: absolute times depend on the machine and its load, ratios much less."
        + (
            " That run re-ran only some sections; the others keep their figures from earlier "
            "runs on this machine (when each ran: the last table)."
            if rerun
            else ""
        ),
        "",
    ]
    if results["quick"]:
        parts += ["**Quick mode: tiny sizes for a smoke test; no figure here means anything.**", ""]
    parts += [
        "## Headline",
        "",
        _table(["figure", "value", "against its baseline", "goal"], headline(results)),
        "",
    ]

    calls = results.get("calls")
    if calls:
        parts += [
            "## AWS calls per 1,000 rows",
            "",
            "Every call the ingest and writer functions make, counted through a botocore hook "
            "under moto, per 1,000 rows; the floor is what no design can go below "
            "(one BatchWriteItem per 25 rows, plus one SendMessageBatch per 256 KiB of CSV), "
            "and the per-row design makes 2,000. (SQS has taken messages of up to 1 MiB since "
            "2025; the floor keeps the design's 256 KiB, which changes it by under 1% here, and "
            "SQS bills each 64 KiB either way.)",
            "",
            _table(
                ["file", "rows", "calls", "per 1,000 rows", "floor per 1,000", "ratio to floor"],
                [
                    [
                        r["label"],
                        f"{r['rows']:,}",
                        r["total"],
                        r["total_per_1000_rows"],
                        r["floor_per_1000_rows"],
                        r["ratio_to_floor"],
                    ]
                    for r in calls["runs"]
                ],
            ),
            "",
            "By operation, per 1,000 rows:",
            "",
            _table(
                ["operation", *[r["label"] for r in calls["runs"]]],
                [
                    [op, *[r["per_1000_rows"].get(op, 0) for r in calls["runs"]]]
                    for op in sorted({op for r in calls["runs"] for op in r["per_1000_rows"]})
                ],
            ),
            "",
            f"![calls]({plot_calls(calls, out_dir)})",
            "",
        ]
    orders = results.get("orders")
    if orders:
        parts += [
            "## AWS calls per order",
            "",
            "Orders driven over HTTP through a running local cloud (POST with an "
            "Idempotency-Key, then PATCH to SHIPPED and DELIVERED, or to CANCELLED), every "
            "consumer that app.py registers running; each call is counted and attributed to "
            "the function that made it, after one uncounted warm-up order of each kind. "
            "Event handlers registered in this run: "
            f"{', '.join(orders.get('event_handlers', []))}.",
            "",
        ]
        for kind in ("shipped", "cancelled"):
            if kind not in orders:
                continue
            life = orders[kind]
            parts += [
                f"**{kind}** ({life['orders']} orders): {life['total_per_order']} calls per order; "
                "Lambda invocations per order: "
                + ", ".join(f"{k} {v:g}" for k, v in life["invocations_per_order"].items())
                + ".",
                "",
                _table(
                    ["function", "calls per order"],
                    [
                        [who, ", ".join(f"{op} {n:g}" for op, n in calls_.items())]
                        for who, calls_ in life["by_function_per_order"].items()
                    ],
                ),
                "",
            ]
        parts += [f"![order calls]({plot_orders(orders, out_dir)})", ""]
    parts += orders_load_report.section(results.get("orders_load"), out_dir)
    throughput = results.get("throughput")
    if throughput:
        raw = throughput["raw_batchwriteitem_items_per_s"]
        naive = throughput["naive"]
        parts += [
            "## Throughput",
            "",
            "Rows per second from the upload of a generated CSV to its job's COMPLETED state, "
            "through the local cloud started as `make run` starts it (moto in a process of its "
            "own; S3 notification, ingest, SQS, writer, counters), against "
            "moto's raw BatchWriteItem rate on the same server for the pipeline's own items "
            "in a table with the readings table's keys and index (the ceiling: every row is "
            f"written once; {_n(raw['median'])} items/s, the median of "
            f"{len(raw['runs'])} runs of {raw['items']:,} items, one before each size and one "
            f"after the last, from {_n(raw['min'])} to {_n(raw['max'])}), against moto's "
            "rate for small 6-attribute items in a table without an index (`over small`: "
            f"{_n(throughput['raw_small_items_per_s']['mean'])} items/s; moto does less work "
            "per such item) and against the per-row design "
            f"({_n(naive['rows_per_s'])} rows/s on {naive['rows']:,} rows, "
            f"{naive['calls_per_1000_rows']:,} calls per 1,000 rows).",
            "",
            _table(
                ["rows", "seconds", "rows/s", "over raw", "over small", "over per-row"],
                [
                    [
                        f"{r['rows']:,}",
                        r["seconds"],
                        _n(r["rows_per_s"]),
                        r["over_raw"],
                        r["over_raw_small"],
                        r["over_naive"],
                    ]
                    for r in throughput["runs"]
                ],
            ),
            "",
            *where_the_time_goes(throughput),
            f"![throughput]({plot_throughput(throughput, out_dir)})",
            "",
        ]
    memory = results.get("memory")
    if memory:
        parts += [
            "## Memory",
            "",
            "The ingest handler's peak resident set (the kernel's VmHWM) above the same "
            "process's idle resident set (everything imported, clients built), streaming a "
            "generated file from S3 in a process of its own (`benchmarks/memory.py`: the peak "
            "is reset once the process is idle, so it is the invocation's own; a child's "
            "ru_maxrss would carry its parent's peak); the time is each size's whole run "
            "(generating, uploading and ingesting the file).",
            "",
            _table(
                ["rows", "file MiB", "peak RSS MiB", "idle MiB", "above idle MiB", "seconds"],
                [
                    [
                        f"{r['rows']:,}",
                        r["file_mib"],
                        r["peak_rss_mib"],
                        r["idle_rss_mib"],
                        r["above_idle_mib"],
                        r["seconds"],
                    ]
                    for r in memory["runs"]
                ],
            ),
            "",
            f"![memory]({plot_memory(memory, out_dir)})",
            "",
        ]
    cold = results.get("cold_start")
    if cold:
        imports = cold["imports"]
        medians = imports["median_seconds"]
        parts += [
            "## Cold start",
            "",
            f"Median of {imports['runs']} interleaved runs, each in a fresh interpreter: "
            "`import app` is what every function pays at its cold start; `import app, boto3` "
            "is what a function that calls AWS has paid by its first call, since the app "
            "imports boto3, pydantic, Powertools' batch processors and each handler's domain "
            "modules at first use (`chalicelib/lazy.py`).",
            "",
            _table(
                ["statement", "median ms", "over `import boto3`"],
                [
                    ["`import boto3`", f"{medians['boto3'] * 1000:.0f}", "1.00"],
                    ["`import app`", f"{medians['app'] * 1000:.0f}", imports["app_over_boto3"]],
                    [
                        "`import app, boto3`",
                        f"{medians['app_then_boto3'] * 1000:.0f}",
                        imports["app_then_boto3_over_boto3"],
                    ],
                ],
            ),
            "",
            "Heaviest imports of `import app` (`python -X importtime`, cumulative):",
            "",
            _table(
                ["module", "ms"],
                [
                    [m["module"], f"{m['cumulative_us'] / 1000:.1f}"]
                    for m in imports["heaviest_imports"]
                ],
            ),
            "",
            f"![cold start]({plot_cold_start(cold, out_dir)})",
            "",
        ]
        package = cold.get("package", {})
        if "shipped" in package:
            shipped, code = package["shipped"], package["code_only"]
            parts += [
                f"The deployment package `chalice package` builds for the `{package['stage']}` "
                f"stage is {shipped['zip_bytes'] / 2**20:.2f} MiB zipped "
                f"({shipped['unpacked_bytes'] / 2**20:.1f} MiB unpacked, "
                f"{shipped['files']} files); "
                f"the app's own code is {code['zip_bytes'] / 2**10:.0f} KiB of it, the "
                f"dependencies (Powertools, pydantic and its compiled core) "
                f"{package['dependencies_share'] * 100:.0f}%.",
                "",
            ]
        else:
            parts += [
                "Deployment package: not measured "
                f"({package.get('skipped') or package.get('error')}).",
                "",
            ]
    queries = results.get("queries")
    if queries:
        rows = []
        for size in ("small", "large"):
            for name in ("by_location", "by_date"):
                page = queries[size]["pages"][name]
                calls_ = ", ".join(f"{op} {n:g}" for op, n in page["calls_per_page"].items())
                rows.append(
                    [
                        f"{queries[size]['items']:,}",
                        name,
                        page["items"],
                        f"{page['items_read']:g}",
                        f"{page['app_calls']:,}",
                        page["app_cpu_ms"],
                        page["median_ms"],
                        calls_,
                    ]
                )
        parts += [
            "## Queries",
            "",
            "One page (50 items) of `GET /readings/{location}` and `GET /readings?date=` through "
            "the app's routes, with a small and a large table; the queried location and day hold "
            f"the same {queries['probe_readings']} readings in both, so only the table around "
            "them grows. moto runs in a process of its own. *Items read* is the sum of the "
            "page's Query calls' `ScannedCount`: what DynamoDB reads and bills for the page, and "
            "what its latency follows. *App calls* counts the Python function calls made while "
            "serving the page (routing, validation, botocore, the merge across date shards, "
            "JSON; cProfile, one extra request): the app's work, counted. *App CPU* is the CPU "
            "time of the thread that serves the request; beside a moto that walks a large table "
            "on the other core it grows while the calls stay the same (the two processes share "
            "the machine's caches). *Whole page* is the wall clock; it grows with the "
            "table because moto's Query walks every item of the table to find a partition's, "
            "which DynamoDB does not do. Medians of "
            f"{queries.get('samples', {}).get('small', '?')} and "
            f"{queries.get('samples', {}).get('large', '?')} requests.",
            "",
            _table(
                [
                    "items",
                    "query",
                    "page items",
                    "items read",
                    "app calls",
                    "app CPU ms",
                    "whole page ms",
                    "calls per page",
                ],
                rows,
            ),
            "",
            "Large over small: "
            + "; ".join(
                f"{name}: items read {queries['large_over_small_items_read'][name]}x, app calls "
                f"{queries['large_over_small_app_calls'][name]}x, app CPU "
                f"{queries['large_over_small_app_cpu'][name]}x, whole page "
                f"{queries['large_over_small_median'][name]}x"
                for name in ("by_location", "by_date")
            )
            + ".",
            "",
            f"![queries]({plot_queries(queries, out_dir)})",
            "",
        ]
    cost = results.get("cost", {})
    if "ingest" in cost:
        ingest = cost["ingest"]
        priced = ingest["per_million_rows"]
        parts += [
            "## Cost",
            "",
            "Dollars modelled from the counted calls' billed units (`benchmarks/billing.py`) at "
            f"the on-demand list prices of {cost['region']} read on {cost['prices_taken_on']} "
            "(`benchmarks/prices.json`), plus Lambda's poller (a receive and a delete per batch "
            "it delivers), Lambda requests and, for orders, API Gateway requests; the floor is "
            "the DynamoDB writes no design avoids (one write request unit per row; one per state "
            "an order is stored in). Lambda duration, logs and storage are not modelled.",
            "",
            f"**Per million rows** (scaled from {ingest['measured_rows']:,}): "
            f"${priced['dollars']:.3f}, {ingest['ratio_to_floor']}x the floor of "
            f"${ingest['floor_per_million_rows']:.3f}; the per-row design would cost "
            f"${ingest['naive_per_million_rows']:.3f} ({ingest['naive_ratio_to_floor']}x).",
            "",
            _table(
                ["dimension", "dollars"],
                [[k, f"{v:.6f}"] for k, v in priced["by_dimension"].items()],
            ),
            "",
        ]
        for kind, order in cost.get("orders", {}).items():
            per = order["per_thousand_orders"]
            parts += [
                f"**Per thousand {kind} orders**: ${per['dollars']:.4f}, "
                f"{order['ratio_to_floor']}x "
                f"the write floor of ${order['floor_per_thousand_orders']:.4f} "
                f"({', '.join(f'{k} ${v:.4f}' for k, v in per['by_dimension'].items())}).",
                "",
            ]
        parts += [f"![cost]({plot_cost(cost, out_dir)})", ""]
    parts += [
        "## Sections and their time",
        "",
        _table(
            ["section", "ran at", "seconds", "status"],
            [
                [name, info.get("ran_at", ""), info.get("seconds", ""), info.get("status", "")]
                for name, info in results["sections"].items()
            ],
        ),
        "",
    ]
    path = out_dir / "report.md"
    path.write_text("\n".join(parts))
    return path
