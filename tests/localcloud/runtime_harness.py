"""Shared harness for the runtime tests: a real moto server and helpers.

Lives in a ``test_runtime_*`` module (it holds no tests) so the runtime's tests
stay self-contained; other modules import the fixture under its own name.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from chalicelib.aws import Clients
from chalicelib.config import Settings
from infra.functions import EventSourceSettings
from infra.outputs import Outputs
from infra.provision import Provisioner
from infra.resources import Bucket, Queue, Stack, Table
from infra.stageconfig import StageConfig
from localcloud.runtime import EventSourceRuntime
from localcloud.runtime import sqs as sqs_poller


@pytest.fixture(scope="module", name="moto_endpoint")
def _moto_endpoint() -> Iterator[str]:
    # Port 0: the server binds a free port itself, so no other test can take
    # it between a probe and the bind.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        server._server.server_close()  # stop() leaves the listening socket open


class Cloud:
    """One test's view of the local cloud: clients, a stack, runtimes to stop."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.clients = Clients()
        self.runtimes: list[EventSourceRuntime] = []

    def provision(
        self,
        *,
        queues: tuple[Queue, ...] = (),
        tables: tuple[Table, ...] = (),
        buckets: tuple[Bucket, ...] = (),
        event_sources: tuple[EventSourceSettings, ...] = (),
    ) -> tuple[Stack, Outputs]:
        stack = Stack(
            stage="local",
            settings=Settings(stage="local"),
            tables=tables,
            queues=queues,
            buckets=buckets,
            event_sources=event_sources,
        )
        return stack, Provisioner(self.clients).apply(stack)

    @staticmethod
    def config(
        functions: dict[str, dict[str, Any]] | None = None, env: dict[str, str] | None = None
    ) -> StageConfig:
        return StageConfig(
            stage="local",
            raw={
                "environment_variables": {"POWERTOOLS_METRICS_NAMESPACE": "tests"},
                "stages": {
                    "local": {
                        "lambda_timeout": 5,
                        "environment_variables": env or {},
                        "lambda_functions": functions or {},
                    }
                },
            },
        )

    def run(
        self, app: Any, stack: Stack, outputs: Outputs, config: StageConfig | None = None
    ) -> EventSourceRuntime:
        runtime = EventSourceRuntime(
            app, config or self.config(), stack, outputs, self.clients, poll_interval=0.02
        )
        self.runtimes.append(runtime)
        runtime.start()
        return runtime

    def send(self, url: str, bodies: list[str], **extra: Any) -> None:
        sqs = self.clients("sqs")
        for start in range(0, len(bodies), 10):
            entries = []
            for i, body in enumerate(bodies[start : start + 10]):
                entry = {"Id": str(i), "MessageBody": body}
                entry.update({k: v(body) if callable(v) else v for k, v in extra.items()})
                entries.append(entry)
            assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")

    def depth(self, url: str) -> tuple[int, int]:
        attributes = self.clients("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def drain(self, url: str, want: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Receive (and delete) messages from a queue, waiting for ``want``."""
        sqs = self.clients("sqs")
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            got.extend(messages)
        return got

    def stop(self) -> None:
        for runtime in self.runtimes:
            runtime.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> bool:
    """Bounded polling: never assert on durations, only on outcomes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def runtime_threads() -> list[threading.Thread]:
    """The runtime's own (non-handler) threads still alive."""
    prefixes = ("localcloud-sqs-", "localcloud-stream-", "localcloud-batch-", "localcloud-metrics")
    return [t for t in threading.enumerate() if t.name.startswith(prefixes)]


@pytest.fixture(name="cloud")
def _cloud(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    ).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # A poller's stop waits out its current long poll (1 s); tests short-poll
    # instead so that each teardown does not pay that second.
    monkeypatch.setattr(sqs_poller, "LONG_POLL_SECONDS", 0)
    cloud = Cloud(moto_endpoint)
    try:
        yield cloud
    finally:
        cloud.stop()
    assert not runtime_threads(), "the runtime left threads behind"


class Recorder:
    """Thread-safe record of what handlers saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[list[dict[str, Any]]] = []
        self.contexts: list[Any] = []

    def add(self, records: list[dict[str, Any]], context: Any = None) -> int:
        with self.lock:
            self.calls.append(records)
            self.contexts.append(context)
            return len(self.calls)

    def bodies(self) -> list[str]:
        with self.lock:
            return [r["body"] for call in self.calls for r in call]
