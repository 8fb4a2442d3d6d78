"""``make run`` smoke test: ``python -m localcloud up`` as a user runs it, stopped with Ctrl-C.

It starts the real entry point in a subprocess with both ports 0 and the demo
on, reads the ports it bound from what it prints (so no other test can take
them between a probe and the bind), waits (bounded) for ``/health`` and for
the demo's job to end, checks that job through the API, sends SIGINT, and
checks that the process exits 0 and releases both ports.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.localcloud.test_cloud_lifecycle import port_is_free

PROJECT_DIR = Path(__file__).resolve().parents[2]
STARTUP_LIMIT = 45.0
DEMO_LIMIT = 60.0
EXIT_LIMIT = 20.0
DEMO_FINISHED = re.compile(r"demo: ingest ([0-9a-f]+) ([A-Z_]+):")
API_LINE = re.compile(r"API \(Chalice local\): http://127\.0\.0\.1:(\d+)")
AWS_LINE = re.compile(r"AWS \(moto\): +http://127\.0\.0\.1:(\d+)")
CONSOLE_LINE = re.compile(r"Console \(browser\): +http://127\.0\.0\.1:(\d+)")


def bound_ports(text: str) -> tuple[int, int] | None:
    """The (AWS, API) ports ``up`` printed once it was ready, if it has."""
    aws, api = AWS_LINE.search(text), API_LINE.search(text)
    return (int(aws.group(1)), int(api.group(1))) if aws and api else None


def get(port: int, path: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def wait_for(condition, limit: float, what: str, process: subprocess.Popen):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, f"localcloud exited early while waiting for {what}"
        try:
            result = condition()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {limit:.0f} s")


def test_make_run_serves_runs_the_demo_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = {
        **os.environ,
        "EVENTFLOW_AWS_PORT": "0",
        "EVENTFLOW_API_PORT": "0",
        "EVENTFLOW_CONSOLE_PORT": "0",
        "EVENTFLOW_DEMO": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(name, None)
    log = tmp_path / "localcloud.out"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "localcloud", "up"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        aws_port, api_port = wait_for(
            lambda: bound_ports(log.read_text()), STARTUP_LIMIT, "the printed ports", process
        )
        assert 0 not in (aws_port, api_port)
        wait_for(lambda: get(api_port, "/health")[0] == 200, STARTUP_LIMIT, "/health", process)
        console_port = int(CONSOLE_LINE.search(log.read_text()).group(1))
        status, health = get(console_port, "/api/health")
        assert (
            status == 200 and health["ready"] and health["api_endpoint"].endswith(f":{api_port}")
        ), health

        # The demo prints the job's id and state once the job is over.
        finished = wait_for(
            lambda: DEMO_FINISHED.search(log.read_text()), DEMO_LIMIT, "the demo's end", process
        )
        assert finished.group(2) == "COMPLETED", log.read_text()
        status, job = get(api_port, f"/ingests/{finished.group(1)}")
        assert (status, job["state"]) == (200, "COMPLETED"), job
        assert job["rows_written"] == job["rows_accepted"] > 0

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=EXIT_LIMIT) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    text = log.read_text()
    assert f"http://127.0.0.1:{api_port}" in text
    assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{aws_port}" in text
    assert f"curl http://127.0.0.1:{api_port}/readings/lab-01" in text
    assert "stopped" in text
    assert port_is_free(aws_port) and port_is_free(api_port) and port_is_free(console_port)
