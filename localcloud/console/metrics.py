"""Metric series for the console's charts, and the declared alarms evaluated locally.

The series come from the local CloudWatch, where the runtime forwards what
Lambda and the app publish (``AWS/Lambda`` per function, and the app's EMF
metrics in :data:`chalicelib.observability.NAMESPACE`). moto stores alarms
but never evaluates them, so :func:`alarms` does what CloudWatch would: an
alarm is ALARM when each of its last ``evaluation_periods`` periods breaches
the threshold, with missing data treated as the declaration says.

SQS's own metrics are not published by moto. The DLQ alarms' metric
(``ApproximateNumberOfMessagesVisible``) is read from the queue's attributes
instead, which is the figure CloudWatch samples; the age of the oldest
message has no local source and is reported as not measured.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.observability import NAMESPACE
from chalicelib.orders.analytics import METRICS as ORDER_METRICS
from infra.declaration import Alarm, Stack
from infra.provision import Outputs

SERIES_MINUTES = 15
SERIES_PERIOD = 10
COMPARISONS = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
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
    names = ["RowsWritten", *ORDER_METRICS]
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
        "rows_per_second": points([by_name["RowsWritten"]], 1 / period),
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
    breaches = COMPARISONS[alarm.comparison]
    try:
        if alarm.namespace == "AWS/SQS":
            value = _queue_metric(alarm, sqs, queue_urls)
            if value is None:
                return {**row, "state": "INSUFFICIENT_DATA", "reason": "not measured locally"}
            state = "ALARM" if breaches(value, alarm.threshold) else "OK"
            return {**row, "state": state, "value": value}
        values = _periods(alarm, cloudwatch, now)
    except (*AWS_ERRORS, KeyError) as error:
        return {**row, "state": "INSUFFICIENT_DATA", "reason": str(error)}
    missing_breaches = alarm.treat_missing_data == "breaching"
    breached = [
        missing_breaches if value is None else breaches(value, alarm.threshold) for value in values
    ]
    latest = next((v for v in reversed(values) if v is not None), None)
    state = "ALARM" if all(breached) else "OK"
    return {**row, "state": state, "value": latest}


def _queue_metric(alarm: Alarm, sqs: Any, queue_urls: dict[str, str]) -> float | None:
    if alarm.metric_name != "ApproximateNumberOfMessagesVisible":
        return None
    name = dict(alarm.dimensions)["QueueName"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_urls[name], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return float(attributes["ApproximateNumberOfMessages"])


def _periods(alarm: Alarm, cloudwatch: Any, now: datetime | None) -> list[float | None]:
    """The alarm's statistic for each of its last ``evaluation_periods`` periods, oldest first."""
    # A minute ahead, so that a datapoint published just now is inside the last period.
    end = (now or datetime.now(UTC)).replace(microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(seconds=alarm.period * alarm.evaluation_periods)
    query = _query(
        0, alarm.namespace, alarm.metric_name, dict(alarm.dimensions), alarm.statistic, alarm.period
    )
    found = _fetch(cloudwatch, [query], start, end + timedelta(seconds=1))["q0"]
    values: list[float | None] = []
    for i in range(alarm.evaluation_periods):
        lower = start + timedelta(seconds=alarm.period * i)
        upper = lower + timedelta(seconds=alarm.period)
        inside = [v for stamp, v in found.items() if lower <= stamp.astimezone(UTC) < upper]
        values.append(max(inside) if inside else None)
    return values
