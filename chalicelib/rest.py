"""What every REST operation shares: JSON in and out, query parameters, pages.

Operations take the services, their path parameters, then the query
parameters, raw body and headers, and return ``(status, body)``. Errors are
raised as :mod:`chalicelib.errors` and shaped into JSON by ``app.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, MutableMapping
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from chalicelib import jsontext
from chalicelib.aws import unavailable
from chalicelib.errors import BadRequest, EventflowError, ValidationFailed
from chalicelib.pagination import encode_cursor

JSON_HEADERS = {"Content-Type": "application/json"}
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
_FRAMEWORK_CODES = {405: "method_not_allowed", 415: "unsupported_media_type"}
# Methods whose requests carry no body here: their Content-Type means nothing.
BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


def known_error(error: BaseException) -> EventflowError | None:
    """The error as one of ours, or None for a bug (which stays a 500).

    Ours as raised, or an AWS dependency that cannot be reached or used: a
    503 naming the service, never a 500 (:func:`chalicelib.aws.unavailable`).
    """
    if isinstance(error, EventflowError):
        return error
    return unavailable(error)


def from_local_gateway(request_context: Mapping[str, Any]) -> bool:
    """Whether a request came through Chalice's local server rather than API Gateway.

    API Gateway's request context always carries a ``requestId``; the one
    Chalice's local gateway builds (``chalice local``, ``chalice.test``) has none.
    """
    return "requestId" not in request_context


def decode_path_parameters(params: MutableMapping[str, str]) -> None:
    """Percent-decode path parameters in place, as API Gateway does.

    ``%2F`` becomes ``/`` inside the one segment it was sent in; ``+`` stays a
    plus sign (only query strings use it for a space).
    """
    for name, value in params.items():
        try:
            params[name] = unquote(value, errors="strict")
        except UnicodeDecodeError:
            raise BadRequest.field(name, "is not percent-encoded UTF-8") from None


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(body: Any) -> str:
    return json.dumps(body, default=_number)


def framework_error(status: int, message: str) -> dict[str, Any]:
    return {
        "error": _FRAMEWORK_CODES.get(status, "internal_error" if status >= 500 else "bad_request"),
        "message": message or "request failed",
        "details": [],
    }


def parse_body(raw: bytes | None) -> dict[str, Any]:
    """A JSON object; numbers become Decimal so that no value passes through float.

    Nesting is bounded (:mod:`chalicelib.jsontext`): a deep body is a 400, not
    a 500; and a problem is told in our words, never the parser's.
    """
    if not raw:
        raise BadRequest.field("body", "is required")
    try:
        value = jsontext.loads(raw)
    except jsontext.JsonTextError as error:
        raise BadRequest.field("body", error.problem) from None
    if not isinstance(value, dict):
        raise ValidationFailed(
            "body must be a JSON object", [{"field": "body", "problem": "must be a JSON object"}]
        )
    return value


def query(params: Mapping[str, str] | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, refusing any that the operation does not know."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        allowed_text = ", ".join(allowed) if allowed else "none"
        raise BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)} (allowed: {allowed_text})",
            [{"field": name, "problem": "is not a known query parameter"} for name in unknown],
        )
    return params


def limit(params: dict[str, str]) -> int:
    text = params.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest.field("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def field(name: str, parse, value: Any) -> Any:
    """``parse(value)``, with its ValueError or TypeError as a 400 naming ``name``."""
    try:
        return parse(value)
    except (ValueError, TypeError) as error:
        # Our parsers raise pydantic's custom errors, whose template is our
        # sentence; any other error's text is Python's, not shown.
        problem = getattr(error, "message_template", None) or "is not valid"
        raise BadRequest.field(name, problem) from None


# Exactly YYYY-MM-DD: date.fromisoformat alone also takes 20260201 and 2026-W05-1.
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DAY_PROBLEM = "must be a calendar date as YYYY-MM-DD (UTC), e.g. 2026-02-28"


def day(name: str, text: str) -> date:
    """A UTC calendar day; raises :class:`BadRequest` naming ``name`` for anything else."""
    if not _DAY.fullmatch(text):
        raise BadRequest.field(name, DAY_PROBLEM)
    try:
        return date.fromisoformat(text)
    except ValueError:  # 2026-02-30, month 13 ...
        raise BadRequest.field(name, f"{DAY_PROBLEM}; {text} is not a day") from None


def page(items: list[dict[str, Any]], query: dict[str, Any], position: Any) -> dict[str, Any]:
    cursor = encode_cursor(query, position) if position is not None else None
    return {"items": items, "next_cursor": cursor}


def health(services, params, raw_body, headers) -> tuple[int, dict[str, Any]]:
    query(params, ())
    return 200, {"status": "ok"}
