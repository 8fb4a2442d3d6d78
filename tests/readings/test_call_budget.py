"""The ingest's API-call budget: within 10% of the floor the design sets.

Counts calls, not time, so it is deterministic on any machine.
"""

from __future__ import annotations

import io

from sample_data.generate import write_rows


def test_ten_thousand_rows_cost_within_ten_percent_of_the_floor():
    from benchmarks.calls import measure

    out = io.StringIO()
    write_rows(out, 10_000)
    result = measure(out.getvalue().encode())
    assert result["rows"] == 10_000
    assert result["calls"]["dynamodb:BatchWriteItem"] == 400
    assert result["total"] <= 1.10 * result["floor"]
    # No per-row calls anywhere.
    assert not {"sqs:SendMessage", "dynamodb:PutItem"} & {
        op for op, n in result["calls"].items() if n > 1
    }
