"""Lambda event filtering (``FilterCriteria``) for SQS and stream records.

Lambda drops records that match none of the mapping's filter patterns before
it batches them; for SQS it also deletes the dropped messages. An SQS ``body``
is matched as JSON when it parses as a JSON object, else as a plain string.

Supported syntax: exact values (including null), ``prefix``, ``suffix``,
``equals-ignore-case``, ``anything-but`` (values or a prefix), ``numeric``
ranges, ``exists`` and ``$or``. Patterns combine with OR; keys within one
pattern with AND; an array in the event matches if any element does.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable
from typing import Any

_MISSING = object()
_NUMERIC_OPS = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class RecordFilter:
    def __init__(self, patterns: Iterable[str]):
        self.patterns = [json.loads(p) for p in patterns]

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, record: dict[str, Any]) -> bool:
        if not self.patterns:
            return True
        return any(_match_pattern(p, record) for p in self.patterns)

    def matches_sqs(self, record: dict[str, Any]) -> bool:
        if not self.patterns:
            return True
        subject = dict(record)
        try:
            body = json.loads(record.get("body", ""))
            if isinstance(body, dict):
                subject["body"] = body
        except ValueError:
            pass
        return self.matches(subject)


def _match_pattern(pattern: dict[str, Any], data: Any) -> bool:
    for key, rule in pattern.items():
        if key == "$or":
            if not any(_match_pattern(p, data) for p in rule):
                return False
            continue
        value = data.get(key, _MISSING) if isinstance(data, dict) else _MISSING
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not _match_pattern(rule, value):
                return False
        elif not any(_match_rule(r, value) for r in rule):
            return False
    return True


def _match_rule(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict) and "exists" in rule:
        return (value is not _MISSING) == bool(rule["exists"])
    if value is _MISSING:
        return False
    if isinstance(value, list):
        return any(_match_rule(rule, v) for v in value)
    if not isinstance(rule, dict):
        return value == rule
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(rule["prefix"])
    if "suffix" in rule:
        return isinstance(value, str) and value.endswith(rule["suffix"])
    if "equals-ignore-case" in rule:
        return isinstance(value, str) and value.lower() == str(rule["equals-ignore-case"]).lower()
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        if isinstance(excluded, dict):
            return not _match_rule(excluded, value)
        excluded = excluded if isinstance(excluded, list) else [excluded]
        return value not in excluded
    if "numeric" in rule:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        terms = rule["numeric"]
        return all(_NUMERIC_OPS[terms[i]](value, terms[i + 1]) for i in range(0, len(terms), 2))
    return False
