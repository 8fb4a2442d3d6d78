"""The declared iterator-age alarm, evaluated locally as CloudWatch would (moto never does)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from infra.alarms import ITERATOR_AGE_THRESHOLD_MS
from ops import alarmstate, lag

FUNCTION = "eventflow-local-publish_order_events"


def _alarm(target):
    (alarm,) = lag.iterator_age_alarms(target.stack)
    return alarm


def _publish(target, ages_ms: list[float], now: datetime) -> None:
    """One IteratorAge datapoint a minute, the newest last, ending just before ``now``."""
    data = [
        {
            "MetricName": "IteratorAge",
            "Dimensions": [{"Name": "FunctionName", "Value": FUNCTION}],
            "Timestamp": now - timedelta(minutes=len(ages_ms) - i, seconds=-30),
            "Value": age,
            "Unit": "Milliseconds",
        }
        for i, age in enumerate(ages_ms)
    ]
    target.clients("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=data)


def test_the_declared_alarm_watches_the_metric_the_runtime_publishes(target):
    alarm = _alarm(target)
    assert (alarm.namespace, alarm.metric_name, alarm.statistic) == (
        "AWS/Lambda",
        "IteratorAge",
        "Maximum",
    )
    assert dict(alarm.dimensions) == {"FunctionName": FUNCTION}
    assert alarm.threshold == ITERATOR_AGE_THRESHOLD_MS


@pytest.mark.parametrize(
    ("ages_s", "state"),
    [
        ([], "OK"),  # nothing published: missing data is not breaching
        ([61, 75, 90, 120, 150], "ALARM"),  # five minutes over a minute behind
        ([61, 75, 90, 120, 30], "OK"),  # caught up in the last minute
        ([90, 120, 150], "OK"),  # only three of the five periods breach
    ],
)
def test_the_iterator_age_alarm_fires_after_five_minutes_over_its_threshold(target, ages_s, state):
    now = datetime.now(UTC)
    _publish(target, [a * 1000 for a in ages_s], now)
    result = alarmstate.evaluate(target.clients("cloudwatch"), _alarm(target), now)
    assert result["state"] == state
    assert result["values"] == [a * 1000 for a in reversed(ages_s)]


@pytest.mark.parametrize(
    ("treat", "state"),
    [
        ("notBreaching", "OK"),
        ("breaching", "ALARM"),
        ("missing", "INSUFFICIENT_DATA"),
        ("ignore", "INSUFFICIENT_DATA"),
    ],
)
def test_periods_without_data_count_as_treat_missing_data_says(target, treat, state):
    alarm = dataclasses.replace(_alarm(target), treat_missing_data=treat)
    assert alarmstate.state(alarm, []) == state
