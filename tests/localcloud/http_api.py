"""Talking to a running local cloud's REST API over real HTTP, from tests."""

from __future__ import annotations

import http.client
import json
from typing import Any


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request; returns the status and the decoded JSON body (None when empty)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        raw = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})} if raw else headers or {}
        connection.request(method, path, body=raw, headers=sent)
        response = connection.getresponse()
        payload = response.read()
        return response.status, (json.loads(payload) if payload else None)
    finally:
        connection.close()
