"""Running the Chalice CLI, and writing the IAM policy files it reads.

Chalice runs in a subprocess: it applies the stage's environment variables to
``os.environ`` and caches state per process, neither of which should leak into
the caller (the tests, or ``python -m infra deploy``).

With ``autogen_policy`` off, Chalice gives each function its own role whose
policy it reads from ``.chalice/<iam_policy_file>``, named per function in
``.chalice/config.json``. Those files are build outputs, written from
:mod:`infra.iam` before every Chalice run and never edited by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from infra.resources import Stack
from infra.stageconfig import StageConfig


class ChaliceError(RuntimeError):
    pass


def policy_file(config: StageConfig, function: str) -> str:
    """The file name config.json gives a function's policy (relative to .chalice/)."""
    stage = config.raw["stages"][config.stage]
    name = (
        stage.get("lambda_functions", {}).get(function, {}).get("iam_policy_file")
        or stage.get("iam_policy_file")
        or config.raw.get("iam_policy_file")
    )
    if not name:
        raise ChaliceError(
            f"stage {config.stage}: no iam_policy_file for {function} in .chalice/config.json"
        )
    return name


def write_policy_files(
    project_dir: Path,
    config: StageConfig,
    stack: Stack,
    render: Callable[[str], dict[str, Any]],
) -> list[Path]:
    """Write ``render(function)`` to each declared function's policy file."""
    written = []
    for function in stack.functions:
        path = project_dir / ".chalice" / policy_file(config, function.name)
        path.write_text(json.dumps(render(function.name), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def run(
    args: list[str],
    project_dir: Path,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
) -> subprocess.CompletedProcess:
    """``chalice ARGS`` in ``project_dir``; raises :class:`ChaliceError` on failure."""
    command = [sys.executable, "-c", "import sys, chalice.cli; sys.exit(chalice.cli.main())"]
    environ = dict(os.environ if env is None else env)
    environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result = subprocess.run(
        [*command, "--project-dir", str(project_dir), *args],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    if not capture:
        sys.stderr.write(result.stdout + result.stderr)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise ChaliceError(f"chalice {' '.join(args)} failed ({result.returncode}):\n{output}")
    return result
