"""``status``: the status view, as rich tables or one plain line, and the ``--check`` verdict.

The numbers come from :func:`ops.snapshot.snapshot`, which gathers them as
plain data; this module only renders them, for the one-shot command and for
the local cloud's live view (``localcloud.live``).

``--check`` makes the command a health check: it exits 1 when a stream
mapping is stalled, an alarm it evaluates is in ALARM, or a DLQ holds messages.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich import box
from rich.columns import Columns
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from chalicelib import metric_names
from chalicelib.orders import analytics
from ops import lag
from ops.snapshot import snapshot
from ops.target import Target

# -- rendering -----------------------------------------------------------------


# Borderless tables keep the whole live view on one screen.
_TABLE_STYLE: dict[str, Any] = {
    "title_justify": "left",
    "box": box.SIMPLE_HEAD,
    "show_edge": False,
    "title_style": "bold",
}


def _count(value: Any, alert: bool = False) -> Text:
    if value is None:
        return Text("?", style="dim")
    return Text(str(value), style="bold red" if alert and value else "")


def _queues_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Queues", **_TABLE_STYLE)
    for column in ("queue", "visible", "in flight", "DLQ"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for row in rows:
        if "error" in row:
            table.add_row(row["name"], Text(row["error"], style="red"), "", "")
            continue
        dlq = row["dlq_visible"] + row["dlq_in_flight"]
        table.add_row(
            row["name"], _count(row["visible"]), _count(row["in_flight"]), _count(dlq, alert=True)
        )
    return table


def _tables_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Tables", **_TABLE_STYLE)
    table.add_column("table")
    table.add_column("items", justify="right")
    for row in rows:
        if "error" in row:
            table.add_row(row["name"], Text(row["error"], style="red"))
        else:
            suffix = " (approx.)" if row["approximate"] else ""
            table.add_row(row["name"], f"{row['items']}{suffix}")
    return table


def _functions_table(section: dict[str, Any], runtime_stats: dict[str, Any] | None) -> Table:
    table = Table(title="Handlers (last hour)", **_TABLE_STYLE)
    table.add_column("function")
    table.add_column("invocations", justify="right")
    table.add_column("errors", justify="right")
    if runtime_stats is not None:
        table.add_column("timeouts", justify="right")
        table.add_column("last error", overflow="fold", max_width=60)
    for row in section["items"]:
        cells: list[Any] = [
            row["function"],
            _count(row["invocations"]),
            _count(row["errors"], alert=True),
        ]
        if runtime_stats is not None:
            stats = runtime_stats.get(row["function"], {})
            cells += [_count(stats.get("timeouts"), alert=True), stats.get("last_error") or ""]
        table.add_row(*cells)
    if section.get("error"):
        table.caption = f"metrics unavailable: {section['error']}"
    return table


def _jobs_table(section: dict[str, Any]) -> Table:
    table = Table(title="Recent ingest jobs", **_TABLE_STYLE)
    for column in ("started", "key", "state", "seen", "accepted", "rejected", "written"):
        numeric = column in ("seen", "accepted", "rejected", "written")
        table.add_column(column, justify="right" if numeric else "left")
    styles = {"COMPLETED": "green", "COMPLETED_WITH_REJECTS": "yellow", "FAILED": "bold red"}
    for job in section["items"]:
        table.add_row(
            str(job.get("started_at") or "")[:19],
            str(job.get("key", "")),
            Text(str(job.get("state", "")), style=styles.get(job.get("state"), "cyan")),
            str(job.get("rows_seen", "")),
            str(job.get("rows_accepted", "")),
            str(job.get("rows_rejected", "")),
            str(job.get("rows_written", "")),
        )
    if section.get("error"):
        table.caption = f"jobs unavailable: {section['error']}"
    elif not section["items"]:
        table.caption = "no ingest jobs yet"
    return table


def _orders_table(orders: dict[str, Any], metrics: dict[str, Any]) -> Table:
    table = Table(title="Orders", **_TABLE_STYLE)
    table.add_column("status")
    table.add_column("orders", justify="right")
    for status, number in orders["by_status"].items():
        table.add_row(status, _count(number))
    for name, total in metrics.get("sums", {}).items():
        table.add_row(Text(f"{name} (last hour)", style="dim"), _count(total))
    notes = [orders.get("skipped"), orders.get("error"), metrics.get("error")]
    if any(notes):
        table.caption = "; ".join(n for n in notes if n)
    return table


def _stock_table(section: dict[str, Any]) -> Table:
    table = Table(title="Stock", **_TABLE_STYLE)
    for column in ("product", "stock", "reserved"):
        table.add_column(column, justify="left" if column == "product" else "right")
    for row in section["items"]:
        table.add_row(row["product_id"], _count(row["stock"]), _count(row["reserved"]))
    note = section.get("skipped") or section.get("error")
    if note:
        table.caption = note
    elif not section["items"]:
        table.caption = "no products yet"
    return table


def _mail_table(section: dict[str, Any]) -> Table:
    table = Table(title="Mail", **_TABLE_STYLE)
    table.add_column("outbox")
    table.add_column("emails", justify="right")
    table.add_row("sent", _count(section["sent"]))
    note = section.get("skipped") or section.get("error")
    if note:
        table.caption = note
    return table


def _analytics_table(section: dict[str, Any]) -> Table:
    table = Table(title="Analytics today", **_TABLE_STYLE)
    table.add_column("counter")
    table.add_column("value", justify="right")
    table.add_row("day (UTC)", section["date"])
    if "error" in section:
        table.caption = f"analytics unavailable: {section['error']}"
        return table
    for counter in analytics.COUNTERS:
        table.add_row(counter.removeprefix("orders_"), _count(section[counter]))
    table.add_row(analytics.REVENUE, section[analytics.REVENUE])
    return table


def render(snap: dict[str, Any], runtime_stats: dict[str, Any] | None = None) -> Group:
    """The status view as one rich renderable; ``runtime_stats`` adds the in-process runtime's."""
    header = Text.assemble(
        ("eventflow ", "bold"),
        (f"stage {snap['stage']}", "cyan"),
        f" at {snap['endpoint']}  ",
        (snap["taken_at"], "dim"),
    )
    return Group(
        header,
        # Side by side when the terminal is wide enough; Columns wraps otherwise.
        Columns(
            [
                _queues_table(snap["queues"]),
                _tables_table(snap["tables"]),
                _orders_table(snap["orders"], snap["metrics"]),
                _stock_table(snap["stock"]),
                _mail_table(snap["mail"]),
                _analytics_table(snap["analytics"]),
            ],
            padding=(0, 4),
        ),
        _functions_table(snap["functions"], runtime_stats),
        lag.streams_table(snap["streams"], runtime_stats, _TABLE_STYLE),
        _jobs_table(snap["jobs"]),
    )


