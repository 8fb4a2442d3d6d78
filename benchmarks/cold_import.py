"""Cold-import time of ``app.py`` against a bare ``import boto3``, as a ratio.

Each import runs in a fresh interpreter, the cases interleaved so that all see
the same machine load; the median of each is reported, and their ratio is
what to compare across machines. Lambda pays this on every cold start.

Three cases: ``import boto3`` (the baseline), ``import app`` (what every
function of the app pays at its cold start), and ``import app, boto3``
(what a function that calls AWS has paid by its first call, since the app
imports boto3 only when it makes its first client; see chalicelib/lazy.py).
``python -X importtime`` then names the app's heaviest direct imports.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = {"boto3": "import boto3", "app": "import app", "app_then_boto3": "import app, boto3"}


def _env() -> dict[str, str]:
    return {**os.environ, "EVENTFLOW_STAGE": "local", "AWS_DEFAULT_REGION": "us-east-1"}


def time_import(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, env=_env(), check=True)
    return time.perf_counter() - start


def heaviest_imports(statement: str = "import app", top: int = 8) -> list[dict[str, Any]]:
    """The modules ``statement`` imports directly, by cumulative ``-X importtime`` microseconds."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    found = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip(" "))) // 2
        # Depth 0 is the statement's own import (app); depth 1 its direct imports.
        if depth in (0, 1):
            found.append({"module": name.strip(), "cumulative_us": int(parts[1]), "depth": depth})
    found.sort(key=lambda m: -m["cumulative_us"])
    return found[:top]


def measure(runs: int = 9) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):
        for name, statement in CASES.items():
            samples[name].append(time_import(statement))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "median_seconds": {k: round(v, 4) for k, v in medians.items()},
        "app_over_boto3": round(medians["app"] / medians["boto3"], 2),
        "app_then_boto3_over_boto3": round(medians["app_then_boto3"] / medians["boto3"], 2),
        "runs": runs,
        "heaviest_imports": heaviest_imports(),
    }


def main(runs: int = 9) -> int:
    print(json.dumps(measure(runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9))
