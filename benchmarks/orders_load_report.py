"""The orders-under-load part of ``benchmarks/report.md``: its table, plot and headline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from benchmarks import markdown as md
from benchmarks.plots import save

PERCENTILES = ("p50", "p95", "p99")


def plot(load: dict[str, Any], out_dir: Path) -> str:
    """Orders/s against clients (with moto alone on each level's calls), and latencies."""
    levels = load["levels"]
    clients = [level["clients"] for level in levels]
    fig, (rate, latency) = plt.subplots(1, 2, figsize=(11, 4))
    rate.plot(clients, [lv["orders_per_s"] for lv in levels], "o-", label="end to end")
    rate.plot(
        clients,
        [lv["moto_alone"]["orders_per_s"] for lv in levels],
        "k--",
        marker="s",
        label="moto alone, one client, same calls",
    )
    rate.set_xlabel("concurrent clients")
    rate.set_ylabel("orders per second, POST to settled")
    rate.set_xticks(clients)
    rate.set_ylim(bottom=0)
    rate.set_title("Orders through the local cloud")
    rate.legend(fontsize=8)
    for kind, style in (("POST", "-"), ("PATCH", ":")):
        for p in PERCENTILES:
            values = [lv["latency_ms"][kind][p] for lv in levels]
            latency.plot(clients, values, style, marker="o", label=f"{kind} {p}")
    latency.set_xlabel("concurrent clients")
    latency.set_ylabel("milliseconds")
    latency.set_xticks(clients)
    latency.set_ylim(bottom=0)
    latency.set_title("Request latency, as the clients saw it")
    latency.legend(fontsize=7, ncol=2)
    return save(fig, out_dir, "orders_load")


def headline_rows(load: dict[str, Any] | None) -> list[list[str]]:
    if not load:
        return []
    levels = load["levels"]
    return [
        [
            "orders/s end to end, at " + "/".join(str(lv["clients"]) for lv in levels) + " clients",
            " / ".join(f"{lv['orders_per_s']:.2f}" for lv in levels),
            " / ".join(f"{lv['over_moto_alone']}x" for lv in levels)
            + " moto alone serving the same calls from one client",
            "",
        ]
    ]


def section(load: dict[str, Any] | None, out_dir: Path) -> list[str]:
    """The report's lines for the ``orders_load`` section (none if it has no figures)."""
    if not load:
        return []
    levels = load["levels"]
    moto = load["moto_alone"]
    rows = []
    for lv in levels:
        post, patch = lv["latency_ms"]["POST"], lv["latency_ms"]["PATCH"]
        rows.append(
            [
                lv["clients"],
                lv["orders"],
                lv["seconds"],
                lv["orders_per_s"],
                lv["moto_alone"]["orders_per_s"],
                lv["over_moto_alone"],
                " / ".join(f"{post[p]:.0f}" for p in PERCENTILES),
                " / ".join(f"{patch[p]:.0f}" for p in PERCENTILES),
                lv["calls_per_order"],
                lv["poller_calls_per_order"],
                f"{lv['moto_busy']:.0%} / {lv['app_busy']:.0%}",
                lv["load_average"],
            ]
        )
    by_function = [
        [who, ", ".join(f"{op} {n:g}" for op, n in calls.items())]
        for who, calls in load["by_function_per_order"].items()
    ]
    slowest = max(levels, key=lambda lv: lv["clients"])["moto_alone"]["ms_per_call"]
    return [
        "## Orders under load",
        "",
        "Orders per second through the local cloud started as `make run` starts it (moto in a "
        "process of its own; the API, pollers and handlers in another), from the first "
        "`POST /orders` until every effect of every order has settled: each order in its final "
        "status, one mail per event in the outbox, the day's analytics counters and revenue, "
        f"and the stock of the {load['products']} products (`benchmarks/orders_load.py`). Each "
        "client places orders with its own Idempotency-Key; of every four, one is shipped and "
        "delivered, one cancelled right after its POST, one shipped, one left confirmed. "
        "Latencies are the clients' own (POST and PATCH, p50 / p95 / p99, in ms). *Moto alone* "
        "is the same level's AWS calls (the API's and the handlers', plus the pollers' receives, "
        "deletes and stream reads that moved events) sent again, in order, from one client "
        "thread to a second moto process holding the same state, right after the level: "
        "above 1, the pipeline's concurrency overlaps round trips that one client makes in turn. "
        "*CPU busy* is the CPU time of moto's process and of the other (API, pollers, "
        "handlers, and the bench's clients) over the level's wall clock (100% is one core), "
        "beside the machine's one-minute load average at the level's end: neither process "
        "near a core of its own while the load is above the cores means the level waited "
        "for the machine's other work.",
        "",
        md.table(
            [
                "clients",
                "orders",
                "seconds",
                "orders/s",
                "moto alone orders/s",
                "over moto alone",
                "POST ms",
                "PATCH ms",
                "calls per order",
                "poller calls per order",
                "CPU busy: moto / app",
                "load average",
            ],
            rows,
        ),
        "",
        f"Calls per order over all levels ({load['orders']} orders): "
        f"{load['total_calls_per_order']}, by function:",
        "",
        md.table(["function", "calls per order"], by_function),
        "",
        "Pollers, per order: "
        + ", ".join(f"{op} {n:g}" for op, n in load["poller_calls_per_order"].items())
        + f". Responses with a 5xx: {load['server_errors']}; messages in DLQs: "
        f"{load['dead_letters']}. Moto alone served {moto['calls_per_s']} calls/s over the "
        "run; milliseconds per call at the largest level: "
        + ", ".join(f"{op} {ms:g}" for op, ms in slowest.items())
        + ".",
        "",
        f"![orders under load]({plot(load, out_dir)})",
        "",
    ]
