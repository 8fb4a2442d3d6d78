"""Streaming CSV: encodings, line endings, headers, blank lines, bad bytes."""

from __future__ import annotations

import io

import pytest

from chalicelib.readings.csvstream import MAX_LINE_CHARS, CsvRecords, HeaderError
from chalicelib.readings.model import CSV_COLUMNS

HEADER = b"timestamp,location,source,local_dest,local_avg,remote_dest,remote_avg"
ROW = b"1,a,b,c,1,d,2"


def read(data: bytes):
    records = CsvRecords(io.BytesIO(data), CSV_COLUMNS)
    return records.header, [(r.line, r.fields, r.error) for r in records]


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_bom_and_line_endings_read_the_same(bom, eol):
    header, rows = read(bom + HEADER + eol + ROW + eol + ROW)
    assert header.columns == CSV_COLUMNS
    assert rows == [(2, ROW.decode().split(","), None), (3, ROW.decode().split(","), None)]


def test_columns_are_found_by_name_in_any_order_and_extras_reported():
    header, rows = read(
        b"Remote_Avg, extra ,timestamp,location,source,local_dest,local_avg,remote_dest\n"
    )
    assert header.index["remote_avg"] == 0 and header.index["timestamp"] == 2
    assert header.extra == ("extra",)
    assert rows == []


def test_blank_lines_are_skipped_and_line_numbers_count_physical_lines():
    _, rows = read(b"\n" + HEADER + b'\n\n  \n,,,\n1,"a\nb",c\n' + ROW)
    assert [line for line, _, _ in rows] == [6, 8]


@pytest.mark.parametrize("data", [b"", b"\n\n \n"])
def test_an_empty_file_has_no_header_and_no_rows(data):
    assert read(data) == (None, [])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8 text"),
        (b"a,b,c\n1,2,3\n", "lacks column(s) timestamp"),
        (HEADER + b",location\n", "repeats column(s): location"),
        (b"x" * (MAX_LINE_CHARS + 10), "not UTF-8 text"),
    ],
)
def test_a_file_without_a_usable_header_fails_with_a_reason(data, reason):
    with pytest.raises(HeaderError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read(data)


def test_bad_bytes_and_nul_stay_in_their_row_and_the_rest_still_reads():
    _, rows = read(HEADER + b"\n1,\xff,b,c,1,d,2\n1,a\x00,b,c,1,d,2\n" + ROW)
    assert [line for line, _, _ in rows] == [2, 3, 4]
    assert "\udcff" in rows[0][1][1]
    assert rows[2][1] == ROW.decode().split(",")


def test_an_overlong_line_is_reported_without_reading_it_into_memory():
    _, rows = read(HEADER + b"\n" + b"y" * (MAX_LINE_CHARS * 3) + b"\n" + ROW)
    assert rows[0][0] == 2 and rows[0][2].startswith("is longer than")
    assert rows[1] == (3, ROW.decode().split(","), None)
