"""eventflow's error vocabulary.

Domain code raises these; ``app.py`` turns the HTTP ones into responses in one
place. Each error carries its status and a machine-readable code, and the
``details`` name the field and the problem, so a client can act on them.
"""

from __future__ import annotations

from typing import Any


class EventflowError(Exception):
    status = 500
    code = "internal_error"
    # Machine-readable facts beside the details, e.g. the current status of an order.
    extra: dict[str, Any] = {}

    def __init__(
        self, message: str, details: list[dict[str, str]] | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.message = message
        self.details = details or []
        # A more specific code than the class's, e.g. ``invalid_transition`` for a 409.
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "message": self.message,
            "details": self.details,
            **self.extra,
        }


class BadRequest(EventflowError):
    """The request is malformed: bad JSON, unknown parameters, a bad cursor."""

    status = 400
    code = "bad_request"

    @classmethod
    def field(cls, field: str, problem: str) -> BadRequest:
        return cls(f"{field}: {problem}", [{"field": field, "problem": problem}])


class NotFound(EventflowError):
    status = 404
    code = "not_found"


class Conflict(EventflowError):
    status = 409
    code = "conflict"


class PreconditionFailed(EventflowError):
    """A conditional request (``If-Match``) named a version that is no longer current."""

    status = 412
    code = "precondition_failed"


class UnsupportedMediaType(EventflowError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailed(EventflowError):
    """The request is well-formed but its content breaks a rule."""

    status = 422
    code = "validation_failed"


class ServiceUnavailable(EventflowError):
    """An AWS service the request needs cannot be reached or used right now.

    ``details`` name the dependency (``dynamodb``, ``s3``, ``sqs``) as the
    field, so a client or an operator sees what is down, not a bare 500.
    """

    status = 503
    code = "service_unavailable"

    @classmethod
    def dependency(cls, service: str, problem: str) -> ServiceUnavailable:
        return cls(f"{service} is unavailable: {problem}", [{"field": service, "problem": problem}])


# -- pipeline errors: not HTTP, they make a record fail and be retried --------


class ChunkFormatError(EventflowError):
    """A queue message is not a chunk this version understands (a poison message)."""


class UnprocessedItemsError(EventflowError):
    """DynamoDB kept returning UnprocessedItems after every bounded retry."""


class UnprocessedKeysError(EventflowError):
    """DynamoDB kept returning UnprocessedKeys after every bounded retry."""


class SendFailedError(EventflowError):
    """SQS refused some batch entries after every bounded retry."""


class JobNotFound(EventflowError):
    """A chunk names an ingest job that does not exist."""
