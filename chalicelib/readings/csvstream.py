"""Reads a CSV upload as a stream of numbered records, in constant memory.

The body is decoded incrementally (UTF-8, with or without a BOM; LF or CRLF),
so a file of any size needs only a line at a time. Bytes that are not UTF-8
and NUL characters become lone surrogates instead of errors: the row that
holds them is rejected by validation, and the rest of the file still loads.
A physical line longer than :data:`MAX_LINE_CHARS` is cut off and its record
reported as over-long, so a binary file with no line breaks cannot exhaust
memory either.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

MAX_LINE_CHARS = 64 * 1024
_BAD_BYTE = "\udc00"


class HeaderError(ValueError):
    """The file has no usable header, so no row in it can be read."""


@dataclass(frozen=True)
class Header:
    columns: tuple[str, ...]
    index: dict[str, int]
    extra: tuple[str, ...]


@dataclass(frozen=True)
class Record:
    line: int
    fields: list[str]
    # Set when the record could not be read as CSV at all; fields are then empty.
    error: str | None = None


class _Lines:
    """Physical lines with a length bound; csv.reader pulls from this."""

    def __init__(self, text: IO[str]):
        self._text = text
        self.line = 0
        self.overlong: set[int] = set()

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(MAX_LINE_CHARS)
        if not line:
            raise StopIteration
        self.line += 1
        if len(line) == MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            while True:
                rest = self._text.readline(MAX_LINE_CHARS)
                if not rest or rest.endswith(("\n", "\r")):
                    break
            self.overlong.add(self.line)
            return _BAD_BYTE + "\n"
        if "\x00" in line:
            line = line.replace("\x00", _BAD_BYTE)
        return line


def _is_blank(fields: list[str]) -> bool:
    return all(not f.strip() for f in fields)


class CsvRecords:
    """Header first, then every non-blank record with the line it starts on."""

    def __init__(self, body: IO[bytes], expected: tuple[str, ...]):
        text = io.TextIOWrapper(body, encoding="utf-8-sig", errors="surrogateescape", newline="")
        self._lines = _Lines(text)
        self._reader = csv.reader(self._lines)
        self._expected = expected
        self.header: Header | None = self._read_header()

    def _read_header(self) -> Header | None:
        for record in self._records():
            columns = tuple(c.strip().lower() for c in record.fields)
            if record.error or any(_BAD_BYTE <= ch <= "\udfff" for c in columns for ch in c):
                raise HeaderError("the file is not UTF-8 text with a CSV header")
            duplicates = sorted({c for c in columns if columns.count(c) > 1})
            if duplicates:
                raise HeaderError(f"the header repeats column(s): {', '.join(duplicates)}")
            missing = [c for c in self._expected if c not in columns]
            if missing:
                raise HeaderError(
                    f"the header lacks column(s) {', '.join(missing)}; "
                    f"expected {','.join(self._expected)}"
                )
            index = {c: columns.index(c) for c in self._expected}
            extra = tuple(c for c in columns if c not in self._expected)
            return Header(columns=columns, index=index, extra=extra)
        return None

    def _records(self) -> Iterator[Record]:
        while True:
            # A record starts on the line after the last one the reader consumed.
            line = self._lines.line + 1
            try:
                fields = next(self._reader)
            except StopIteration:
                return
            except csv.Error as error:
                # The reader skips to the next line after an error; report the record.
                yield Record(line=line, fields=[], error=f"is not valid CSV: {error}")
                continue
            if line in self._lines.overlong:
                yield Record(
                    line=line, fields=[], error=f"is longer than {MAX_LINE_CHARS} characters"
                )
                continue
            if not fields or _is_blank(fields):
                continue
            yield Record(line=line, fields=fields)

    def __iter__(self) -> Iterator[Record]:
        if self.header is None:
            return iter(())
        return self._records()
