"""A call the policies do not allow fails the run also when a worker of ``pytest -n`` made it.

``make test`` runs the suite on several workers (pytest-xdist); each judges
its own recorded calls, and the controller, which runs no test, must still
fail the run and name the call (``tests/plugins/iam_calls.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RECORDS_A_FORBIDDEN_CALL = """
from tests.plugins.iam_calls import RECORDER, Call


def test_records_a_call_no_policy_allows():
    RECORDER.calls.add(
        Call("local", "update_analytics", "s3:DeleteBucket", "arn:aws:s3:::anything", "us-east-1")
    )


def test_another_file_would_run_on_the_other_worker():
    pass
"""


def _run(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(body)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.plugins.iam_calls",
            "-n",
            "2",
            str(tmp_path / "test_probe.py"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_forbidden_call_in_a_worker_fails_the_run_and_is_named(tmp_path):
    result = _run(tmp_path, RECORDS_A_FORBIDDEN_CALL)
    assert "2 passed" in result.stdout
    assert result.returncode == 1, result.stdout
    assert "calls the policies do not allow" in result.stdout
    assert "s3:DeleteBucket" in result.stdout


def test_allowed_calls_in_workers_are_summed_by_the_controller(tmp_path):
    allowed = RECORDS_A_FORBIDDEN_CALL.replace(
        '"s3:DeleteBucket", "arn:aws:s3:::anything"',
        '"dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:123456789012:table/'
        'eventflow-local-daily-analytics"',
    )
    result = _run(tmp_path, allowed)
    assert result.returncode == 0, result.stdout
    assert "least-privilege IAM: 1 recorded calls of update_analytics are all allowed" in (
        result.stdout
    )
