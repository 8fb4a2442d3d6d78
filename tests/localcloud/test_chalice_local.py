"""``chalice local --stage local`` against a local cloud started with ``--no-api``.

The cloud runs in-process without its API. The API is Chalice's own local
server in a subprocess, started by the function ``chalice local`` runs
(``chalice.cli.create_local_server``: the same config loading and stage
environment), on port 0: the CLI would print the requested port, not the one
bound, so the script prints the bound port instead and nothing races for it.
The subprocess gets no AWS settings at all: the local stage finds the local
cloud by itself (``chalicelib.aws.local_defaults``), told only its port.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud

PROJECT_DIR = Path(__file__).resolve().parents[2]
STARTUP_LIMIT = 60.0
# environ=os.environ, as the CLI builds its factory: the stage's variables
# (EVENTFLOW_STAGE among them) must reach the process before app.py is imported.
SERVE_ON_PORT_0 = """
import os, sys
from chalice.cli import create_local_server
from chalice.cli.factory import CLIFactory

factory = CLIFactory(sys.argv[1], environ=os.environ)
server = create_local_server(factory, "127.0.0.1", 0, "local")
print("port", server.server.server_address[1], flush=True)
server.serve_forever()
"""
READING = {
    "timestamp": "2030-06-01T10:00:00Z",
    # moto's state is process-wide: a location no other test writes.
    "location": "chalice-local-lab",
    "source": "wired",
    "local_dest": "gw",
    "local_avg": 1.5,
    "remote_dest": "probe",
    "remote_avg": 20,
}


def request(port: int, method: str, path: str, body: dict | None = None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


@pytest.fixture
def cloud_without_api() -> Iterator[LocalCloud]:
    with LocalCloud(aws_port=0, serve_api=False) as cloud:
        assert cloud.api_endpoint is None
        yield cloud


@pytest.fixture
def chalice_local(cloud_without_api: LocalCloud) -> Iterator[int]:
    # Nothing of AWS from this process (the in-process cloud set its endpoint).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("EVENTFLOW_STAGE", None)
    env["EVENTFLOW_AWS_PORT"] = str(cloud_without_api.aws_port)
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_ON_PORT_0, str(PROJECT_DIR)],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_LIMIT)
        assert ready, f"chalice's local server printed nothing within {STARTUP_LIMIT:.0f} s"
        line = process.stdout.readline()
        assert line.startswith("port "), line + (process.stdout.read() if process.poll() else "")
        yield int(line.split()[1])
    finally:
        process.terminate()
        process.wait(timeout=STARTUP_LIMIT)


def test_chalice_local_serves_the_api_against_a_running_local_cloud(
    chalice_local: int, cloud_without_api: LocalCloud
):
    port = chalice_local
    assert request(port, "GET", "/health", headers={"Content-Type": "text/plain"}) == (
        200,
        {"status": "ok"},
    )
    status, created = request(
        port, "POST", "/readings", READING, {"Content-Type": "application/json"}
    )
    assert status == 201, created
    status, page = request(port, "GET", "/readings/chalice-local-lab")
    assert (status, page["items"]) == (200, [created])
    # The reading is in the local cloud's table, not anywhere else.
    item = cloud_without_api.clients.dynamodb.get_item(
        TableName=cloud_without_api.stack.settings.readings_table,
        Key={"location": {"S": READING["location"]}, "reading_id": {"S": created["reading_id"]}},
    )
    assert "Item" in item

    cloud_without_api.stop()  # the endpoint goes down under the API
    status, body = request(port, "GET", "/readings/chalice-local-lab")
    assert status == 503 and body["details"][0]["field"] == "dynamodb", body


def test_up_takes_no_api_and_refuses_other_arguments(monkeypatch):
    import localcloud.up
    from localcloud.__main__ import main

    started = []
    monkeypatch.setattr(localcloud.up, "main", lambda **kwargs: started.append(kwargs) or 0)
    assert main(["up", "--no-api"]) == 0 and main(["up"]) == 0
    assert started == [{"serve_api": False}, {"serve_api": True}]
    with pytest.raises(SystemExit):
        main(["up", "--api=no"])
