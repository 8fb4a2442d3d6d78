"""Opaque cursors that only resume the query that issued them.

A cursor is base64url JSON holding a position and a fingerprint of the query
(path and filters, not the page size). Decoding checks the fingerprint, so a
cursor from one location or date cannot be replayed against another; callers
then check that the position itself lies inside their query before handing
it to DynamoDB, so a hand-made cursor is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from chalicelib import jsontext
from chalicelib.errors import BadRequest

_VERSION = 1


def _fingerprint(query: dict[str, Any]) -> str:
    canonical = json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(query: dict[str, Any], position: Any) -> str:
    payload = {"v": _VERSION, "q": _fingerprint(query), "p": position}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, query: dict[str, Any]) -> Any:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = jsontext.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest.field("cursor", "is not a cursor this API issued") from None
    if not isinstance(payload, dict) or payload.get("v") != _VERSION or "p" not in payload:
        raise BadRequest.field("cursor", "is not a cursor this API issued")
    if payload.get("q") != _fingerprint(query):
        raise BadRequest.field("cursor", "belongs to a different query")
    return payload["p"]


def invalid_cursor() -> BadRequest:
    return BadRequest.field("cursor", "does not point inside this query")
