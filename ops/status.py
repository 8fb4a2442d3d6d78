"""``status``: queue depths, DLQs, table counts, recent ingest jobs and handler metrics.

:func:`snapshot` gathers everything as plain data, with the same API calls
against the local cloud and a real account, so the one-shot command and the
local cloud's live view (``localcloud.live``) show the same numbers. Each
section fails on its own: a missing permission or resource shows up as an
``error`` entry instead of hiding the rest.

Where the numbers come from:

* queues: ``GetQueueAttributes`` approximate counts, as CloudWatch reports them;
* tables: ``DescribeTable`` ``ItemCount``. AWS refreshes it about every six
  hours, so it is marked approximate there; moto computes it exactly.
  ``exact=True`` counts with a ``Scan`` (``Select=COUNT``) instead, which reads
  the whole table and is meant for the local cloud;
* jobs: the first page of ingest-job records, newest first
  (``chalicelib.readings.jobs.IngestJobs``);
* handlers: the ``AWS/Lambda`` ``Invocations`` and ``Errors`` sums over the last
  hour, which Lambda publishes in AWS and the local runtime publishes locally;
* mail: the messages in the local cloud's SES outbox (``ops.mail``); real SES
  keeps none, so against AWS the section says so.
* analytics: today's (UTC) item of the daily-analytics table, one ``GetItem``.
* streams: each stream mapping's newest ``IteratorAge``, whether it is
  stalled, and its iterator-age alarm's state (:mod:`ops.lag`).

``--check`` makes the command a health check: it exits 1 when a stream
mapping is stalled, an alarm it evaluates is in ALARM, or a DLQ holds messages.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich import box
from rich.columns import Columns
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from chalicelib.clock import Clock
from chalicelib.observability import NAMESPACE
from chalicelib.orders import analytics
from chalicelib.orders.states import Status
from chalicelib.readings.jobs import IngestJobs
from infra.declaration import Stack
from infra.provision import Outputs
from ops import lag
from ops.target import Target, is_local_url

METRICS_WINDOW = timedelta(hours=1)
LAMBDA_METRICS = ("Invocations", "Errors")
# Counters the handlers publish through EMF (chalicelib.observability).
APP_METRICS = ("OrdersPlaced", "OrderEventsPublished", "IntakeRejected")
ORDER_STATUSES = tuple(Status)
_AWS_ERRORS = (ClientError, BotoCoreError)


def function_names(stack: Stack) -> list[str]:
    """The stage's event handlers (Chalice function names), in declaration order."""
    names = [source.function for source in stack.event_sources]
    # An S3 trigger is a bucket notification, not an event-source mapping, so
    # the declaration has no settings entry for it.
    if stack.settings.ingest_trigger == "s3":
        names.append("ingest_from_s3")
    return list(dict.fromkeys(names))


def lambda_name(stack: Stack, function: str) -> str:
    """Chalice's deployed name for a function: ``{app}-{stage}-{function}``."""
    return stack.settings.name(function)


# -- gathering -----------------------------------------------------------------


def queue_counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def queues_snapshot(sqs: Any, stack: Stack, outputs: Outputs) -> list[dict[str, Any]]:
    rows = []
    for queue in stack.queues:
        row: dict[str, Any] = {"key": queue.key, "name": queue.name, "dlq_name": queue.dlq_name}
        try:
            row["visible"], row["in_flight"] = queue_counts(sqs, outputs.queues[queue.key]["url"])
            row["dlq_visible"], row["dlq_in_flight"] = queue_counts(
                sqs, outputs.queues[queue.dlq_key]["url"]
            )
        except (*_AWS_ERRORS, KeyError) as error:
            row["error"] = str(error)
        rows.append(row)
    for failures in stack.failure_queues:
        # Nothing is ever queued here for a consumer: all it holds is dead letters.
        row = {"key": failures.key, "name": failures.name, "dlq_name": failures.name}
        row["visible"], row["in_flight"] = 0, 0
        try:
            row["dlq_visible"], row["dlq_in_flight"] = queue_counts(
                sqs, outputs.queues[failures.key]["url"]
            )
        except (*_AWS_ERRORS, KeyError) as error:
            row["error"] = str(error)
        rows.append(row)
    return rows


