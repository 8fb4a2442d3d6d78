"""The ingest path's sections of ``benchmarks/report.md``: calls, throughput, memory, queries.

Rendering only, as :mod:`benchmarks.report`: every number comes from the
results. Each function returns its section's Markdown lines, none when the
results hold no figures for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import markdown as md
from benchmarks import plots


def calls_section(calls: dict[str, Any] | None, out_dir: Path) -> list[str]:
    """The ingest path's AWS calls per 1,000 rows, by file and by operation, against the floor."""
    if not calls:
        return []
    return [
        "## AWS calls per 1,000 rows",
        "",
        "Every call the ingest and writer functions make, counted through a botocore hook "
        "under moto, per 1,000 rows; the floor is what no design can go below "
        "(one BatchWriteItem per 25 rows, plus one SendMessageBatch per 256 KiB of CSV), "
        "and the per-row design makes 2,000. (SQS has taken messages of up to 1 MiB since "
        "2025; the floor keeps the design's 256 KiB, which changes it by under 1% here, and "
        "SQS bills each 64 KiB either way.)",
        "",
        md.table(
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
        md.table(
            ["operation", *[r["label"] for r in calls["runs"]]],
            [
                [op, *[r["per_1000_rows"].get(op, 0) for r in calls["runs"]]]
                for op in sorted({op for r in calls["runs"] for op in r["per_1000_rows"]})
            ],
        ),
        "",
        f"![calls]({plots.plot_calls(calls, out_dir)})",
        "",
    ]


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
            md.table(
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


def throughput_section(throughput: dict[str, Any] | None, out_dir: Path) -> list[str]:
    """Ingest rows per second through the local cloud, against moto's raw write rate."""
    if not throughput:
        return []
    raw = throughput["raw_batchwriteitem_items_per_s"]
    naive = throughput["naive"]
    parts = [
        "## Throughput",
        "",
        "Rows per second from the upload of a generated CSV to its job's COMPLETED state, "
        "through the local cloud started as `make run` starts it (moto in a process of its "
        "own; S3 notification, ingest, SQS, writer, counters), against "
        "moto's raw BatchWriteItem rate on the same server for the pipeline's own items "
        "in a table with the readings table's keys and index (the ceiling: every row is "
        f"written once; {md.number(raw['median'])} items/s, the median of "
        f"{len(raw['runs'])} runs of {raw['items']:,} items, one before each size and one "
        f"after the last, from {md.number(raw['min'])} to {md.number(raw['max'])}), against moto's "
        "rate for small 6-attribute items in a table without an index (`over small`: "
        f"{md.number(throughput['raw_small_items_per_s']['mean'])} items/s; moto does less work "
        "per such item) and against the per-row design "
        f"({md.number(naive['rows_per_s'])} rows/s on {naive['rows']:,} rows, "
        f"{naive['calls_per_1000_rows']:,} calls per 1,000 rows).",
        "",
        md.table(
            ["rows", "seconds", "rows/s", "over raw", "over small", "over per-row"],
            [
                [
                    f"{r['rows']:,}",
                    r["seconds"],
                    md.number(r["rows_per_s"]),
                    r["over_raw"],
                    r["over_raw_small"],
                    r["over_naive"],
                ]
                for r in throughput["runs"]
            ],
        ),
        "",
        *where_the_time_goes(throughput),
        f"![throughput]({plots.plot_throughput(throughput, out_dir)})",
        "",
    ]
    return parts


def memory_section(memory: dict[str, Any] | None, out_dir: Path) -> list[str]:
    """The ingest handler's peak memory above idle, by file size."""
    if not memory:
        return []
    return [
        "## Memory",
        "",
        "The ingest handler's peak resident set (the kernel's VmHWM) above the same "
        "process's idle resident set (everything imported, clients built), streaming a "
        "generated file from S3 in a process of its own (`benchmarks/memory.py`: the peak "
        "is reset once the process is idle, so it is the invocation's own; a child's "
        "ru_maxrss would carry its parent's peak); the time is each size's whole run "
        "(generating, uploading and ingesting the file).",
        "",
        md.table(
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
        f"![memory]({plots.plot_memory(memory, out_dir)})",
        "",
    ]


def queries_section(queries: dict[str, Any] | None, out_dir: Path) -> list[str]:
    """One page of each readings query, with a small and a large table."""
    if not queries:
        return []
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
    parts = [
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
        md.table(
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
        f"![queries]({plots.plot_queries(queries, out_dir)})",
        "",
    ]
    return parts
