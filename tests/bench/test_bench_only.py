"""`python -m benchmarks --only SECTION`: re-runs one section and keeps the others' figures."""

from __future__ import annotations

import json

from benchmarks.__main__ import kept_sections


def _earlier(tmp_path, quick: bool):
    path = tmp_path / "results.json"
    path.write_text(
        json.dumps(
            {
                "started": "2026-12-01 04:12 UTC",
                "quick": quick,
                "sections": {
                    "calls": {"seconds": 30.0, "status": "ok"},
                    "throughput": {"seconds": 90.0, "status": "ok"},
                    "memory": {"seconds": 60.0, "status": "failed", "output": "boom"},
                },
                "calls": {"runs": [{"rows": 20}]},
                "throughput": {"runs": [{"rows": 10_000}]},
            }
        )
    )
    return path


def test_the_sections_not_rerun_keep_their_figures_status_and_time(tmp_path):
    kept = kept_sections(_earlier(tmp_path, quick=False), False, ["throughput"])
    assert kept["calls"] == {"runs": [{"rows": 20}]}
    assert "throughput" not in kept
    assert kept["sections"] == {
        "calls": {"ran_at": "2026-12-01 04:12 UTC", "seconds": 30.0, "status": "ok"},
        # A failed section stays failed, with its output, until it is re-run.
        "memory": {
            "ran_at": "2026-12-01 04:12 UTC",
            "seconds": 60.0,
            "status": "failed",
            "output": "boom",
        },
    }


def test_figures_of_the_other_kind_of_run_or_no_results_are_not_kept(tmp_path):
    assert kept_sections(_earlier(tmp_path, quick=True), False, ["calls"]) == {"sections": {}}
    assert kept_sections(tmp_path / "missing.json", False, ["calls"]) == {"sections": {}}
    (tmp_path / "broken.json").write_text("{")
    assert kept_sections(tmp_path / "broken.json", False, ["calls"]) == {"sections": {}}
