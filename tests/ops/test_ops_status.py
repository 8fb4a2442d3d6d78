"""``ops status``: the snapshot reports what the endpoint holds, section by section."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from rich.console import Console

from ops.__main__ import main
from ops.snapshot import analytics_snapshot, function_names, lambda_name, snapshot
from ops.status import plain_line, render


def _queue(snap, key):
    return next(q for q in snap["queues"] if q["key"] == key)


def test_queue_depths_count_visible_in_flight_and_dlq_messages(target):
    sqs = target.clients.sqs
    source = target.outputs.queues["ingest"]["url"]
    dlq = target.outputs.queues["ingest-dlq"]["url"]
    for i in range(3):
        sqs.send_message(QueueUrl=source, MessageBody=f"m{i}")
    # Receiving one message hides it for the visibility timeout: it is in flight.
    assert len(sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=1)["Messages"]) == 1
    for i in range(2):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"dead{i}")

    snap = snapshot(target.clients, target.stack, target.outputs)

    ingest = _queue(snap, "ingest")
    assert (ingest["visible"], ingest["in_flight"]) == (2, 1)
    assert (ingest["dlq_visible"], ingest["dlq_in_flight"]) == (2, 0)
    assert ingest["dlq_name"] == "eventflow-local-ingest-dlq"
    assert [q["key"] for q in snap["queues"]] == [
        q.key for q in (*target.stack.queues, *target.stack.failure_queues)
    ]


def test_table_counts_are_exact_locally_with_or_without_a_scan(target):
    ddb = target.clients.dynamodb
    table = target.stack.table("readings")
    for i in range(4):
        ddb.put_item(
            TableName=table.name,
            Item={table.partition_key.name: {"S": "lab-01"}, table.sort_key.name: {"S": f"r{i}"}},
        )

    for exact in (False, True):
        snap = snapshot(target.clients, target.stack, target.outputs, exact=exact)
        counts = {t["key"]: t["items"] for t in snap["tables"]}
        assert counts == {t.key: 0 for t in target.stack.tables} | {"readings": 4}
        # moto computes ItemCount exactly, so nothing is flagged approximate locally.
        assert not any(t["approximate"] for t in snap["tables"])


def test_handler_metrics_sum_the_last_hour_of_aws_lambda_datapoints(target):
    stack = target.stack
    name = lambda_name(stack, "write_readings")
    assert name == "eventflow-local-write_readings"
    target.clients("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "FunctionName", "Value": name}],
                "Timestamp": datetime.now(UTC),
                "Value": value,
                "Unit": "Count",
            }
            for metric, value in (("Invocations", 3), ("Invocations", 4), ("Errors", 1))
        ],
    )

    functions = snapshot(target.clients, stack, target.outputs)["functions"]

    assert "error" not in functions
    by_name = {f["function"]: f for f in functions["items"]}
    assert set(by_name) == set(function_names(stack)) == {s.function for s in stack.event_sources}
    assert {"write_readings", "ingest_from_queue", "publish_order_events"} <= set(by_name)
    assert (by_name["write_readings"]["invocations"], by_name["write_readings"]["errors"]) == (7, 1)
    assert by_name["ingest_from_queue"]["invocations"] == 0


def test_the_snapshot_renders_as_tables_and_as_one_plain_line(target):
    snap = snapshot(target.clients, target.stack, target.outputs)
    out = io.StringIO()
    Console(file=out, width=120).print(render(snap, runtime_stats={"write_readings": {}}))
    text = out.getvalue()
    assert "eventflow-local-ingest" in text
    assert "no ingest jobs yet" in text
    line = plain_line(snap)
    assert line.startswith("status: ingest 0+0 dlq 0")
    assert "readings 0" in line


def test_status_command_prints_json_for_scripts(target):
    out = io.StringIO()
    assert main(["status", "--json"], console=Console(file=out, width=200)) == 0
    data = json.loads(out.getvalue())
    assert data["stage"] == "local"
    declared = (*target.stack.queues, *target.stack.failure_queues)
    assert {q["key"] for q in data["queues"]} == {q.key for q in declared}
    assert data["orders"]["by_status"]["PENDING"] == 0


def test_orders_are_counted_by_status_and_their_events_by_metric(target):
    from chalicelib.orders import service
    from chalicelib.orders.model import OrderRequest
    from chalicelib.orders.states import Actor, Status
    from chalicelib.services import Services
    from tests.orders.helpers import order_body, seed_products

    services = Services(target.stage_config.settings(), clients=target.clients)
    seed_products(services)
    placed = [
        service.place_order(OrderRequest.model_validate(order_body(widget=n)), None, services)[0]
        for n in (1, 2, 3)
    ]
    service.change_status(placed[0]["order_id"], Status.CANCELLED, Actor.CLIENT, services)
    target.clients("cloudwatch").put_metric_data(
        Namespace="eventflow",
        MetricData=[
            {
                "MetricName": "OrderEventsPublished",
                "Dimensions": [{"Name": "stage", "Value": "local"}],
                "Value": 4,
                "Unit": "Count",
            }
        ],
    )
    snap = snapshot(target.clients, target.stack, target.outputs)
    assert snap["orders"]["by_status"] == {
        "PENDING": 2,
        "CONFIRMED": 0,
        "REJECTED": 0,
        "CANCELLED": 1,
        "SHIPPED": 0,
        "DELIVERED": 0,
    }
    assert snap["metrics"]["sums"]["OrderEventsPublished"] == 4
    assert snap["stock"]["items"] == [
        {"product_id": "gadget", "stock": 10, "reserved": 0},
        {"product_id": "widget", "stock": 100, "reserved": 0},
    ]
    out = io.StringIO()
    Console(file=out, width=200).print(render(snap))
    assert "Stock" in out.getvalue() and "widget" in out.getvalue()
    line = plain_line(snap)
    assert "orders PENDING 2 CANCELLED 1" in line and "events published 4" in line


def test_todays_analytics_are_shown_from_the_days_counters(target):
    from chalicelib.orders import analytics
    from chalicelib.services import Services
    from tests.orders.test_analytics import order_event

    services = Services(target.stage_config.settings(), clients=target.clients)
    now = datetime.now(UTC)
    today = now.date().isoformat()
    for event in (
        order_event(None, "PENDING", day=today),
        order_event("PENDING", "CONFIRMED", "25.00", day=today),
    ):
        assert analytics.apply(event, services) == "counted"

    section = analytics_snapshot(target.clients.dynamodb, target.stack, now)
    assert section == {
        "date": today,
        "orders_created": 1,
        "orders_confirmed": 1,
        "orders_rejected": 0,
        "orders_cancelled": 0,
        "revenue": "25.00",
    }
    snap = {**snapshot(target.clients, target.stack, target.outputs), "analytics": section}
    out = io.StringIO()
    Console(file=out, width=200).print(render(snap))
    assert "Analytics today" in out.getvalue() and "day (UTC)" in out.getvalue()
    assert "today 1 created 1 confirmed revenue 25.00" in plain_line(snap)
