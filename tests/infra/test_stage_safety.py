"""A stage can never deploy open: its name decides IAM auth, so it must be set and right.

``app.py`` puts an IAM authorizer on the orders routes unless the stage is
``local``, and reads the stage from ``EVENTFLOW_STAGE`` when Chalice imports
it. A stage block that forgot the variable used to fall back to ``local`` and
deploy every orders route without auth.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.config import ConfigError, Settings
from infra.__main__ import main
from infra.package import package
from infra.stack import declare
from infra.stageconfig import StageConfig, UndeployableStageError
from tests.infra.conftest import project_copy


def with_stage(project: Path, stage: str, environment: dict[str, str]) -> StageConfig:
    """The project's config with one more stage, copied from prod's block."""
    path = project / ".chalice" / "config.json"
    raw = json.loads(path.read_text())
    block = json.loads(json.dumps(raw["stages"]["prod"]))
    block["environment_variables"] = environment
    raw["stages"][stage] = block
    path.write_text(json.dumps(raw, indent=2))
    return StageConfig.load(stage, path)


@pytest.mark.parametrize(
    "environment, problem",
    [
        ({"EVENTFLOW_INGEST_TRIGGER": "sqs"}, "is missing"),
        ({"EVENTFLOW_STAGE": "prod", "EVENTFLOW_INGEST_TRIGGER": "sqs"}, "is 'prod'"),
    ],
    ids=["missing", "another-stage"],
)
def test_a_stage_that_does_not_name_itself_is_refused(tmp_path, capsys, environment, problem):
    project = project_copy(tmp_path / "project")
    config = with_stage(project, "staging", environment)

    with pytest.raises(UndeployableStageError, match=problem):
        config.require_deployable()
    out = tmp_path / "out"
    for command in ("package", "deploy"):
        code = main([command, "--stage", "staging", "--project-dir", str(project)])
        assert code == 2
        assert f"EVENTFLOW_STAGE in its environment_variables {problem}" in capsys.readouterr().err
    assert not out.exists() and not (project / ".chalice" / "deployed").exists()


def test_package_itself_refuses_before_chalice_runs(tmp_path):
    project = project_copy(tmp_path / "project")
    config = with_stage(project, "staging", {"EVENTFLOW_STAGE": "prod"})
    # The declaration of a mislabelled stage is prod's; packaging it must still refuse.
    stack = declare(config)
    with pytest.raises(UndeployableStageError):
        package(config, stack, project, tmp_path / "out", "cloudformation")
    assert not (tmp_path / "out").exists()


def test_the_local_stage_is_never_packaged_or_deployed(tmp_path, capsys):
    project = project_copy(tmp_path / "project")
    for command in ("package", "deploy"):
        assert main([command, "--stage", "local", "--project-dir", str(project)]) == 2
        assert "leaves every route open" in capsys.readouterr().err


def test_a_stage_that_names_itself_is_accepted():
    for stage in ("dev", "prod"):
        StageConfig.load(stage).require_deployable()


def test_the_app_has_no_default_stage():
    with pytest.raises(ConfigError, match="EVENTFLOW_STAGE is not set"):
        Settings.from_env({"EVENTFLOW_INGEST_TRIGGER": "sqs"})
    assert Settings.from_env({"EVENTFLOW_STAGE": "local"}).stage == "local"
