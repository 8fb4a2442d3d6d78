"""The README's commands, run as written in a fresh shell next to ``localcloud up --no-api``.

One local cloud serves the module: ``python -m localcloud up --no-api`` in a
subprocess, demo on, its AWS port 0 (read back from what it prints). Every
other command runs in a subprocess too, with an environment scrubbed of
``AWS_*`` variables and a home without AWS configuration, as in a new
terminal; only ``EVENTFLOW_AWS_PORT`` says where the cloud listens, because
the test cannot take the default port 5000. Each test states what the user
relies on: ``up --no-api`` stays up, the ``local`` stage finds the local cloud
without exports, a redrive of a poison message ends, and ``--follow`` follows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from chalicelib.aws import client_config
from localcloud.env import aws_exports
from tests.localcloud.test_cloud_make_run import AWS_LINE, DEMO_FINISHED, wait_for

PROJECT_DIR = Path(__file__).resolve().parents[2]
STARTUP_LIMIT = 45.0
DEMO_LIMIT = 90.0
COMMAND_LIMIT = 120.0
EXIT_LIMIT = 20.0
ORDERS_SKIPPED = "demo: orders skipped: the API is not served (--no-api)"


def fresh_environment(home: Path, **extra: str) -> dict[str, str]:
    """A new terminal's environment: no AWS settings at all, and no ~/.aws to read."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "EVENTFLOW_", "BOTO_"))
    }
    # No instance-metadata probe for credentials: this is a laptop, not EC2.
    return {
        **env,
        "HOME": str(home),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Cloud:
    def __init__(self, process: subprocess.Popen, log: Path, aws_port: int, home: Path):
        self.process, self.log, self.aws_port, self.home = process, log, aws_port, home

    def text(self) -> str:
        return self.log.read_text()

    def run(self, *argv: str, timeout: float = COMMAND_LIMIT) -> subprocess.CompletedProcess:
        """``python ARGV...`` in a fresh shell that knows only the cloud's port."""
        env = fresh_environment(self.home, EVENTFLOW_AWS_PORT=str(self.aws_port))
        return subprocess.run(
            [sys.executable, *argv],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def client(self, service: str):
        """A client of the test's own, with the exports ``up`` prints."""
        exports = aws_exports(f"http://127.0.0.1:{self.aws_port}")
        return boto3.session.Session().client(
            service,
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name=exports["AWS_DEFAULT_REGION"],
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
            config=client_config(),
        )


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    log = tmp_path_factory.mktemp("up") / "localcloud.out"
    env = fresh_environment(
        home, EVENTFLOW_AWS_PORT="0", EVENTFLOW_CONSOLE_PORT="0", EVENTFLOW_DEMO="1"
    )
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "localcloud", "up", "--no-api"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        found = wait_for(
            lambda: AWS_LINE.search(log.read_text()), STARTUP_LIMIT, "the AWS port", process
        )
        running = Cloud(process, log, int(found.group(1)), home)
        wait_for(lambda: DEMO_FINISHED.search(running.text()), DEMO_LIMIT, "the demo", process)
        # The orders demo comes after the readings demo: wait for its line, or
        # for the process to die, which the first test then reports.
        deadline = time.monotonic() + DEMO_LIMIT
        while ORDERS_SKIPPED not in running.text() and process.poll() is None:
            assert time.monotonic() < deadline, running.text()
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=EXIT_LIMIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_up_without_the_api_skips_the_orders_demo_and_stays_up(cloud):
    text = cloud.text()
    assert cloud.process.poll() is None, text
    assert DEMO_FINISHED.search(text).group(2) == "COMPLETED", text
    assert ORDERS_SKIPPED in text
    assert "Traceback" not in text
    # The skip line says how to get the API that the orders demo needs.
    assert "chalice local --stage local" in text.split(ORDERS_SKIPPED, 1)[1]


def test_ops_status_in_a_fresh_shell_reads_the_local_cloud(cloud):
    job_id = DEMO_FINISHED.search(cloud.text()).group(1)

    result = cloud.run("-m", "ops", "status", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(result.stdout)
    assert job_id in json.dumps(status)
    assert "eventflow-local-ingest" in json.dumps(status)


def test_ops_mail_in_a_fresh_shell_lists_the_local_outbox(cloud):
    result = cloud.run("-m", "ops", "mail")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Outbox: " in result.stdout
    assert "no outbox" not in result.stdout


def test_infra_outputs_in_a_fresh_shell_names_the_local_clouds_resources(cloud):
    result = cloud.run("-m", "infra", "outputs", "--stage", "local")

    assert result.returncode == 0, result.stdout + result.stderr
    outputs = json.loads(result.stdout)
    url = outputs["queues"]["ingest"]["url"]
    assert url.startswith(f"http://127.0.0.1:{cloud.aws_port}/"), url


def test_infra_outputs_without_credentials_says_so_in_one_line(tmp_path):
    # A real account's stage, in a shell with no AWS configuration at all.
    result = subprocess.run(
        [sys.executable, "-m", "infra", "outputs", "--stage", "prod"],
        cwd=PROJECT_DIR,
        env=fresh_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=COMMAND_LIMIT,
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "credentials" in lines[0], result.stderr


def test_ingest_replay_follow_waits_for_the_job_and_ends(cloud):
    job_id = DEMO_FINISHED.search(cloud.text()).group(1)

    result = cloud.run("-m", "ops", "ingest", "replay", job_id, "--follow")

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"ingest {job_id[:12]}\S*: COMPLETED", result.stdout), result.stdout
    assert "replayed; ingest" in result.stdout and "COMPLETED" in result.stdout


def test_redriving_poison_messages_moves_each_once_and_ends(cloud):
    sqs = cloud.client("sqs")
    intake = sqs.get_queue_url(QueueName="eventflow-local-order-intake.fifo")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="eventflow-local-order-intake-dlq.fifo")["QueueUrl"]
    for n in range(2):
        sqs.send_message(
            QueueUrl=intake,
            MessageBody=f"not json {n}",
            MessageGroupId=f"partner-{n}",
            MessageDeduplicationId=f"poison-{n}",
        )

    def depth(url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes[n]) for n in names)

    # The intake handler rejects them at once, into the DLQ.
    wait_for(lambda: depth(dlq) == 2, DEMO_LIMIT, "two rejected messages", cloud.process)

    result = cloud.run("-m", "ops", "dlq", "redrive", "order-intake")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "moved 2 message(s)" in result.stdout, result.stdout
    # Still poison: the handler rejects each again, and the DLQ ends with the
    # same two messages, no more and none lost.
    wait_for(
        lambda: depth(dlq) == 2 and depth(intake) == 0,
        DEMO_LIMIT,
        "both back in the DLQ",
        cloud.process,
    )
    bodies = sorted(
        m["Body"]
        for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)[
            "Messages"
        ]
    )
    assert bodies == ["not json 0", "not json 1"]