def _scan_count(ddb: Any, table: str) -> int:
    count = 0
    for page in ddb.get_paginator("scan").paginate(TableName=table, Select="COUNT"):
        count += page["Count"]
    return count


def tables_snapshot(ddb: Any, stack: Stack, exact: bool) -> list[dict[str, Any]]:
    approximate = not exact and not is_local_url(ddb.meta.endpoint_url)
    rows = []
    for table in stack.tables:
        row: dict[str, Any] = {"key": table.key, "name": table.name, "approximate": approximate}
        try:
            if exact:
                row["items"] = _scan_count(ddb, table.name)
            else:
                row["items"] = int(ddb.describe_table(TableName=table.name)["Table"]["ItemCount"])
        except _AWS_ERRORS as error:
            row["error"] = str(error)
        rows.append(row)
    return rows


def jobs_snapshot(ddb: Any, stack: Stack, limit: int) -> dict[str, Any]:
    try:
        jobs = IngestJobs(ddb, stack.settings.ingests_table, Clock())
        items, _resume_key = jobs.list(limit)
        return {"items": items}
    except _AWS_ERRORS as error:
        return {"items": [], "error": str(error)}


def _metric_sums(
    cloudwatch: Any, metrics: list[tuple[str, str, dict[str, str]]], now: datetime | None
) -> list[int]:
    """Sum of each (namespace, name, dimensions) metric over the last hour, in one paginated
    GetMetricData call; in the order given."""
    # GetMetricData excludes the end time and truncates to the second, so end a
    # minute ahead to include datapoints published just now.
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - METRICS_WINDOW - timedelta(minutes=1)
    period = int((end - start).total_seconds())
    queries = [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                },
                "Period": period,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }
        for i, (namespace, name, dimensions) in enumerate(metrics)
    ]
    sums = [0] * len(metrics)
    paginator = cloudwatch.get_paginator("get_metric_data")
    for page in paginator.paginate(MetricDataQueries=queries, StartTime=start, EndTime=end):
        for result in page["MetricDataResults"]:
            sums[int(result["Id"][1:])] += int(sum(result.get("Values", [])))
    return sums


def functions_snapshot(
    cloudwatch: Any, stack: Stack, now: datetime | None = None
) -> dict[str, Any]:
    """Sums of AWS/Lambda metrics per handler over the last hour, in one GetMetricData call."""
    names = function_names(stack)
    rows = [
        {"function": f, "name": lambda_name(stack, f), "invocations": 0, "errors": 0} for f in names
    ]
    metrics = [
        ("AWS/Lambda", metric, {"FunctionName": row["name"]})
        for row in rows
        for metric in LAMBDA_METRICS
    ]
    try:
        sums = iter(_metric_sums(cloudwatch, metrics, now))
    except _AWS_ERRORS as error:
        return {"items": rows, "error": str(error)}
    for row in rows:
        for metric in LAMBDA_METRICS:
            row[metric.lower()] = next(sums)
    return {"items": rows}


def orders_snapshot(ddb: Any, stack: Stack, exact: bool) -> dict[str, Any]:
    """Orders by status. Counting reads every order (a Scan), so only locally or with --exact."""
    if not exact and not is_local_url(ddb.meta.endpoint_url):
        return {"by_status": {}, "skipped": "counting orders reads the table: pass --exact"}
    counts: Counter[str] = Counter()
    try:
        for page in ddb.get_paginator("scan").paginate(
            TableName=stack.settings.orders_table,
            ProjectionExpression="#s",
            ExpressionAttributeNames={"#s": "status"},
        ):
            counts.update(item["status"]["S"] for item in page["Items"])
    except _AWS_ERRORS as error:
        return {"by_status": {}, "error": str(error)}
    return {"by_status": {s: counts.get(s, 0) for s in ORDER_STATUSES}}


