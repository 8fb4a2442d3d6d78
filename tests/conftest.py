"""Shared fixtures: moto-backed AWS, the provisioned local stack, and the app's services."""

from __future__ import annotations

import os

import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from chalicelib.aws import Clients
from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.services import Services
from infra.provision import Provisioner
from infra.stack import declare
from infra.stageconfig import StageConfig
from localcloud import motolocks
from localcloud.motopatch import applied

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "eventflow")
# The app has no default stage (chalicelib.config); test modules that import
# app.py at collection run it as the local stage, as the local cloud does.
os.environ.setdefault("EVENTFLOW_STAGE", "local")


def _share_botocore_data_loader() -> None:
    """Let every botocore session in the test process share one loader of botocore's data.

    Each test builds new sessions (``Clients()`` in a fresh ``mock_aws``), and a
    new session reads and parses botocore's JSON data again (the endpoint rules
    alone take about half a second), which was most of the cost of provisioning
    a stack per test. The data is the same files, read only; within one session
    botocore already shares them between its clients. Lambda builds one session
    per process, so the app itself needs none of this.
    """
    loaders: dict[object, botocore.loaders.Loader] = {}

    def register_shared_loader(session: botocore.session.Session) -> None:
        def shared() -> botocore.loaders.Loader:
            path = session.get_config_variable("data_path")
            if path not in loaders:
                loaders[path] = botocore.loaders.create_loader(path)
            return loaders[path]

        session._components.lazy_register_component("data_loader", shared)

    botocore.session.Session._register_data_loader = register_shared_loader


_share_botocore_data_loader()

# Records every AWS call the handlers make, and fails the run if a function's
# derived IAM policy does not allow one of them (see tests/plugins/iam_calls.py).
pytest_plugins = ["tests.plugins.iam_calls"]


class InstantClock(Clock):
    """Real time, but retries do not wait; sleeps are recorded for assertions."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    """Every test runs against fake credentials, never a real account."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("EVENTFLOW_STAGE", "local")
    # mock_aws answers only at AWS's own endpoints, so in-process ops commands
    # keep boto3's resolution rather than the local stage's fallback to the
    # local cloud's address (ops.target, tested in a fresh shell by
    # tests/localcloud/test_fresh_shell.py).
    monkeypatch.setattr("ops.target.stage_clients", lambda stage: Clients())


@pytest.fixture
def moto_locks():
    """moto's requests serialized as in the local cloud (``localcloud.motolocks``), for
    one test: undone after it, so no later test depends on this one having run."""
    with applied(*motolocks.PATCHES):
        yield


@pytest.fixture
def moto():
    with mock_aws():
        yield


@pytest.fixture
def stage_config() -> StageConfig:
    return StageConfig.load("local")


@pytest.fixture
def clients(moto) -> Clients:
    return Clients()


@pytest.fixture
def outputs(clients, stage_config):
    return Provisioner(clients).apply(declare(stage_config))


@pytest.fixture
def clock() -> InstantClock:
    return InstantClock()


@pytest.fixture
def services(outputs, clients, stage_config, clock) -> Services:
    return Services(stage_config.settings(), clients=clients, clock=clock)


@pytest.fixture
def api(services, monkeypatch):
    """Chalice's test client over the real app, wired to the moto-backed services."""
    from chalice.test import Client

    import app

    monkeypatch.setattr(app, "services", lambda: services)
    with Client(app.app, stage_name="local") as client:
        yield client


@pytest.fixture
def settings() -> Settings:
    return StageConfig.load("local").settings()
