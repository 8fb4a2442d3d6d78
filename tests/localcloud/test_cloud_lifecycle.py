"""A whole local cloud in-process, on ephemeral ports: it serves, it runs the demo, it stops clean.

Each test starts its own cloud (about a second), after the suite's autouse
environment fixture, so the handlers' clients are built against this cloud's
endpoint and nothing leaks into the next test.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import socket
import threading
import time

import pytest
from rich.console import Console

from localcloud.cloud import LocalCloud, PortInUseError
from localcloud.demo import run_demo
from localcloud.demo_orders import run_orders_demo
from ops.snapshot import app_metrics_snapshot


def port_is_free(port: int) -> bool:
    """True when nothing listens on the port (TIME_WAIT leftovers do not count)."""
    probe = socket.socket()
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def get_json(connection: http.client.HTTPConnection, path: str) -> tuple[int, object]:
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")


@pytest.fixture
def cloud():
    with LocalCloud(aws_port=0, api_port=0) as running:
        yield running


def test_the_api_answers_and_stop_frees_ports_threads_and_environment():
    threads_before = set(threading.enumerate())
    endpoint_before = os.environ.get("AWS_ENDPOINT_URL")
    cloud = LocalCloud(aws_port=0, api_port=0).start()
    try:
        aws_port, api_port = cloud.aws_port, cloud.api_port
        assert os.environ["AWS_ENDPOINT_URL"] == cloud.aws_endpoint
        assert os.environ["EVENTFLOW_STAGE"] == "local"
        # A keep-alive connection left open must not keep the API's thread alive.
        connection = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
        status, body = get_json(connection, "/health")
        assert status == 200, body
        assert not port_is_free(aws_port) and not port_is_free(api_port)
    finally:
        cloud.stop()

    assert port_is_free(aws_port) and port_is_free(api_port)
    leftover = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert leftover == []
    assert os.environ.get("AWS_ENDPOINT_URL") == endpoint_before
    connection.close()


def test_a_busy_port_is_reported_before_anything_starts():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        endpoint_before = os.environ.get("AWS_ENDPOINT_URL")
        with pytest.raises(PortInUseError, match="EVENTFLOW_API_PORT"):
            LocalCloud(aws_port=0, api_port=port).start()
        assert os.environ.get("AWS_ENDPOINT_URL") == endpoint_before


def test_the_demo_file_flows_from_s3_through_sqs_into_the_api(cloud):
    out = io.StringIO()
    job = run_demo(cloud, Console(file=out, width=200), should_stop=lambda: False)

    assert job is not None, out.getvalue()
    assert job["state"] == "COMPLETED", job
    assert job["rows_written"] == job["rows_accepted"] > 0
    assert f"curl {cloud.api_endpoint}/readings/lab-01" in out.getvalue()
    connection = http.client.HTTPConnection("127.0.0.1", cloud.api_port, timeout=10)
    status, body = get_json(connection, "/readings/lab-01")
    connection.close()
    assert status == 200, body
    assert len(body["items"]) > 0


def test_the_orders_demo_confirms_rejects_and_cancels_through_the_pipeline():
    # Started here, not in a fixture: pytest puts its own sys.stdout back between
    # a fixture's setup and the test, which would undo the runtime's EMF capture.
    with LocalCloud(aws_port=0, api_port=0) as cloud:
        _orders_demo_checks(cloud)


def _orders_demo_checks(cloud):
    out = io.StringIO()
    final = run_orders_demo(cloud, Console(file=out, width=200), should_stop=lambda: False)

    assert final is not None, out.getvalue()
    statuses = {key: order["status"] for key, order in final.items()}
    assert statuses == {
        "make-run-confirmed": "CONFIRMED",
        "make-run-rejected": "REJECTED",
        "make-run-cancelled": "CANCELLED",
    }, out.getvalue()
    assert "demo-gadget (wanted 10, " in final["make-run-rejected"]["reason"]
    text = out.getvalue()
    assert "demo: demo-widget stock 18, reserved 2" in text, text
    assert "demo: demo-gadget stock 4, reserved 1" in text, text
    # One email per event: three received, two confirmed, one rejected, one cancelled.
    assert "demo: 7 emails in the outbox for demo-customer@example.com:" in text, text
    # The day's counters include the demo's three orders (other tests' too: moto is shared).
    assert re.search(r"demo: analytics \d{4}-\d\d-\d\d: [1-9]\d* created, [1-9]\d* confirmed", text)
    # The API's own metrics reach the local CloudWatch too, as Lambda's logs would carry them.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sums = app_metrics_snapshot(cloud.clients("cloudwatch"), cloud.stack)["sums"]
        if sums["OrdersPlaced"] == 3:
            break
        time.sleep(0.2)
    assert sums["OrdersPlaced"] == 3 and sums["OrderEventsPublished"] >= 3
