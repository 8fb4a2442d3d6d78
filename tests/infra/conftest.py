"""Fixtures for the infra tests: packaged stages, built once per session.

Packaging runs against a copy of the project whose ``requirements.txt`` is
empty: the templates do not depend on the deployment package's contents, and
an empty one needs neither the network nor a wheel cache (Chalice would
otherwise fetch manylinux wheels for pydantic-core).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from infra.package import package
from infra.resources import Stack
from infra.stack import declare
from infra.stageconfig import PROJECT_DIR, StageConfig
from tests.infra.motogaps import moto_gaps  # noqa: F401 (a fixture, for test_deploy)
from tests.plugins.iam_calls import RECORDER, Recorder


def project_copy(target: Path) -> Path:
    """The app, chalicelib and config, without deployed state or dependencies."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PROJECT_DIR / "app.py", target / "app.py")
    shutil.copytree(
        PROJECT_DIR / "chalicelib",
        target / "chalicelib",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (target / ".chalice").mkdir(exist_ok=True)
    shutil.copy2(PROJECT_DIR / ".chalice" / "config.json", target / ".chalice" / "config.json")
    (target / "requirements.txt").write_text("")
    return target


def stack_for(stage: str) -> Stack:
    return declare(StageConfig.load(stage))


@pytest.fixture(scope="session")
def packaging_project(tmp_path_factory) -> Path:
    return project_copy(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="session")
def prod_cfn_dir(packaging_project, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cfn") / "prod"
    config = StageConfig.load("prod")
    package(config, declare(config), packaging_project, out, "cloudformation")
    return out


@pytest.fixture(scope="session")
def prod_sam(prod_cfn_dir) -> dict:
    return json.loads((prod_cfn_dir / "sam.json").read_text())


@pytest.fixture(scope="session")
def prod_plain_cfn(prod_sam) -> dict:
    """The SAM template translated to plain CloudFormation, offline."""
    import os

    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        # Chalice's template names no managed policies; nothing to look up.
        def load(self) -> dict:
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = json.loads(json.dumps(prod_sam))
    # What `aws cloudformation package` does before a deploy: the code goes to S3.
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/eventflow/deployment.zip"
    return transform(template, {}, NoManagedPolicies())


@pytest.fixture(scope="session")
def terraform_dirs(packaging_project, tmp_path_factory) -> dict[str, Path]:
    dirs = {}
    for stage in ("dev", "prod"):
        out = tmp_path_factory.mktemp("tf") / stage
        config = StageConfig.load(stage)
        package(config, declare(config), packaging_project, out, "terraform")
        dirs[stage] = out
    return dirs


@pytest.fixture(name="iam_calls")
def iam_calls_fixture() -> Recorder:
    """The session's call recorder (also provided when the plugin is loaded)."""
    RECORDER.install()
    return RECORDER
