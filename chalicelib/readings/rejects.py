"""The rejects report: one CSV line per problem, spooled to disk, then put to S3.

Memory stays bounded however many rows are rejected: the report lives in a
spooled temporary file that moves to /tmp past :data:`SPOOL_BYTES`.
"""

from __future__ import annotations

import csv
import io
import tempfile
from typing import Any

SPOOL_BYTES = 1024 * 1024
MAX_ROW_CHARS = 1000
HEADER = ("line", "column", "reason", "row")


class RejectsReport:
    def __init__(self) -> None:
        self.rows = 0
        # Closed by close() or the context manager; the report outlives this call.
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")  # noqa: SIM115
        self._write(HEADER)

    def _write(self, values) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(values)
        # Undecodable input bytes are kept visible as escapes, not dropped.
        self._file.write(text.getvalue().encode("utf-8", errors="backslashreplace"))

    def add(self, line: int, problems: list[dict[str, str]], fields: list[str]) -> None:
        self.rows += 1
        raw = io.StringIO()
        csv.writer(raw, lineterminator="").writerow(fields)
        original = raw.getvalue()[:MAX_ROW_CHARS]
        for problem in problems:
            self._write((line, problem["field"], problem["problem"], original))

    def upload(self, s3: Any, bucket: str, key: str) -> None:
        self._file.seek(0)
        s3.upload_fileobj(self._file, bucket, key, ExtraArgs={"ContentType": "text/csv"})

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RejectsReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
