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

from chalicelib.config import Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIG_PATH = PROJECT_DIR / ".chalice" / "config.json"

# Chalice's own default when a function sets no lambda_timeout.
DEFAULT_LAMBDA_TIMEOUT = 60


class UnknownStageError(KeyError):
    pass


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

    def settings(self) -> Settings:
        return Settings.from_env(self.environment())
