"""What a job shows of a failed ingest attempt: a code and a sentence of ours.

The exception itself (an AWS message carries account ids, role ARNs and
bucket policies) goes to the function's log, next to the ingest id; the job,
which the API returns, keeps only :func:`public_failure`'s code and sentence,
built from fixed vocabulary: our own error classes, and AWS's operation names
and error codes, which are identifiers rather than text.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.aws import unavailable
from chalicelib.errors import SendFailedError

# An AWS operation name or error code is an identifier; anything else is not shown.
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9.]{0,63}")
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "KMS.AccessDeniedException"})
RETRIED = "the upload is retried"


def _identifier(value: Any, fallback: str) -> str:
    return value if isinstance(value, str) and _IDENTIFIER.fullmatch(value) else fallback


def public_failure(error: BaseException) -> dict[str, str]:
    """``{"code", "message"}`` for a failed attempt; never the exception's own text."""
    if isinstance(error, SendFailedError):
        return {
            "code": "queue_send_failed",
            "message": f"the ingest queue refused some chunks after every retry; {RETRIED}",
        }
    known = unavailable(error)
    if known is not None:
        service = _identifier(known.details[0]["field"], "an AWS service")
        return {
            "code": "dependency_unavailable",
            "message": f"{service} could not be used (throttled, failing or unreachable); "
            + RETRIED,
        }
    response = getattr(error, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        code = _identifier(response["Error"].get("Code"), "unknown")
        operation = _identifier(getattr(error, "operation_name", None), "an AWS call")
        if code in _DENIED:
            return {
                "code": "access_denied",
                "message": f"the ingest function may not call {operation}: check its IAM "
                f"policy; {RETRIED}",
            }
        return {"code": "aws_error", "message": f"{operation} failed with {code}; {RETRIED}"}
    return {
        "code": "internal_error",
        "message": f"an unexpected error; the function's log has it under this ingest_id; "
        f"{RETRIED}",
    }


def as_public(stored: Any) -> dict[str, str] | None:
    """A job's stored ``last_error`` as the API shows it.

    Jobs written before errors had codes hold the raw text: shown as a code only.
    """
    if stored is None:
        return None
    if isinstance(stored, dict) and {"code", "message"} <= set(stored):
        return {"code": str(stored["code"]), "message": str(stored["message"])}
    return {"code": "unknown", "message": "an earlier attempt failed; see the function's log"}
