"""The rejects report: once per row, bounded, streamed to S3, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.config import DEFAULT_REJECTS_MAX_BYTES, DEFAULT_REJECTS_MAX_ROWS
from chalicelib.readings.rejects import (
    FORMULA_STARTS,
    HEADER,
    RejectsReport,
    neutralise,
    recover,
)
from tests.readings.pipeline import ingest_bytes

HEADER_LINE = b"timestamp,location,source,local_dest,local_avg,remote_dest,remote_avg\n"
# Every one of the seven columns breaks its rule: 7 problems in 11 bytes.
EVERY_RULE_BROKEN = b"x,,,,y,,z\n"


def report_of(services, job) -> tuple[bytes, list[dict[str, str]]]:
    body = services.clients.s3.get_object(Bucket=job["bucket"], Key=job["rejects_key"])
    raw = body["Body"].read()
    return raw, list(csv.DictReader(io.StringIO(raw.decode())))


# -- formulas ------------------------------------------------------------------------


@given(st.text())
def test_a_neutralised_cell_never_starts_a_formula_and_gives_its_text_back(text):
    cell = neutralise(text)
    assert not cell.startswith(FORMULA_STARTS)
    assert recover(cell) == text


@pytest.mark.parametrize("dangerous", ["=", "+", "-", "@", "\t", "\r", "'"])
def test_each_dangerous_start_gets_one_quote(dangerous):
    assert neutralise(dangerous + "1+1") == "'" + dangerous + "1+1"
    assert neutralise("a" + dangerous) == "a" + dangerous


def test_formula_cells_of_a_rejected_row_reach_the_report_neutralised(services, outputs):
    rows = [
        "=cmd|' /C calc'!A0,Lab,wired,a,1,b,oops",
        "@SUM(1+1),Lab,wired,a,1,b,2",
        "-2+3,Lab,wired,a,1,b,2",
        "\t=1+1,Lab,wired,a,1,b,2",
    ]
    body = HEADER_LINE + "\n".join(rows).encode() + b"\n"
    job = ingest_bytes(services, outputs, body)
    raw, report = report_of(services, job)
    assert job["rows_rejected"] == 4 and len(report) == 4
    cells = list(csv.reader(io.StringIO(raw.decode())))[1:]
    for line in cells:
        for cell in line:
            assert not cell.startswith(FORMULA_STARTS), line
    # The original text comes back by removing the one quote added.
    assert [recover(r["row"]) for r in report] == [_csv_text(row) for row in rows]


def _csv_text(row: str) -> str:
    """The row as the report writes it: its fields, CSV-quoted where needed."""
    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow(next(csv.reader([row])))
    return text.getvalue()


# -- amplification ---------------------------------------------------------------------


def test_a_file_of_rows_breaking_every_rule_completes_with_exact_counts_and_a_bounded_report(
    services, outputs
):
    rows = 200_000  # 2.2 MB of rows with 7 problems each: far past both bounds
    job = ingest_bytes(services, outputs, HEADER_LINE + EVERY_RULE_BROKEN * rows)
    assert job["state"] == "COMPLETED_WITH_REJECTS"
    assert (job["rows_seen"], job["rows_accepted"], job["rows_rejected"]) == (rows, 0, rows)
    assert job["rejects_truncated"] is True
    raw, report = report_of(services, job)
    assert len(raw) <= DEFAULT_REJECTS_MAX_BYTES
    *listed, note = report
    assert len(listed) == DEFAULT_REJECTS_MAX_ROWS
    assert [int(r["line"]) for r in listed] == list(range(2, DEFAULT_REJECTS_MAX_ROWS + 2))
    assert listed[0]["problems"].count(": ") == 7, "every problem of the row, on its one line"
    assert note["line"] == "" and "truncated" in note["problems"]
    assert f"of {rows} rejected rows" in note["problems"]


def test_the_byte_bound_cuts_the_report_too(services, outputs):
    from dataclasses import replace

    services.settings = replace(services.settings, rejects_max_bytes=64 * 1024)
    long_row = b"x," + b"L" * 900 + b",,,y,,z\n"
    job = ingest_bytes(services, outputs, HEADER_LINE + long_row * 500)
    raw, report = report_of(services, job)
    assert job["rows_rejected"] == 500 and job["rejects_truncated"] is True
    assert len(raw) <= 64 * 1024 and 10 < len(report) < 500


def test_a_report_within_its_bounds_is_not_truncated(services, outputs):
    job = ingest_bytes(services, outputs, HEADER_LINE + EVERY_RULE_BROKEN * 3)
    _, report = report_of(services, job)
    assert job["rejects_truncated"] is False and len(report) == 3


# -- streaming -------------------------------------------------------------------------

MiB = 1024 * 1024


def _fill(report: RejectsReport) -> None:
    fields = ["x", "L" * 900, "", "", "y", "", "z"]
    problems = [{"field": "location", "problem": "is longer than 128 characters"}]
    line = 2
    while not report.truncated:
        report.add(line, problems, fields)
        line += 1


def test_a_large_report_goes_up_in_parts_never_held_whole(services, outputs):
    bucket = services.settings.uploads_bucket
    s3 = services.clients.s3
    report = RejectsReport(
        s3, bucket, "rejects/big.csv", max_rows=10**9, max_bytes=12 * MiB, part_bytes=5 * MiB
    )
    with report:
        sizes = []
        original = report._send_part

        def noted():
            sizes.append(len(report._buffer))
            original()

        report._send_part = noted
        _fill(report)
        assert report.finish() == "rejects/big.csv"
    head = s3.head_object(Bucket=bucket, Key="rejects/big.csv")
    assert head["ContentLength"] <= 12 * MiB and head["ContentType"] == "text/csv"
    assert len(sizes) == 3 and all(size < 5 * MiB + 4096 for size in sizes)
    body = s3.get_object(Bucket=bucket, Key="rejects/big.csv")["Body"].read().decode()
    assert tuple(next(csv.reader(io.StringIO(body)))) == HEADER


def test_a_failure_half_way_leaves_no_multipart_upload_behind(services, outputs):
    bucket = services.settings.uploads_bucket
    s3 = services.clients.s3
    with (
        pytest.raises(RuntimeError),
        RejectsReport(
            s3, bucket, "rejects/x.csv", max_rows=10**9, max_bytes=12 * MiB, part_bytes=5 * MiB
        ) as report,
    ):
        while report._upload_id is None:
            report.add(2, [{"field": "", "problem": "bad"}], ["L" * 900])
        raise RuntimeError("the ingest died")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