def plain_line(snap: dict[str, Any]) -> str:
    """One log-friendly line, for output that is not a terminal."""
    parts = []
    for q in snap["queues"]:
        if "error" in q:
            parts.append(f"{q['key']}=error")
        else:
            dlq = q["dlq_visible"] + q["dlq_in_flight"]
            parts.append(f"{q['key']} {q['visible']}+{q['in_flight']} dlq {dlq}")
    parts += [f"{t['key']} {t.get('items', '?')}" for t in snap["tables"]]
    parts += [
        f"{f['function']} {f['invocations']} inv {f['errors']} err"
        for f in snap["functions"]["items"]
    ]
    jobs = snap["jobs"]["items"]
    if jobs:
        parts.append(f"last job {jobs[0].get('state')}")
    by_status = snap["orders"]["by_status"]
    if by_status:
        parts.append("orders " + " ".join(f"{s} {n}" for s, n in by_status.items() if n))
    published = snap["metrics"].get("sums", {}).get(metric_names.ORDER_EVENTS_PUBLISHED)
    if published:
        parts.append(f"events published {published}")
    if snap["mail"].get("sent"):
        parts.append(f"mails sent {snap['mail']['sent']}")
    today = snap.get("analytics", {})
    if today.get("orders_created") or today.get("orders_confirmed"):
        parts.append(
            f"today {today['orders_created']} created {today['orders_confirmed']} confirmed "
            f"revenue {today[analytics.REVENUE]}"
        )
    parts += lag.plain_parts(snap["streams"])
    return "status: " + " | ".join(parts)


def problems(snap: dict[str, Any]) -> list[str]:
    """Why ``--check`` fails: stalled stream mappings, alarms in ALARM, non-empty DLQs."""
    found = lag.problems(snap["streams"])
    for q in snap["queues"]:
        dead = q.get("dlq_visible", 0) + q.get("dlq_in_flight", 0)
        if dead:
            found.append(f"{q['dlq_name']} holds {dead} message(s)")
    return found


# -- command -------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("status", help="print queue, table, job and handler status")
    parser.add_argument("--jobs", type=int, default=5, help="recent ingest jobs to show")
    parser.add_argument(
        "--exact", action="store_true", help="count table items with a Scan (reads every item)"
    )
    parser.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a stream mapping is stalled, an alarm is in ALARM or a DLQ holds messages",
    )
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=lag.DEFAULT_STALL_SECONDS,
        help="a stream mapping whose oldest unprocessed record is older is STALLED "
        "(default: the iterator-age alarm's threshold, %(default)g)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, target: Target, console: Console) -> int:
    snap = snapshot(
        target.clients,
        target.stack,
        target.outputs,
        jobs_limit=args.jobs,
        exact=args.exact,
        stall_seconds=args.stall_seconds,
    )
    if args.json:
        console.print_json(data=snap, default=str)
    else:
        console.print(render(snap))
    if not args.check:
        return 0
    found = problems(snap)
    for problem in found:
        console.print(f"[red]check failed:[/] {problem}", soft_wrap=True)
    return 1 if found else 0
