"""The size of the deployment package ``chalice package`` builds, with and without dependencies.

The package is what every function's cold start downloads and unpacks:
``app.py``, ``chalicelib/`` and the wheels of ``requirements.txt``
(Powertools, pydantic and its compiled core; boto3 comes with the runtime).
It is built with ``python -m infra package``'s own code, for the ``prod``
stage, in a copy of the project under ``out/bench-package/``: Chalice keeps
its wheel cache there (``.chalice/deployments/``), so only the first run
downloads the wheels.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "out" / "bench-package"


def _project_copy(target: Path, requirements: str) -> Path:
    """app.py, chalicelib and the Chalice config; Chalice's cache, if any, is kept."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "app.py", target / "app.py")
    shutil.rmtree(target / "chalicelib", ignore_errors=True)
    shutil.copytree(
        ROOT / "chalicelib", target / "chalicelib", ignore=shutil.ignore_patterns("__pycache__")
    )
    (target / ".chalice").mkdir(exist_ok=True)
    shutil.copy2(ROOT / ".chalice" / "config.json", target / ".chalice" / "config.json")
    (target / "requirements.txt").write_text(requirements)
    return target


def _zip_figures(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    return {
        "zip_bytes": path.stat().st_size,
        "unpacked_bytes": sum(i.file_size for i in infos),
        "files": len(infos),
    }


def build(requirements: str, name: str) -> dict[str, Any]:
    from infra.package import package
    from infra.stack import declare
    from infra.stageconfig import StageConfig

    project = _project_copy(WORK / name / "project", requirements)
    out = WORK / name / "out"
    shutil.rmtree(out, ignore_errors=True)
    config = StageConfig.load("prod")
    started = time.perf_counter()
    package(config, declare(config), project, out, "cloudformation")
    return {
        **_zip_figures(out / "deployment.zip"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def measure() -> dict[str, Any]:
    """The package as shipped, and the app's own code alone (no requirements)."""
    shipped = build((ROOT / "requirements.txt").read_text(), "shipped")
    code_only = build("", "code-only")
    return {
        "stage": "prod",
        "shipped": shipped,
        "code_only": code_only,
        "dependencies_share": round(1 - code_only["zip_bytes"] / shipped["zip_bytes"], 3),
    }


def main() -> int:
    print(json.dumps(measure(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
