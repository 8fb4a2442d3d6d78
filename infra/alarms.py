"""Alarms and the dashboard, derived from the declared queues, tables and functions.

Nothing here is listed by hand: every DLQ gets a not-empty alarm, every source
queue an oldest-message-age alarm, every function error and throttle alarms,
and every stream mapping an iterator-age alarm. A resource added to the
declaration is therefore watched from the next deploy on. The app's own
metrics that mean a loss no queue shows (:data:`APP_METRIC_ALARMS`) get one
alarm each.

Dimensions use physical names, not references: names are deterministic
(``eventflow-{stage}-...``), and CloudWatch accepts an alarm on a metric that
does not exist yet, so no renderer needs to order alarms after resources.
"""

from __future__ import annotations

from chalicelib import metric_names
from chalicelib.metric_names import NAMESPACE
from infra.resources import ALERTS_TOPIC_KEY, Alarm, Dashboard, Queue, Stack

# One message in a DLQ is a message eventflow gave up on: page at once.
DLQ_PERIOD_SECONDS = 60
# A source queue's oldest message may legitimately wait one visibility timeout
# (a failed attempt hides it that long); beyond that, or beyond this floor, work
# is piling up faster than it drains.
QUEUE_AGE_FLOOR_SECONDS = 600
QUEUE_AGE_EVALUATION_PERIODS = 3
FUNCTION_PERIOD_SECONDS = 300
# Stream records older than this (milliseconds) mean the consumer is behind.
ITERATOR_AGE_THRESHOLD_MS = 60_000

# The counters that chalicelib.observability publishes as EMF.
ROW_METRICS = (
    metric_names.ROWS_ACCEPTED,
    metric_names.ROWS_REJECTED,
    metric_names.ROWS_WRITTEN,
    metric_names.CHUNK_FAILURES,
)
ORDER_METRICS = (
    metric_names.ORDERS_PLACED,
    metric_names.ORDER_EVENTS_PUBLISHED,
    metric_names.ORDER_EVENT_RECORDS_FAILED,
    metric_names.INTAKE_REJECTED,
    metric_names.INTAKE_FAILURES,
)

# App metrics that mean a customer-visible loss no queue shows: an email that SES
# refused for its recipient is done (retrying cannot help), so it never reaches a DLQ.
APP_METRIC_ALARMS = ((metric_names.NOTIFICATIONS_REJECTED, "notifications-rejected"),)


def queue_age_threshold(queue: Queue) -> int:
    return max(QUEUE_AGE_FLOOR_SECONDS, queue.visibility_timeout)


