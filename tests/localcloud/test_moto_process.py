"""moto's server in a process of its own (``make run``'s and ``make bench``'s moto).

The child must serve what the in-process server serves (moto, the outbox),
keep its state away from the test process's moto, and never outlive its
parent: neither a clean stop nor a parent killed outright leaves it running.
``tests/localcloud/test_cloud_make_run.py`` drives the whole pipeline
through it.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from localcloud.motoprocess import MotoProcess
from tests.localcloud.test_cloud_lifecycle import port_is_free

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Bounds on waits for an outcome, never timing assertions.
START_UNDER_LOAD_LIMIT = 120.0
EXIT_LIMIT = 20.0


def sqs(port: int):
    return boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )


def outbox(port: int) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/_aws/ses")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def wait_until(condition, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture
def moto_process():
    server = MotoProcess("127.0.0.1", 0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_child_serves_moto_and_the_outbox_and_keeps_its_own_state(moto_process):
    _, port = moto_process.get_host_and_port()
    client = sqs(port)
    url = client.create_queue(QueueName="in-the-child")["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="hello")
    received = client.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in received] == ["hello"]
    assert outbox(port) == (200, {"messages": []})

    # The test process's own moto has never heard of the queue.
    from moto.sqs.models import sqs_backends

    names = [q for account in sqs_backends.values() for b in account.values() for q in b.queues]
    assert "in-the-child" not in names


def test_stop_ends_the_child_and_frees_its_port():
    server = MotoProcess("127.0.0.1", 0)
    server.start()
    _, port = server.get_host_and_port()
    process = server._process
    server.stop()
    assert process is not None and process.returncode is not None
    assert port_is_free(port)
    server.stop()  # A second stop is harmless.


def test_the_child_ends_when_its_parent_is_killed():
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from localcloud.motoprocess import MotoProcess; import time;"
            "m = MotoProcess('127.0.0.1', 0); m.start();"
            "print(m.get_host_and_port()[1], flush=True); time.sleep(600)",
        ],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(parent.stdout.readline())
        assert not port_is_free(port)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(EXIT_LIMIT)
        assert wait_until(lambda: port_is_free(port), EXIT_LIMIT), "moto outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_a_busy_port_fails_the_start_with_the_reason():
    first = MotoProcess("127.0.0.1", 0)
    first.start()
    try:
        _, port = first.get_host_and_port()
        second = MotoProcess("127.0.0.1", port)
        # The child imports moto before it finds the port taken: on a loaded machine
        # that alone can take longer than a usual start, so the bound is generous.
        with pytest.raises(RuntimeError, match="did not start: it exited with code 1"):
            second.start(limit=START_UNDER_LOAD_LIMIT)
    finally:
        first.stop()
