"""Importing app.py stays light: heavy dependencies load when a handler first needs them.

Lambda imports all of ``app.py`` on every cold start of every function, so
what it imports is paid by each. These are structural checks (which modules
a fresh interpreter holds), never timings; ``python -m benchmarks`` times it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each is needed by some handlers only, or by none until its first AWS call.
HEAVY = (
    "boto3",
    "botocore.client",
    "botocore.session",
    "pydantic",
    "pydantic_core",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes",
    "chalicelib.batch",
    "chalicelib.dynamo",
    "chalicelib.validation",
    "chalicelib.orders.events",
    "chalicelib.orders.intake",
    "chalicelib.orders.inventory",
    "chalicelib.orders.model",
    "chalicelib.orders.service",
    "chalicelib.orders.store",
    "chalicelib.readings.ingest",
    "chalicelib.readings.jobs",
    "chalicelib.readings.model",
    "chalicelib.readings.store",
    "chalicelib.readings.writer",
)


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "EVENTFLOW_STAGE": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_app_loads_none_of_the_heavy_modules():
    loaded = modules_after("import app")
    assert "app" in loaded and "chalice.app" in loaded
    assert sorted(loaded & set(HEAVY)) == []


def test_a_handler_loads_what_it_needs_when_it_first_uses_it():
    # The lazy names resolve to the real modules, so the list above names
    # modules the handlers really use (a typo there would pass the test above).
    # Nothing here imports a module of the list itself: each must be loaded by
    # the app's own code, or this test could not tell a stale name from a used one.
    loaded = modules_after(
        "import app\n"
        "from chalicelib.orders import api, handlers\n"
        "from chalicelib.readings import handlers as readings\n"
        "api.service.place_order, handlers.batch.sqs_fifo_batch, handlers.inventory.apply\n"
        "handlers.intake.handle, handlers.events.publish\n"
        "readings.writer.write_chunk, readings.ingest.ingest_object\n"
    )
    assert sorted(set(HEAVY) - loaded) == []
