"""What every route gets from app.py's edges, whatever the domain.

* An AWS dependency that cannot be reached or used is a 503 naming it, never
  a 500: no region, no credentials, endpoint down, throttled or failing after
  the retries, a table that does not exist. A bug is still a 500, in JSON.
* A request without a body is never refused for its Content-Type.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from chalice.test import Client

import app as app_module
from chalicelib import aws
from chalicelib.aws import Clients, local_defaults
from chalicelib.config import Settings
from chalicelib.services import Services

ONE_ATTEMPT = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2)


@pytest.fixture
def refused_endpoint() -> Iterator[str]:
    """An endpoint where nothing listens: bound, never listening, so no one else takes it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def serve(monkeypatch, services: Services) -> Client:
    monkeypatch.setattr(app_module, "services", lambda: services)
    # The stage's variables (EVENTFLOW_STAGE) apply while a request runs, so the
    # recorded-calls plugin checks its calls against that stage's policies.
    return Client(app_module.app, stage_name=services.settings.stage)


def get(client: Client, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    response = client.http.get(path, headers=headers or {})
    return response.status_code, json.loads(response.body or b"null")


def assert_unavailable(result: tuple[int, dict], service: str, problem: str) -> None:
    status, body = result
    assert status == 503, body
    assert body["error"] == "service_unavailable"
    assert body["details"][0]["field"] == service
    assert problem in body["details"][0]["problem"], body


def test_an_endpoint_that_is_down_is_a_503_naming_the_service(monkeypatch, refused_endpoint):
    monkeypatch.setenv("AWS_ENDPOINT_URL", refused_endpoint)
    services = Services(Settings(stage="local"), clients=Clients(config=ONE_ATTEMPT))
    with serve(monkeypatch, services) as client:
        assert_unavailable(get(client, "/readings/lab-01"), "dynamodb", "cannot connect")
        assert_unavailable(get(client, "/ingests"), "dynamodb", "cannot connect")


def test_no_region_is_a_503_naming_the_service(monkeypatch, tmp_path):
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    services = Services(Settings(stage="dev"), clients=Clients())
    with serve(monkeypatch, services) as client:
        assert_unavailable(get(client, "/readings/lab-01"), "dynamodb", "no AWS region")


def test_no_credentials_is_a_503_naming_the_service(monkeypatch, tmp_path, refused_endpoint):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", refused_endpoint)  # nothing real, ever
    services = Services(Settings(stage="dev"), clients=Clients(config=ONE_ATTEMPT))
    with serve(monkeypatch, services) as client:
        assert_unavailable(get(client, "/ingests"), "dynamodb", "no usable AWS credentials")


def _answering(status: int, error_type: str):
    """A fault injected under botocore: every request gets this error response."""

    def respond(request, **_):
        body = json.dumps({"__type": error_type, "message": "injected"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, status, headers, _Raw(body))

    return respond


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_):
        yield self._body


@pytest.mark.parametrize(
    ("status", "error_type", "problem"),
    [
        (400, "com.amazonaws.dynamodb.v20120810#ThrottlingException", "throttling"),
        (400, "com.amazonaws.dynamodb.v20120810#UnrecognizedClientException", "credentials"),
        (500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "failing"),
    ],
)
def test_a_throttled_failing_or_refusing_service_is_a_503(
    monkeypatch, refused_endpoint, status, error_type, problem
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", refused_endpoint)
    clients = Clients(config=ONE_ATTEMPT)
    clients.dynamodb.meta.events.register("before-send", _answering(status, error_type))
    with serve(monkeypatch, Services(Settings(stage="local"), clients=clients)) as client:
        assert_unavailable(get(client, "/readings/lab-01"), "dynamodb", problem)


def test_a_missing_table_is_a_503_that_asks_whether_the_stage_is_provisioned(monkeypatch, moto):
    services = Services(Settings(stage="local"), clients=Clients())
    with serve(monkeypatch, services) as client:
        assert_unavailable(get(client, "/readings/lab-01"), "dynamodb", "provisioned")


def test_a_bug_is_still_a_500_in_json(monkeypatch, services):
    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app_module.rest, "health", broken)
    with serve(monkeypatch, services) as client:
        status, body = get(client, "/health")
    assert status == 500 and body["error"] == "internal_error"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_requests_without_a_body_are_never_refused_for_their_content_type(
    monkeypatch, services, content_type
):
    headers = {"Content-Type": content_type}
    with serve(monkeypatch, services) as client:
        assert client.http.get("/health", headers=headers).status_code == 200
        assert client.http.get("/readings/lab-01", headers=headers).status_code == 200
        reading = "/readings/lab-01/20240601T100000.000000Z~wired"
        # Absent, so 404: the route ran, nothing refused the request's header.
        assert client.http.delete(reading, headers=headers).status_code == 404
        # A body still has to be JSON.
        refused = client.http.post("/readings", headers=headers, body=b"x=1")
        assert refused.status_code == 415
        assert json.loads(refused.body)["error"] == "unsupported_media_type"


def test_the_local_stage_defaults_to_the_local_cloud_and_other_stages_get_nothing():
    assert local_defaults("dev", {}) == {} and local_defaults("prod", {}) == {}
    assert local_defaults("local", {}) == {
        "region_name": "us-east-1",
        "endpoint_url": f"http://127.0.0.1:{aws.LOCAL_AWS_PORT}",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    assert local_defaults("local", {"EVENTFLOW_AWS_PORT": "5123"})["endpoint_url"] == (
        "http://127.0.0.1:5123"
    )
    configured = {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://elsewhere:1",
        "AWS_PROFILE": "mine",
    }
    assert local_defaults("local", configured) == {}
