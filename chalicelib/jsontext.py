"""JSON text from outside (request bodies, cursors, intake messages), parsed with bounds.

Python's parser recurses once per nesting level, so a body of a few thousand
``[`` raises ``RecursionError``, which is no ``ValueError`` and would be a 500
(and, on a queue, a message retried for nothing). :func:`loads` measures the
nesting first, without recursing and without parsing, and refuses anything
deeper than :data:`MAX_DEPTH`; no body eventflow accepts nests past 4 levels.

Errors are :class:`JsonTextError`, a ``ValueError`` whose ``problem`` is a
sentence of ours (the position of a syntax error, not the parser's wording).
"""

from __future__ import annotations

import json
import operator
import re
from decimal import Decimal
from itertools import accumulate, repeat
from typing import Any

MAX_DEPTH = 32
# A JSON string, escapes included: brackets inside one are text, not nesting.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# Opening brackets become 2 and closing ones 0, so that "minus one" is +1 or -1.
_STEPS = str.maketrans({"[": "\x02", "{": "\x02", "]": "\x00", "}": "\x00"})


class JsonTextError(ValueError):
    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem


def depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (0 for a scalar), in linear time.

    For text that is not valid JSON the answer may be too high, never too low
    for the part the parser would read before failing: an unterminated string
    hides nothing, as it is not removed.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    steps = brackets.translate(_STEPS).encode("ascii")
    return max(0, *accumulate(map(operator.sub, steps, repeat(1))))


def _reject_constant(name: str) -> Any:
    raise JsonTextError(f"holds {name}, which is not a number JSON allows")


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of ``raw`` (UTF-8, a BOM allowed); numbers with a fraction become Decimal.

    Raises :class:`JsonTextError` for text that is not UTF-8, nests deeper
    than ``max_depth``, or is not JSON.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise JsonTextError("is not UTF-8 text") from None
    else:
        text = raw
    if depth(text) > max_depth:
        raise JsonTextError(f"nests arrays or objects deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise JsonTextError(
            f"is not valid JSON (at line {error.lineno}, column {error.colno})"
        ) from None
    except JsonTextError:
        raise
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise JsonTextError("holds a number with too many digits") from None
    except RecursionError:  # depth() counts as the parser does; kept as a last guard
        raise JsonTextError(f"nests arrays or objects deeper than {max_depth} levels") from None
