"""Stream mappings for ``ops status``: how far behind each is, and which are stalled.

The figure is Lambda's ``IteratorAge`` for the mapping's function, read from
CloudWatch exactly as the declaration's iterator-age alarm reads it (the
alarm's namespace, metric and dimensions, ``infra.alarms``). Lambda publishes
it in AWS; the local runtime publishes it to the local cloud
(``localcloud.runtime.streamlag``), as the age of the oldest record the
mapping has not processed. So the one reading works against both.

* ``iterator_age_ms``: the newest datapoint within :func:`lookback` (1-second
  periods locally, where the runtime publishes every second while behind and
  0 once caught up; 1-minute periods in AWS, where Lambda publishes with each
  batch). ``None``: nothing published lately, i.e. nothing waiting.
* ``stalled``: that age is above the stall threshold (``--stall-seconds``,
  by default the alarm's own threshold).
* ``alarm``: the iterator-age alarm's state, evaluated here
  (:mod:`ops.alarmstate`), since moto never evaluates alarms.

DynamoDB Streams has no record-count lag metric in AWS (Kinesis and Kafka
have theirs); the local cloud's live view adds the runtime's own count of
records not yet processed (``runtime_stats[function]["lag"]``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table
from rich.text import Text

from infra.alarms import ITERATOR_AGE_THRESHOLD_MS
from infra.resources import Alarm, Stack
from ops import alarmstate
from ops.target import is_local_url

DEFAULT_STALL_SECONDS = ITERATOR_AGE_THRESHOLD_MS / 1000
ITERATOR_AGE = ("AWS/Lambda", "IteratorAge")


def iterator_age_alarms(stack: Stack) -> list[Alarm]:
    """The declaration's iterator-age alarms: one per stream mapping."""
    return [a for a in stack.alarms if (a.namespace, a.metric_name) == ITERATOR_AGE]


def lookback(local: bool) -> tuple[int, int]:
    """(period, window) in seconds for reading the newest IteratorAge."""
    return (1, 30) if local else (60, 180)


def _function(alarm: Alarm) -> str:
    return dict(alarm.dimensions)["FunctionName"]


def _newest_ages(
    cloudwatch: Any, alarms: list[Alarm], local: bool, now: datetime
) -> list[float | None]:
    period, window = lookback(local)
    queries = []
    for i, alarm in enumerate(alarms):
        query = alarmstate.metric_query(alarm, f"m{i}")
        query["MetricStat"].update(Period=period, Stat="Maximum")
        queries.append(query)
    results = cloudwatch.get_metric_data(
        MetricDataQueries=queries,
        StartTime=now - timedelta(seconds=window),
        EndTime=now + timedelta(seconds=1),
        ScanBy="TimestampDescending",
    )["MetricDataResults"]
    newest: list[float | None] = [None] * len(alarms)
    for result in results:
        values = result.get("Values", [])
        newest[int(result["Id"][1:])] = float(values[0]) if values else None
    return newest


def streams_snapshot(
    cloudwatch: Any,
    stack: Stack,
    stall_seconds: float = DEFAULT_STALL_SECONDS,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Each stream mapping's newest IteratorAge, stall flag and alarm state."""
    now = now or datetime.now(UTC)
    alarms = iterator_age_alarms(stack)
    section: dict[str, Any] = {"stall_seconds": stall_seconds, "items": []}
    if not alarms:
        return section
    try:
        ages = _newest_ages(cloudwatch, alarms, is_local_url(cloudwatch.meta.endpoint_url), now)
        states = [alarmstate.evaluate(cloudwatch, alarm, now) for alarm in alarms]
    except (ClientError, BotoCoreError) as error:
        section["error"] = str(error)
        return section
    chalice_names = {f.physical_name: f.name for f in stack.functions}
    for alarm, age, alarm_state in zip(alarms, ages, states, strict=True):
        section["items"].append(
            {
                "function": chalice_names.get(_function(alarm), _function(alarm)),
                "name": _function(alarm),
                "iterator_age_ms": age,
                "stalled": age is not None and age > stall_seconds * 1000,
                "alarm": alarm_state,
            }
        )
    return section


def problems(section: dict[str, Any]) -> list[str]:
    """What ``ops status --check`` fails on, for the stream mappings."""
    found = []
    for item in section["items"]:
        if item["stalled"]:
            age, limit = item["iterator_age_ms"] / 1000, section["stall_seconds"]
            found.append(
                f"{item['function']} is STALLED: its oldest unprocessed record is "
                f"{age:.0f} s old (threshold {limit:g} s)"
            )
        if item["alarm"]["state"] == alarmstate.ALARM:
            found.append(f"alarm {item['alarm']['name']} is in ALARM")
    if section.get("error"):
        found.append(f"stream lag unavailable: {section['error']}")
    return found


def _age(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f} s"


def streams_table(
    section: dict[str, Any], runtime_stats: dict[str, Any] | None, style: dict[str, Any]
) -> Table:
    table = Table(title="Stream mappings", **style)
    table.add_column("function")
    table.add_column("iterator age", justify="right")
    if runtime_stats is not None:
        table.add_column("not processed", justify="right")
    table.add_column("alarm")
    table.add_column("state")
    for item in section["items"]:
        state = Text("STALLED", style="bold red") if item["stalled"] else Text("ok", style="green")
        alarm = item["alarm"]["state"]
        cells: list[Any] = [item["function"], _age(item["iterator_age_ms"])]
        if runtime_stats is not None:
            lag = (runtime_stats.get(item["function"]) or {}).get("lag")
            cells.append(_records(lag))
            if lag and lag.get("read_error"):
                state.append(f" cannot read: {lag['read_error']}", style="red")
        cells += [Text(alarm, style="bold red" if alarm == alarmstate.ALARM else ""), state]
        table.add_row(*cells)
    if section.get("error"):
        table.caption = f"stream lag unavailable: {section['error']}"
    elif not section["items"]:
        table.caption = "no stream mappings"
    else:
        table.caption = (
            f"stalled: oldest unprocessed record older than {section['stall_seconds']:g} s"
        )
    return table


def _records(lag: dict[str, Any] | None) -> str:
    if not lag or lag.get("records") is None:
        return "?"
    return f"{lag['records']}{'' if lag.get('complete') else '+'}"


def plain_parts(section: dict[str, Any]) -> list[str]:
    parts = []
    for item in section["items"]:
        if item["stalled"]:
            parts.append(f"{item['function']} STALLED age {_age(item['iterator_age_ms'])}")
        if item["alarm"]["state"] == alarmstate.ALARM:
            parts.append(f"alarm {item['alarm']['name']} ALARM")
    return parts
