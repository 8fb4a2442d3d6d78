"""Validation errors as ``{"field", "problem"}`` pairs a person can read.

Every model (readings, products, orders) is validated with pydantic; this
turns pydantic's error list into the ``details`` of a 422, and into the
reasons of a rejected CSV row.
"""

from __future__ import annotations

from pydantic import ValidationError


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
