"""A declared alarm's state, evaluated here from its metric's datapoints.

moto stores alarms but never evaluates them, so the local cloud's alarms
would stay ``INSUFFICIENT_DATA`` forever. This does what CloudWatch does for
a simple alarm (no metric math, ``DatapointsToAlarm`` equal to
``EvaluationPeriods``): take the statistic over each of the last
``evaluation_periods`` periods, compare each with the threshold, and treat a
period without data as ``treat_missing_data`` says. Against AWS the same
reading gives the state CloudWatch itself would show, give or take where the
periods start.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.resources import Alarm

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


def metric_query(alarm: Alarm, query_id: str = "a") -> dict[str, Any]:
    """The alarm's metric, statistic and period as one GetMetricData query."""
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": alarm.namespace,
                "MetricName": alarm.metric_name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in alarm.dimensions],
            },
            "Period": alarm.period,
            "Stat": alarm.statistic,
        },
        "ReturnData": True,
    }


def state(alarm: Alarm, values: list[float]) -> str:
    """The state for the values of the last periods that have data (newest first)."""
    breaches = [COMPARISONS[alarm.comparison](v, alarm.threshold) for v in values]
    missing = alarm.evaluation_periods - len(breaches)
    if alarm.treat_missing_data == "breaching":
        breaches += [True] * missing
    elif alarm.treat_missing_data == "notBreaching":
        breaches += [False] * missing
    elif not breaches:  # "missing" and "ignore": nothing to judge by
        return INSUFFICIENT
    return ALARM if breaches and all(breaches) else OK


def evaluate(cloudwatch: Any, alarm: Alarm, now: datetime | None = None) -> dict[str, Any]:
    """The alarm's state now, with the values it was judged on (newest first)."""
    # GetMetricData leaves out its end time, cut to the second: a second ahead keeps
    # a datapoint published within the current second.
    end = (now or datetime.now(UTC)).replace(microsecond=0) + timedelta(seconds=1)
    start = end - timedelta(seconds=alarm.period * alarm.evaluation_periods)
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[metric_query(alarm)],
        StartTime=start,
        EndTime=end,
        ScanBy="TimestampDescending",
    )["MetricDataResults"][0]
    values = [float(v) for v in result.get("Values", [])][: alarm.evaluation_periods]
    return {"name": alarm.name, "state": state(alarm, values), "values": values}