def derive(stack: Stack) -> tuple[Alarm, ...]:
    """Every alarm the stack needs."""
    settings = stack.settings
    alarms: list[Alarm] = []

    def add(key: str, **fields) -> None:
        fields.setdefault("topic_key", ALERTS_TOPIC_KEY)
        alarms.append(Alarm(key=key, name=settings.name(key), **fields))

    def not_empty(key: str, queue_name: str, anchor: str) -> None:
        add(
            key,
            description=f"Messages in {queue_name}: see docs/runbook.md#{anchor}",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions=(("QueueName", queue_name),),
            statistic="Maximum",
            period=DLQ_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=0,
            comparison="GreaterThanThreshold",
        )

    for queue in stack.queues:
        not_empty(f"{queue.dlq_key}-not-empty", queue.dlq_name, "dlq-not-empty")
        add(
            f"{queue.key}-oldest-message-age",
            description=(
                f"Oldest message in {queue.name} older than {queue_age_threshold(queue)} s: "
                "see docs/runbook.md#queue-age"
            ),
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            dimensions=(("QueueName", queue.name),),
            statistic="Maximum",
            period=60,
            evaluation_periods=QUEUE_AGE_EVALUATION_PERIODS,
            threshold=queue_age_threshold(queue),
            comparison="GreaterThanThreshold",
        )
    for failures in stack.failure_queues:
        # Nothing consumes it: one message is something Lambda gave up on.
        not_empty(f"{failures.key}-not-empty", failures.name, f"{failures.key}-not-empty")

    def any_in_five_minutes(key: str, description: str, **metric) -> None:
        add(
            key,
            description=description,
            statistic="Sum",
            period=FUNCTION_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=0,
            comparison="GreaterThanThreshold",
            **metric,
        )

    for function in stack.functions:
        for metric in ("Errors", "Throttles"):
            any_in_five_minutes(
                f"{function.name.replace('_', '-')}-{metric.lower()}",
                f"{metric} in {function.physical_name}: "
                f"see docs/runbook.md#function-{metric.lower()}",
                namespace="AWS/Lambda",
                metric_name=metric,
                dimensions=(("FunctionName", function.physical_name),),
            )
    table_keys = {table.key for table in stack.tables}
    for source in stack.event_sources:
        if source.source_key not in table_keys:
            continue
        function = stack.function(source.function)
        add(
            f"{function.name.replace('_', '-')}-iterator-age",
            description=(
                f"{function.physical_name} is behind its stream: see docs/runbook.md#iterator-age"
            ),
            namespace="AWS/Lambda",
            metric_name="IteratorAge",
            dimensions=(("FunctionName", function.physical_name),),
            statistic="Maximum",
            period=60,
            evaluation_periods=5,
            threshold=ITERATOR_AGE_THRESHOLD_MS,
            comparison="GreaterThanThreshold",
        )
    for metric, anchor in APP_METRIC_ALARMS:
        any_in_five_minutes(
            anchor,
            f"{metric} above 0 in stage {stack.stage}: see docs/runbook.md#{anchor}",
            namespace=NAMESPACE,
            metric_name=metric,
            # The dimension set chalicelib.observability gives every EMF metric.
            dimensions=(("stage", stack.stage),),
        )
    return tuple(alarms)


def dashboard(stack: Stack) -> Dashboard:
    """Queue depths, DLQs, function errors and durations, and the row counters."""
    region = Dashboard.REGION_PLACEHOLDER

    def widget(title: str, metrics: list[list], stat: str, row: int, col: int) -> dict:
        return {
            "type": "metric",
            "x": col * 12,
            "y": row * 6,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "stat": stat,
                "period": 60,
                "metrics": metrics,
            },
        }

    def per_function(metric: str) -> list[list]:
        return [["AWS/Lambda", metric, "FunctionName", f.physical_name] for f in stack.functions]

    # The dimension set chalicelib.observability gives every EMF metric.
    emf_dimensions = ["stage", stack.stage]
    widgets = (
        widget(
            "Queue depth (visible messages)",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q.name]
                for q in stack.queues
            ],
            "Maximum",
            0,
            0,
        ),
        widget(
            "DLQ depth",
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name]
                for name in [q.dlq_name for q in stack.queues]
                + [q.name for q in stack.failure_queues]
            ],
            "Maximum",
            0,
            1,
        ),
        widget("Function errors", per_function("Errors"), "Sum", 1, 0),
        widget("Function duration (p99)", per_function("Duration"), "p99", 1, 1),
        widget(
            "Rows accepted, rejected and written",
            [[NAMESPACE, metric, *emf_dimensions] for metric in ROW_METRICS],
            "Sum",
            2,
            0,
        ),
        widget(
            "Oldest message age (s)",
            [
                ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", q.name]
                for q in stack.queues
            ],
            "Maximum",
            2,
            1,
        ),
        widget(
            "Orders placed and their events",
            [[NAMESPACE, metric, *emf_dimensions] for metric in ORDER_METRICS],
            "Sum",
            3,
            0,
        ),
    )
    # -- orders: analytics consumer (published once per counted event) --------------
    widgets += (
        widget(
            "Orders counted by analytics",
            [[NAMESPACE, metric, *emf_dimensions] for metric in metric_names.ANALYTICS_COUNTS],
            "Sum",
            3,
            1,
        ),
        widget(
            "Revenue (confirmed less cancelled after confirmation)",
            [[NAMESPACE, metric_names.REVENUE, *emf_dimensions]],
            "Sum",
            4,
            0,
        ),
    )
    return Dashboard(key="main", name=stack.settings.name("main"), widgets=widgets)
