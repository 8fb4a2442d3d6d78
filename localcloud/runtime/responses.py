"""Reads a handler's partial batch response the way Lambda does.

Applies only where the mapping has ``FunctionResponseTypes:
[ReportBatchItemFailures]``; otherwise Lambda ignores the response body.
Lambda treats the batch as a complete success for a null/empty response or a
null/empty ``batchItemFailures`` list, and as a complete failure when an
``itemIdentifier`` is null or empty, an item uses another key, or an identifier
names no record of the batch.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


class InvalidBatchResponse(ValueError):
    """The response is malformed: Lambda fails the whole batch."""


def failed_identifiers(response: Any, identifiers: Collection[str]) -> list[str]:
    """The identifiers the response reports as failed, in the order reported.

    Raises :class:`InvalidBatchResponse` when Lambda would fail the whole batch.
    """
    if response is None or response == "" or response == {}:
        return []
    if not isinstance(response, dict):
        raise InvalidBatchResponse(f"response is a {type(response).__name__}, not an object")
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return []
    if not isinstance(failures, list):
        raise InvalidBatchResponse("batchItemFailures is not a list")
    known = set(identifiers)
    failed: list[str] = []
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            raise InvalidBatchResponse(f"item without itemIdentifier: {item!r}")
        identifier = item["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier:
            raise InvalidBatchResponse(f"empty or null itemIdentifier: {identifier!r}")
        if identifier not in known:
            raise InvalidBatchResponse(f"itemIdentifier {identifier!r} is not in the batch")
        failed.append(identifier)
    return failed
