"""Cold-import time of ``app.py`` against a bare ``import boto3``, as a ratio.

Each import runs in a fresh interpreter, alternating the two so that both see
the same machine load; the median of each is reported, and their ratio is
what to compare across machines. Lambda pays this on every cold start.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {"boto3": "import boto3", "app": "import app"}


def time_import(statement: str) -> float:
    env = {**os.environ, "EVENTFLOW_STAGE": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def main(runs: int = 9) -> int:
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):
        for name, statement in CASES.items():
            samples[name].append(time_import(statement))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(
        json.dumps(
            {
                "median_seconds": {k: round(v, 3) for k, v in medians.items()},
                "app_over_boto3": round(medians["app"] / medians["boto3"], 2),
                "runs": runs,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9))
