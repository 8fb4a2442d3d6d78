"""Gathering the status: queue depths, DLQs, table counts, recent ingest jobs, handler metrics.

:func:`snapshot` gathers everything as plain data, with the same API calls
against the local cloud and a real account, so the one-shot command
(:mod:`ops.status`), the local cloud's live view (``localcloud.live``) and its
console show the same numbers. Each section fails on its own: a missing
permission or resource shows up as an ``error`` entry instead of hiding the
rest.

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
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import metric_names
from chalicelib.clock import Clock
from chalicelib.metric_names import NAMESPACE
from chalicelib.orders import analytics
from chalicelib.orders.states import Status
from chalicelib.readings.jobs import IngestJobs
from infra.outputs import Outputs
from infra.resources import Stack
from ops import lag
from ops.target import is_local_url

METRICS_WINDOW = timedelta(hours=1)
LAMBDA_METRICS = ("Invocations", "Errors")
# Counters the handlers publish through EMF (chalicelib.observability).
APP_METRICS = (
    metric_names.ORDERS_PLACED,
    metric_names.ORDER_EVENTS_PUBLISHED,
    metric_names.INTAKE_REJECTED,
)
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
