"""What every domain's validation shares.

Every model (readings, products, orders) is validated with pydantic;
:func:`problems` turns pydantic's error list into the ``details`` of a 422,
and into the reasons of a rejected CSV row. :func:`forbidden_character` is
the one rule for free text (product names, reading locations, sources and
destinations), so both domains refuse exactly the same characters.
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import ValidationError

# Controls (Cc), invisible format characters (Cf: zero-width characters,
# bidirectional overrides that make text read differently from what it is),
# line and paragraph separators (Zl, Zp), and surrogates (Cs: bytes that were
# not UTF-8). Also the two noncharacters SQS cannot carry in a message body.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NONCHARACTERS = frozenset("\ufffe\uffff")
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TEXT_PROBLEM = (
    "contains control characters, invisible format characters, line separators "
    "or bytes that are not UTF-8"
)


def forbidden_character(text: str) -> str | None:
    """The first character of ``text`` that free text may not hold, or None."""
    if text.isascii():  # the common case, checked in C
        found = _ASCII_CONTROL.search(text)
        return found.group() if found else None
    for char in text:
        if char in _NONCHARACTERS or unicodedata.category(char) in FORBIDDEN_CATEGORIES:
            return char
    return None


def text_problem(text: str) -> str | None:
    """``TEXT_PROBLEM`` naming the first forbidden character of ``text``, or None."""
    char = forbidden_character(text)
    return None if char is None else f"{TEXT_PROBLEM} (U+{ord(char):04X})"


def problems(error: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as ``{"field", "problem"}`` pairs that a person can read."""
    result = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "body"
        if item["type"] == "missing":
            problem = "is required"
        elif item["type"] == "extra_forbidden":
            problem = "is not a known field"
        else:
            problem = item["msg"]
        result.append({"field": field, "problem": problem})
    return result
