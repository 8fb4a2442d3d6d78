"""Reads a stage's settings out of ``.chalice/config.json``.

Chalice merges config in three layers (top level, stage, function); the
provisioner needs the same merged view to name resources and to size queue
visibility timeouts from the function timeouts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.config import LOCAL_STAGE, STAGE_VARIABLE, Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIG_PATH = PROJECT_DIR / ".chalice" / "config.json"

# Chalice's own default when a function sets no lambda_timeout.
DEFAULT_LAMBDA_TIMEOUT = 60


class UnknownStageError(KeyError):
    pass


class UndeployableStageError(ValueError):
    """The stage must not be packaged or deployed as configured."""


@dataclass(frozen=True)
class StageConfig:
    stage: str
    raw: dict[str, Any]

    @classmethod
    def load(cls, stage: str, path: Path = CONFIG_PATH) -> StageConfig:
        raw = json.loads(path.read_text())
        if stage not in raw.get("stages", {}):
            known = ", ".join(sorted(raw.get("stages", {})))
            raise UnknownStageError(f"stage {stage!r} is not in {path.name} (known: {known})")
        return cls(stage=stage, raw=raw)

    @property
    def _stage(self) -> dict[str, Any]:
        return self.raw["stages"][self.stage]

    def environment(self, function: str | None = None) -> dict[str, str]:
        """The environment a function sees: top level, then stage, then function."""
        env = dict(self.raw.get("environment_variables", {}))
        env.update(self._stage.get("environment_variables", {}))
        if function:
            env.update(self._function(function).get("environment_variables", {}))
        return env

    def _function(self, function: str) -> dict[str, Any]:
        return self._stage.get("lambda_functions", {}).get(function, {})

    def lambda_timeout(self, function: str) -> int:
        return int(
            self._function(function).get(
                "lambda_timeout", self._stage.get("lambda_timeout", DEFAULT_LAMBDA_TIMEOUT)
            )
        )

    def lambda_memory_size(self, function: str) -> int:
        return int(
            self._function(function).get(
                "lambda_memory_size", self._stage.get("lambda_memory_size", 128)
            )
        )

    def reserved_concurrency(self, function: str) -> int | None:
        value = self._function(function).get(
            "reserved_concurrency", self._stage.get("reserved_concurrency")
        )
        return None if value is None else int(value)

    def xray(self, function: str) -> bool:
        return bool(
            self._function(function).get(
                "xray", self._stage.get("xray", self.raw.get("xray", False))
            )
        )

    def api_gateway_stage(self) -> str:
        return self._stage.get("api_gateway_stage", self.raw.get("api_gateway_stage", "api"))

    def settings(self) -> Settings:
        return Settings.from_env(self.environment())

    def require_deployable(self) -> None:
        """Refuse a stage that could deploy open, before anything is packaged or deployed.

        ``app.py`` decides IAM auth from ``EVENTFLOW_STAGE`` when Chalice imports
        it, with the stage's own variables applied; so a stage block that does
        not name itself, or names another stage, is refused, and so is
        ``local``, whose routes are open by design.
        """
        if self.stage == LOCAL_STAGE:
            raise UndeployableStageError(
                f"stage {LOCAL_STAGE!r} leaves every route open and serves only the local "
                "cloud; package or deploy dev, prod or a stage of your own"
            )
        named = self.environment().get(STAGE_VARIABLE)
        if named != self.stage:
            found = "is missing" if not named else f"is {named!r}"
            raise UndeployableStageError(
                f"stage {self.stage!r}: {STAGE_VARIABLE} in its environment_variables "
                f"{found}; set it to {self.stage!r} in .chalice/config.json"
            )
