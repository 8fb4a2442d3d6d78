"""Metric series for the console's charts, and the declared alarms evaluated locally.

The series come from the local CloudWatch, where the runtime forwards what
Lambda and the app publish (``AWS/Lambda`` per function, and the app's EMF
metrics in :data:`chalicelib.observability.NAMESPACE`). moto stores alarms
but never evaluates them, so :func:`alarms` does what CloudWatch would,
through :mod:`ops.alarmstate` (the evaluation ``ops status`` uses): an alarm
is ALARM when each of its last ``evaluation_periods`` periods breaches the
threshold, with missing data treated as the declaration says.

SQS's own metrics are not published by moto. The DLQ alarms' metric
(``ApproximateNumberOfMessagesVisible``) is read from the queue's attributes
instead, which is the figure CloudWatch samples; the age of the oldest
message has no local source and is reported as not measured.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import metric_names
from chalicelib.metric_names import NAMESPACE
from chalicelib.orders.analytics import METRICS as ORDER_METRICS
from infra.outputs import Outputs
from infra.resources import Alarm, Stack
from ops import alarmstate

SERIES_MINUTES = 15
SERIES_PERIOD = 10
AWS_ERRORS = (ClientError, BotoCoreError)


def _query(index: int, namespace: str, name: str, dims: dict[str, str], stat: str, period: int):
    return {
        "Id": f"q{index}",
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def _fetch(cloudwatch: Any, queries: list[dict[str, Any]], start: datetime, end: datetime):
    """{query id: {timestamp: value}} over the window, every page read."""
    found: dict[str, dict[datetime, float]] = {q["Id"]: {} for q in queries}
    for page in cloudwatch.get_paginator("get_metric_data").paginate(
        MetricDataQueries=queries, StartTime=start, EndTime=end
    ):
        for result in page["MetricDataResults"]:
            points = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
            for stamp, value in points:
                found[result["Id"]][stamp] = found[result["Id"]].get(stamp, 0.0) + value
    return found


def series(cloudwatch: Any, stack: Stack, now: datetime | None = None) -> dict[str, Any]:
    """Per-period points for the charts: rows/s, order counters, revenue, function errors."""
    period = SERIES_PERIOD
    end = (now or datetime.now(UTC)).replace(microsecond=0) + timedelta(seconds=period)
    end -= timedelta(seconds=end.second % period)
    start = end - timedelta(minutes=SERIES_MINUTES)
    app = {"stage": stack.stage}
    names = [metric_names.ROWS_WRITTEN, *ORDER_METRICS]
    queries = [_query(i, NAMESPACE, n, app, "Sum", period) for i, n in enumerate(names)]
    functions = [f.physical_name for f in stack.functions]
    queries += [
        _query(len(names) + i, "AWS/Lambda", "Errors", {"FunctionName": f}, "Sum", period)
        for i, f in enumerate(functions)
    ]
    found = _fetch(cloudwatch, queries, start, end)
    stamps = [start + timedelta(seconds=period * i) for i in range(SERIES_MINUTES * 60 // period)]

    def points(query_ids: list[str], scale: float = 1.0) -> list[float]:
        return [
            round(sum(found[q].get(stamp, 0.0) for q in query_ids) * scale, 2) for stamp in stamps
        ]

    by_name = {name: f"q{i}" for i, name in enumerate(names)}
    error_ids = [f"q{len(names) + i}" for i in range(len(functions))]
    return {
        "period": period,
        "times": [s.isoformat() for s in stamps],
        "rows_per_second": points([by_name[metric_names.ROWS_WRITTEN]], 1 / period),
        "orders": {n: points([by_name[n]]) for n in ORDER_METRICS if n != "Revenue"},
        "revenue": points([by_name["Revenue"]]),
        "function_errors": points(error_ids),
    }


def last_durations(cloudwatch: Any, stack: Stack, now: datetime | None = None) -> dict[str, float]:
    """Each function's most recent Duration datapoint (ms), over the last hour."""
    end = (now or datetime.now(UTC)) + timedelta(minutes=1)
    start = end - timedelta(hours=1)
    functions = [f.physical_name for f in stack.functions]
    queries = [
        _query(i, "AWS/Lambda", "Duration", {"FunctionName": f}, "Maximum", 60)
        for i, f in enumerate(functions)
    ]
    found = _fetch(cloudwatch, queries, start, end)
    durations = {}
    for i, function in enumerate(stack.functions):
        points = found[f"q{i}"]
        if points:
            durations[function.name] = round(points[max(points)], 1)
    return durations


def alarms(
    cloudwatch: Any, sqs: Any, stack: Stack, outputs: Outputs, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Every declared alarm with the state CloudWatch would give it now."""
    queue_urls = {
        entry["name"]: entry["url"] for entry in outputs.queues.values() if "name" in entry
    }
    return [_evaluate(alarm, cloudwatch, sqs, queue_urls, now) for alarm in stack.alarms]


def _evaluate(
    alarm: Alarm, cloudwatch: Any, sqs: Any, queue_urls: dict[str, str], now: datetime | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": alarm.name,
        "key": alarm.key,
        "description": alarm.description,
        "metric": f"{alarm.namespace} {alarm.metric_name}",
        "threshold": alarm.threshold,
        "comparison": alarm.comparison,
    }
    try:
        if alarm.namespace != "AWS/SQS":
            # The same evaluation as ``ops status`` gives the iterator-age alarm.
            judged = alarmstate.evaluate(cloudwatch, alarm, now)
            latest = judged["values"][0] if judged["values"] else None
            return {**row, "state": judged["state"], "value": latest}
        value = _queue_metric(alarm, sqs, queue_urls)
    except (*AWS_ERRORS, KeyError) as error:
        return {**row, "state": alarmstate.INSUFFICIENT, "reason": str(error)}
    if value is None:
        return {**row, "state": alarmstate.INSUFFICIENT, "reason": "not measured locally"}
    breaches = alarmstate.COMPARISONS[alarm.comparison](value, alarm.threshold)
    return {**row, "state": alarmstate.ALARM if breaches else alarmstate.OK, "value": value}


def _queue_metric(alarm: Alarm, sqs: Any, queue_urls: dict[str, str]) -> float | None:
    """What CloudWatch samples for an SQS depth metric, read from the queue itself."""
    if alarm.metric_name != "ApproximateNumberOfMessagesVisible":
        return None
    name = dict(alarm.dimensions)["QueueName"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_urls[name], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return float(attributes["ApproximateNumberOfMessages"])
