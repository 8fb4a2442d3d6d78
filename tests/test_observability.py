"""The per-invocation logging and metrics context (chalicelib.observability.invocation)."""

from __future__ import annotations

import json
import warnings

from chalicelib.observability import count, invocation, metrics


def test_each_invocation_publishes_its_own_metrics_with_its_stage_and_no_warning(
    capsys, monkeypatch
):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Powertools' "Dimension already added" fails the test
        for stage, rows in (("local", 3), ("local", 5), ("dev", 7)):
            with invocation("write_readings", stage):
                count("RowsWritten", rows)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    written = [(line["stage"], line["RowsWritten"]) for line in lines]
    assert written == [("local", [3.0]), ("local", [5.0]), ("dev", [7.0])]
    assert metrics.metric_set == {}
