"""The audit trail through the local cloud's API: one line per request, and nothing personal.

Requests run concurrently, as API Gateway would serve them; each must get
its own line with its own request id, the route's template (not the path
with the order id), the status and the latency, and no body or email.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import audit
from chalicelib.observability import logger
from localcloud.cloud import LocalCloud
from tests.localcloud.http_api import call

CLIENTS = 8


class Lines(logging.Handler):
    """The service logger's lines, formatted as Lambda would write them (JSON)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.setFormatter(logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with self._lock:
            self.lines.append(line)

    def audit(self) -> list[dict]:
        with self._lock:
            lines = list(self.lines)
        return [
            entry
            for entry in map(json.loads, lines)
            if entry.get("audit") == "api_request" and entry["message"] == audit.MESSAGE
        ]


@pytest.fixture
def cloud():
    with LocalCloud(aws_port=0, api_port=0) as running:
        yield running


@pytest.fixture
def lines():
    handler = Lines()
    target = logging.getLogger(logger.name)
    target.addHandler(handler)
    yield handler
    target.removeHandler(handler)


def test_each_concurrent_request_gets_one_line_with_its_route_template(cloud, lines):
    port = cloud.api_port
    secret_email = f"audit-{uuid.uuid4().hex[:8]}@example.com"
    order_ids = [f"missing-{i}-{uuid.uuid4().hex[:6]}" for i in range(CLIENTS)]

    def client(i: int) -> tuple[int, int]:
        got, _ = call(port, "GET", f"/orders/{order_ids[i]}")
        # An order for an unknown product: a 4xx whose body carries an email.
        body = {
            "customer_id": f"c-{i}",
            "customer_email": secret_email,
            "items": [{"product_id": "no-such-product", "quantity": 1}],
        }
        posted, _ = call(port, "POST", "/orders", body, {"Idempotency-Key": f"k-{i}"})
        return got, posted

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(client, range(CLIENTS)))

    entries = lines.audit()
    gets = [e for e in entries if e["method"] == "GET" and e["route"] == "/orders/{order_id}"]
    posts = [e for e in entries if e["method"] == "POST" and e["route"] == "/orders"]
    assert len(gets) == CLIENTS and len(posts) == CLIENTS, entries
    assert sorted(e["status"] for e in gets) == sorted(s[0] for s in statuses)
    assert sorted(e["status"] for e in posts) == sorted(s[1] for s in statuses)
    assert all(400 <= e["status"] < 500 for e in gets + posts)
    request_ids = [e["request_id"] for e in gets + posts]
    assert all(request_ids) and len(set(request_ids)) == len(request_ids)
    for entry in gets + posts:
        assert isinstance(entry["latency_ms"], int | float) and entry["latency_ms"] >= 0
        # Unsigned local requests: API Gateway would have refused them in a deployed stage.
        assert entry["principal"] == audit.ANONYMOUS
    text = "\n".join(json.dumps(e) for e in entries)
    assert secret_email not in text
    assert not any(order_id in text for order_id in order_ids)


def test_the_principal_is_the_signed_caller_from_api_gateway_s_context():
    arn = "arn:aws:sts::111122223333:assumed-role/operator/session-1"
    context = {
        "requestId": "r-1",
        "resourcePath": "/customers/{customer_id}/orders",
        "identity": {"userArn": arn, "caller": "AROA:session-1", "sourceIp": "203.0.113.9"},
    }
    line = audit.record(context=context, method="GET", status=200, latency_ms=12.34)
    assert line == {
        "audit": "api_request",
        "request_id": "r-1",
        "method": "GET",
        "route": "/customers/{customer_id}/orders",
        "status": 200,
        "latency_ms": 12.3,
        "principal": arn,
    }
    unsigned = audit.record(
        context={"resourcePath": "/health", "identity": {"sourceIp": "127.0.0.1"}},
        method="GET",
        status=200,
        latency_ms=1,
    )
    assert unsigned["principal"] == audit.ANONYMOUS
