"""The rejects report: one CSV line per rejected row, bounded, streamed to S3.

Each rejected row is written once, with every problem it has, its line number
and its original text. The report is bounded by the stage's
``rejects_max_rows`` and ``rejects_max_bytes``: past either, rows are still
counted (the job's ``rows_rejected`` stays exact) but no longer listed, the
report ends with a line saying so, and the job carries ``rejects_truncated``.
So a file of bad rows cannot turn into a report many times its size.

Nothing is staged on disk. Lines collect in a buffer of at most one part
(:data:`PART_BYTES`); a report that outgrows it goes to S3 as a multipart
upload, one part at a time; a smaller one (the default bound is smaller) is
one PutObject.

**Spreadsheet formulas.** An operator opens the report in a spreadsheet, and a
spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula. Every cell that starts with one of those, or
with ``'``, gets a ``'`` put in front (OWASP's advice for CSV exports): the
spreadsheet shows the text and runs nothing. Nothing is lost: a cell that
starts with ``'`` had exactly one added, so removing the first character
gives the original text back (:func:`recover`).
"""

from __future__ import annotations

import csv
import io
from typing import Any

# S3 refuses parts under 5 MiB except the last; a part is also the most the
# report ever holds in memory.
PART_BYTES = 8 * 1024 * 1024
MAX_ROW_CHARS = 1000
HEADER = ("line", "problems", "row")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
# Room kept for the line that says the report was cut short.
_TRAILER_BYTES = 256


def neutralise(cell: str) -> str:
    """``cell`` as text a spreadsheet shows but never evaluates (see the module docstring)."""
    if cell.startswith((*FORMULA_STARTS, ESCAPE)):
        return ESCAPE + cell
    return cell


def recover(cell: str) -> str:
    """The original text of a cell that :func:`neutralise` wrote."""
    return cell[1:] if cell.startswith(ESCAPE) else cell


def describe(problems: list[dict[str, str]]) -> str:
    """``field: problem; field: problem``, the way the report's ``problems`` column reads."""
    return "; ".join(
        f"{p['field']}: {p['problem']}" if p["field"] else p["problem"] for p in problems
    )


def _csv_line(values: tuple[Any, ...]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(
        neutralise(v) if isinstance(v, str) else v for v in values
    )
    # Undecodable input bytes are kept visible as escapes, not dropped.
    return text.getvalue().encode("utf-8", errors="backslashreplace")


class RejectsReport:
    """The report of one ingest run, written to ``s3://{bucket}/{key}`` by :meth:`finish`.

    ``rows`` counts every rejected row, listed or not; ``listed`` those in the
    report. Use it as a context manager: leaving on an error aborts a
    multipart upload that was started, so no part is left behind.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        max_rows: int,
        max_bytes: int,
        part_bytes: int = PART_BYTES,
    ) -> None:
        self.rows = 0
        self.listed = 0
        self.truncated = False
        self.size = 0
        self._s3, self._bucket, self._key = s3, bucket, key
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._part_bytes = part_bytes
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._append(_csv_line(HEADER))

    def add(self, line: int, problems: list[dict[str, str]], fields: list[str]) -> None:
        """Count one rejected row, and list it while the report has room."""
        self.rows += 1
        if self.truncated:
            return
        raw = io.StringIO()
        csv.writer(raw, lineterminator="").writerow(fields)
        encoded = _csv_line((line, describe(problems), raw.getvalue()[:MAX_ROW_CHARS]))
        room = self._max_bytes - _TRAILER_BYTES - self.size
        if self.listed >= self._max_rows or len(encoded) > room:
            self.truncated = True
            return
        self.listed += 1
        self._append(encoded)

    def _append(self, encoded: bytes) -> None:
        self._buffer += encoded
        self.size += len(encoded)
        if len(self._buffer) >= self._part_bytes:
            self._send_part()

    def _send_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, ContentType="text/csv"
            )["UploadId"]
        number = len(self._parts) + 1
        response = self._s3.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=bytes(self._buffer),
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self._buffer.clear()

    def finish(self) -> str | None:
        """Put the report to S3; returns its key, or None when no row was rejected."""
        if not self.rows:
            return None
        if self.truncated:
            note = (
                f"report truncated: the first {self.listed} of {self.rows} rejected rows "
                "are listed; the job's rows_rejected counts them all"
            )
            self._buffer += _csv_line(("", note, ""))
        if self._upload_id is None:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=bytes(self._buffer),
                ContentType="text/csv",
            )
        else:
            if self._buffer:
                self._send_part()
            self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
            self._upload_id = None
        self._buffer.clear()
        return self._key

    def abort(self) -> None:
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)

    def __enter__(self) -> RejectsReport:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self.abort()
