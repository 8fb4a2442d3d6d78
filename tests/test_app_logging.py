"""Importing the app leaves the service's log lines on: Chalice does not take the logger over.

The Chalice app and Powertools' service logger share the name "eventflow".
Powertools sets it up at INFO; Chalice's own setup would set it to ERROR and
stop it propagating whenever the stream of Powertools' handler is not the
``sys.stdout`` of the moment, as under a test runner's capture, and every
INFO line (the audit trail's among them) would be dropped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import io, json, logging, sys
from chalicelib.observability import logger
sys.stdout = io.StringIO()  # another stream, as a test runner's capture swaps in
import app
service = logging.getLogger(logger.name)
print(json.dumps([service.isEnabledFor(logging.INFO), service.propagate]), file=sys.stderr)
"""


def test_the_service_logger_still_logs_info_after_the_app_is_built():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stderr.strip().splitlines()[-1] == "[true, true]"
