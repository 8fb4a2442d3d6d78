"""The console's parts without a browser: the map derived from the declaration, the
alarms evaluated as CloudWatch would, and the refusals that keep it local."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from infra.functions import EventSourceSettings, Function
from infra.resources import Queue, Subscription
from infra.stack import declare
from localcloud.console import metrics, pipeline
from localcloud.console.server import ConsoleServer, NotLocalError
from ops.target import Target


def _edges(graph: dict) -> set[tuple[str, str]]:
    return {(e["from"], e["to"]) for e in graph["edges"]}


def test_the_map_draws_both_flows_from_the_declaration(stage_config):
    graph = pipeline.build(declare(stage_config))
    edges = _edges(graph)
    readings = [
        "bucket:uploads",
        "queue:s3-events",
        "function:ingest_from_queue",
        "queue:ingest",
        "function:write_readings",
        "table:readings",
    ]
    orders = [
        "function:api_handler",
        "table:orders",
        "stream:orders",
        "function:publish_order_events",
        "topic:order-events",
    ]
    for flow in (readings, orders):
        assert set(itertools.pairwise(flow)) <= edges
    for consumer, queue in (
        ("update_inventory", "inventory"),
        ("send_notifications", "notifications"),
        ("update_analytics", "analytics"),
    ):
        assert ("topic:order-events", f"queue:{queue}") in edges
        assert (f"queue:{queue}", f"function:{consumer}") in edges
    assert ("function:send_notifications", "ses") in edges
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["queue:inventory"]["dlq"] == "inventory-dlq"
    # Every edge runs left to right, except where a function writes back upstream.
    assert all(nodes[a]["column"] < nodes[b]["column"] for a, b in itertools.pairwise(readings))


def test_a_consumer_added_to_the_declaration_appears_on_the_map(stage_config):
    stack = declare(stage_config)
    queue = Queue(key="audit", name="eventflow-local-audit", visibility_timeout=30)
    stack = dataclasses.replace(
        stack,
        queues=(*stack.queues, queue),
        subscriptions=(
            *stack.subscriptions,
            Subscription(key="audit", topic_key="order-events", queue_key="audit"),
        ),
        event_sources=(*stack.event_sources, EventSourceSettings("audit_orders", "audit")),
        functions=(
            *stack.functions,
            Function("audit_orders", "eventflow-local-audit_orders", timeout=30, memory_size=256),
        ),
    )
    edges = _edges(pipeline.build(stack))
    assert ("topic:order-events", "queue:audit") in edges
    assert ("queue:audit", "function:audit_orders") in edges


def test_alarms_are_evaluated_as_cloudwatch_would(clients, outputs, stage_config):
    stack = declare(stage_config)
    dlq = outputs.queues["analytics-dlq"]["url"]
    clients.sqs.send_message(QueueUrl=dlq, MessageBody="dead")
    failing = stack.function("update_inventory").physical_name
    clients("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": failing}],
                "Value": 2,
                "Timestamp": datetime.now(UTC),
            }
        ],
    )
    states = {
        a["key"]: a for a in metrics.alarms(clients("cloudwatch"), clients.sqs, stack, outputs)
    }
    assert len(states) == len(stack.alarms)
    assert states["analytics-dlq-not-empty"]["state"] == "ALARM"
    assert states["analytics-dlq-not-empty"]["value"] == 1
    assert states["inventory-dlq-not-empty"]["state"] == "OK"
    assert states["update-inventory-errors"]["state"] == "ALARM"
    assert states["update-analytics-errors"]["state"] == "OK"  # no data, not breaching
    assert states["analytics-oldest-message-age"]["state"] == "INSUFFICIENT_DATA"


def test_the_console_refuses_an_endpoint_that_is_not_this_machine(monkeypatch, moto):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://sqs.us-east-1.amazonaws.com")
    with pytest.raises(NotLocalError, match="only against the local cloud"):
        ConsoleServer(Target(stage="local"), None, 0)


def test_python_m_localcloud_console_says_no_to_a_deployed_stage(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ENDPOINT_URL": "https://sqs.us-east-1.amazonaws.com",
        "EVENTFLOW_CONSOLE_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "localcloud", "console"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refused" in done.stdout and "not this machine" in done.stdout


def test_it_listens_on_loopback_only_and_serves_no_file_outside_its_folder(moto, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    server = ConsoleServer(Target(stage="local"), None, 0).start()
    try:
        assert server._server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(server.url + "/") as index:
            assert b"eventflow" in index.read()
        for path in ("/../app.py", "/%2e%2e/app.py", "/js/../../server.py"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(server.url + path)
            assert refused.value.code == 404
    finally:
        server.stop()