def stock_snapshot(ddb: Any, stack: Stack, exact: bool, limit: int = 10) -> dict[str, Any]:
    """The first ``limit`` products' stock and reservations (a Scan: locally or with --exact)."""
    if not exact and not is_local_url(ddb.meta.endpoint_url):
        return {"items": [], "skipped": "reading stock scans the products table: pass --exact"}
    try:
        items = ddb.scan(
            TableName=stack.settings.products_table,
            ProjectionExpression="product_id, stock, reserved",
            Limit=limit,
        )["Items"]
    except _AWS_ERRORS as error:
        return {"items": [], "error": str(error)}
    rows = [
        {
            "product_id": i["product_id"]["S"],
            "stock": int(i["stock"]["N"]),
            "reserved": int(i.get("reserved", {"N": "0"})["N"]),
        }
        for i in items
    ]
    return {"items": sorted(rows, key=lambda r: r["product_id"])}


def app_metrics_snapshot(
    cloudwatch: Any, stack: Stack, now: datetime | None = None
) -> dict[str, Any]:
    """The handlers' own (EMF) counters over the last hour: orders and their events."""
    dimensions = {"stage": stack.stage}  # chalicelib.observability's one dimension set
    metrics = [(NAMESPACE, name, dimensions) for name in APP_METRICS]
    try:
        sums = _metric_sums(cloudwatch, metrics, now)
    except _AWS_ERRORS as error:
        return {"sums": {}, "error": str(error)}
    return {"sums": dict(zip(APP_METRICS, sums, strict=True))}


def mail_snapshot(ses: Any) -> dict[str, Any]:
    """How many emails SES sent: the local outbox's size (real SES keeps no outbox)."""
    from ops import mail

    try:
        return {"sent": len(mail.fetch(ses.meta.endpoint_url))}
    except mail.NoOutboxError:
        return {"sent": None, "skipped": "real SES keeps no outbox"}
    except (OSError, ValueError, KeyError) as error:
        return {"sent": None, "error": f"outbox unavailable: {error}"}


# -- orders: analytics ------------------------------------------------------------


def analytics_snapshot(ddb: Any, stack: Stack, now: datetime | None = None) -> dict[str, Any]:
    """Today's (UTC) order counters and revenue: one GetItem, the same as the API's."""
    day = (now or datetime.now(UTC)).astimezone(UTC).date()
    try:
        return analytics.daily(ddb, stack.settings.analytics_table, day)
    except _AWS_ERRORS as error:
        return {"date": day.isoformat(), "error": str(error)}


def snapshot(
    clients: Any,
    stack: Stack,
    outputs: Outputs,
    *,
    jobs_limit: int = 5,
    exact: bool = False,
    stall_seconds: float = lag.DEFAULT_STALL_SECONDS,
) -> dict[str, Any]:
    """Everything the status view shows, as plain data (JSON-serialisable)."""
    return {
        "stage": stack.stage,
        "endpoint": clients("sqs").meta.endpoint_url,
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "queues": queues_snapshot(clients("sqs"), stack, outputs),
        "tables": tables_snapshot(clients("dynamodb"), stack, exact),
        "jobs": jobs_snapshot(clients("dynamodb"), stack, jobs_limit),
        "functions": functions_snapshot(clients("cloudwatch"), stack),
        "orders": orders_snapshot(clients("dynamodb"), stack, exact),
        "stock": stock_snapshot(clients("dynamodb"), stack, exact),
        "metrics": app_metrics_snapshot(clients("cloudwatch"), stack),
        "mail": mail_snapshot(clients("ses")),
        "analytics": analytics_snapshot(clients("dynamodb"), stack),
        "streams": lag.streams_snapshot(clients("cloudwatch"), stack, stall_seconds),
    }


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
    published = snap["metrics"].get("sums", {}).get("OrderEventsPublished")
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
