"""checkov over the packaged CloudFormation: no failed check beyond the justified skips.

checkov runs from its own virtualenv (``make checkov-venv``; ``make test``
builds it first) because its pins conflict with the project's. The skip list
is ``infra/checkov.yaml``; each skipped id must be justified in
``docs/security.md``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from infra.stageconfig import PROJECT_DIR

CHECKOV = PROJECT_DIR / ".venv-checkov" / "bin" / "checkov"
CONFIG = PROJECT_DIR / "infra" / "checkov.yaml"
SECURITY_DOC = PROJECT_DIR / "docs" / "security.md"


def skipped_ids() -> list[str]:
    ids, in_list = [], False
    for line in CONFIG.read_text().splitlines():
        if line.startswith("skip-check:"):
            in_list = True
        elif in_list and line.strip().startswith("- "):
            ids.append(line.split("- ", 1)[1].split("#")[0].strip())
        elif in_list and line.strip():
            in_list = False
    return ids


def test_checkov_passes_with_only_the_justified_skips(prod_cfn_dir: Path):
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make checkov-venv` (make test does)")
    result = subprocess.run(
        [str(CHECKOV), "--config-file", str(CONFIG), "-f", "sam.json", "-o", "json"],
        cwd=prod_cfn_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    assert report["summary"]["passed"] > 0 and report["summary"]["parsing_errors"] == 0


def test_every_skip_is_justified_in_the_security_doc():
    text = SECURITY_DOC.read_text()
    ids = skipped_ids()
    assert ids, "the skip list could not be read"
    for check_id in ids:
        assert f"`{check_id}`" in text, (
            f"{check_id} is skipped without a reason in docs/security.md"
        )
