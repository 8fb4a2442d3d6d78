"""The audit trail: one structured log line per API request.

It says who called (the caller's IAM principal, from API Gateway's request
context), which route (its template, ``/orders/{order_id}``, never the path
with the ids in it), when, and the outcome (status, latency). It never holds a
body, a header or a query string, so no email address or other personal data
reaches it. API Gateway's access log (``infra.functions.Api``) writes the
same facts from outside the function, including requests the function never
sees (throttled, or refused by the IAM authorizer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.observability import logger

MESSAGE = "api request"
# The principal of a request nobody signed: the open routes (health, readings
# reads), and every route of the local stage.
ANONYMOUS = "anonymous"


def principal(context: Mapping[str, Any]) -> str:
    """The caller's IAM principal: its ARN when the request was SigV4-signed."""
    identity = context.get("identity") or {}
    return identity.get("userArn") or identity.get("caller") or ANONYMOUS


def request_id(context: Mapping[str, Any], lambda_context: Any) -> str | None:
    """API Gateway's request id, else the invocation's (Chalice's local gateway has none)."""
    return context.get("requestId") or getattr(lambda_context, "aws_request_id", None)


def record(
    *,
    context: Mapping[str, Any],
    method: str,
    status: int,
    latency_ms: float,
    lambda_context: Any = None,
) -> dict[str, Any]:
    """The audit line's fields (the function and stage come from the logger's keys)."""
    return {
        "audit": "api_request",
        "request_id": request_id(context, lambda_context),
        "method": method,
        "route": context.get("resourcePath"),
        "status": status,
        "latency_ms": round(latency_ms, 1),
        "principal": principal(context),
    }


def around(
    event: Any,
    get_response: Callable[[Any], Any],
    clock: Callable[[], float] = time.perf_counter,
) -> Any:
    """Run the request and log its audit line, also when the view raised (a 500)."""
    started = clock()
    status = 500
    try:
        response = get_response(event)
        status = response.status_code
        return response
    finally:
        fields = record(
            context=event.context,
            method=event.method,
            status=status,
            latency_ms=(clock() - started) * 1000,
            lambda_context=getattr(event, "lambda_context", None),
        )
        logger.info(MESSAGE, extra=fields)
