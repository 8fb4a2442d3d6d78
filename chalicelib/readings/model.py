"""The reading: what one CSV row or one API body means, and how it is validated.

One model serves both the CSV path and the REST API, so a row and a request
body are held to exactly the same rules. Numbers never pass through ``float``:
CSV fields are strings, and JSON bodies are parsed with ``Decimal``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from chalicelib.clock import iso_utc
from chalicelib.readings import keys
from chalicelib.validation import text_problem

CSV_COLUMNS = (
    "timestamp",
    "location",
    "source",
    "local_dest",
    "local_avg",
    "remote_dest",
    "remote_avg",
)
MAX_TEXT = 128
# Readings from 1970 up to the end of year 9999: sort keys are fixed-width years.
_MIN_EPOCH = Decimal(0)
_MAX_EPOCH = Decimal(253402300799)
_MICRO = Decimal("0.000001")
# DynamoDB stores numbers with 38 significant digits, magnitude 1e-130 to 1e125.
_MAX_DIGITS = 38
_MAX_LATENCY = Decimal("1e125")


def _problem(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def parse_timestamp(value: Any) -> datetime:
    """Epoch seconds (with any fraction) or ISO 8601; naive ISO times are UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        parsed = _from_epoch(Decimal(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise _problem("timestamp", "is empty")
        try:
            parsed = _from_epoch(Decimal(text))
        except InvalidOperation:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise _problem(
                    "timestamp", "must be epoch seconds or an ISO 8601 date-time"
                ) from None
    else:
        raise _problem("timestamp", "must be epoch seconds or an ISO 8601 date-time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset that leaves the calendar
        raise _problem("timestamp", "is outside the years 1970 to 9999 in UTC") from None
    if parsed.year < 1970:
        raise _problem("timestamp", "must not be before 1970-01-01")
    return parsed


def _from_epoch(epoch: Decimal) -> datetime:
    if not epoch.is_finite():
        raise _problem("timestamp", "must be a finite number of epoch seconds")
    if not _MIN_EPOCH <= epoch <= _MAX_EPOCH:
        raise _problem("timestamp", "epoch seconds must be between 0 and 253402300799")
    micros = int(epoch.quantize(_MICRO) * 1_000_000)
    seconds, micro = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micro)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _problem("text", "must be a string")
    # The rule shared with orders; checked before stripping, so a forbidden
    # character is refused wherever it is.
    problem = text_problem(value)
    if problem:
        raise _problem("text", problem)
    text = value.strip()
    if not text:
        raise _problem("text", "is empty")
    if len(text) > MAX_TEXT:
        raise _problem("text", f"is longer than {MAX_TEXT} characters")
    return text


def _name(text: str) -> str:
    """A location or source: printable text, short enough for every key it is part of.

    "Printable" is Python's ``str.isprintable``: letters, marks, digits,
    punctuation, symbols and the ASCII space; no control, format, private-use
    or unassigned characters, and no other kind of space. A name may hold
    ``~``: the reading id still parses, because the timestamp before the
    first ``~`` has a fixed width (see :mod:`chalicelib.readings.keys`).
    """
    if not text.isprintable():
        raise _problem(
            "name",
            "must be printable text: no control, format or unassigned characters, "
            "and no spaces other than ' '",
        )
    if len(text.encode()) > keys.MAX_NAME_BYTES:
        raise _problem("name", f"is longer than {keys.MAX_NAME_BYTES} bytes in UTF-8")
    return text


def parse_latency(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise _problem("latency", "must be a number of milliseconds")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise _problem("latency", "must be a number of milliseconds") from None
    if not number.is_finite():
        raise _problem("latency", "must be a finite number")
    if number < 0:
        raise _problem("latency", "must not be negative")
    if number >= _MAX_LATENCY or len(number.as_tuple().digits) > _MAX_DIGITS:
        raise _problem("latency", "has more digits or magnitude than can be stored")
    return number


def parse_name(value: Any) -> str:
    """A location or source as the API takes it in a path or query parameter (decoded)."""
    return _name(_text(value))


Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]
Text = Annotated[str, BeforeValidator(_text)]
Name = Annotated[str, BeforeValidator(_text), AfterValidator(_name)]
Latency = Annotated[Decimal, BeforeValidator(parse_latency)]


class Reading(BaseModel):
    """One network-latency reading, identified by location, source and time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timestamp: Timestamp
    location: Name
    source: Name
    local_dest: Text
    local_avg: Latency
    remote_dest: Text
    remote_avg: Latency

    @property
    def reading_id(self) -> str:
        return keys.reading_id(self.timestamp, self.source)

    def canonical_row(self) -> list[str]:
        """The row in CSV column order, every value a string, as chunks carry it."""
        return [
            self.timestamp.isoformat(),
            self.location,
            self.source,
            self.local_dest,
            str(self.local_avg),
            self.remote_dest,
            str(self.remote_avg),
        ]

    def to_api(self) -> dict[str, Any]:
        return {
            "reading_id": self.reading_id,
            "location": self.location,
            "source": self.source,
            "timestamp": iso_utc(self.timestamp),
            "local_dest": self.local_dest,
            "local_avg": self.local_avg,
            "remote_dest": self.remote_dest,
            "remote_avg": self.remote_avg,
        }
