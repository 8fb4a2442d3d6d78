"""DynamoDB transactions in the local cloud: all or nothing, in place, as DynamoDB's are.

moto 5.2's ``TransactWriteItems`` deep-copies every table it touches, applies
the writes one by one, and when a condition fails puts the *copies* back
(``self.tables[name] = copy``). In DynamoDB a cancelled transaction writes
nothing and emits nothing. In moto it:

* leaves the live table object orphaned, with the stream shard that every
  open shard iterator reads: a poller that keeps its iterator (as Lambda's
  does) never sees another record, so the orders half stops at the first lost
  race (two reservations for the last unit, a cancellation racing its
  reservation, two POSTs with one Idempotency-Key);
* leaves the cancelled transaction's records on that old shard: an ``INSERT``
  for an order that was never stored;
* gives later records sequence numbers that the old shard already handed out.

Here a transaction runs in two phases over the same table objects:

1. **Check.** Every operation is validated and every condition evaluated
   against the current items; nothing is written. A failed condition cancels
   the transaction with moto's ``CancellationReasons`` (and the item, where
   ``ReturnValuesOnConditionCheckFailure`` is ``ALL_OLD``).
2. **Apply.** Each write goes through moto's own ``put_item``,
   ``delete_item`` or ``update_item``. If one of them still refuses (an update
   expression that is invalid for the item, an item over the size limit), the
   writes already made are undone in place: the items put back from a journal
   and the stream records made by this transaction removed from the end of the
   shard, so sequence numbers stay dense and no iterator is stranded.

The caller holds the DynamoDB lock of :mod:`localcloud.motolocks` around the
whole request, so no other request sees the state between the two phases.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from localcloud.motopatch import Patch, Target

OPERATIONS = ("ConditionCheck", "Put", "Delete", "Update")
MAX_ITEMS = 100


@dataclass
class _Target:
    """One operation of a transaction, resolved to its table and key."""

    op_type: str
    op: dict[str, Any]
    table: Any
    key: dict[str, Any]
    hash_value: Any
    range_value: Any


def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """``DynamoDBBackend.transact_write_items`` with DynamoDB's all-or-nothing outcome."""
    from moto.dynamodb.exceptions import (
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > MAX_ITEMS:
        raise TooManyTransactionsException()
    targets: list[_Target | None] = []
    reasons: list[tuple[Any, Any, Any]] = []
    seen: set[tuple[str, str]] = set()
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        try:
            target = _resolve(backend, entry)
            unique = (str(target.table.name), str(dict(sorted(target.key.items()))))
            if unique in seen:
                raise MultipleTransactionsException()
            seen.add(unique)
            targets.append(target)
            reasons.append(_check(target))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except Exception as error:  # moto reports any other refusal as a reason
            targets.append(None)
            reasons.append((type(error).__name__, str(error), None))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    _apply(backend, [t for t in targets if t is not None], len(transact_items))


def _resolve(backend: Any, entry: dict[str, Any]) -> _Target:
    op_type, op = next(iter(entry.items()))
    if op_type not in OPERATIONS:
        raise ValueError("Unsupported transaction operation")
    table = backend.get_table(op["TableName"])
    if op_type == "Put":
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
    else:
        key = op["Key"]
    hash_value, range_value = backend.get_keys_value(table, key)
    return _Target(op_type, op, table, key, hash_value, range_value)


def _check(target: _Target) -> tuple[Any, Any, Any]:
    """The operation's cancellation reason, or ``(None, None, None)`` when it may go ahead."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    op = target.op
    expression = op.get("ConditionExpression")
    if expression is None:
        return (None, None, None)
    current = target.table.get_item(target.hash_value, target.range_value)
    condition = get_filter_expression(
        expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    )
    if condition.expr(current):
        return (None, None, None)
    old = None
    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
        old = current.to_json()["Attributes"]
    return ("ConditionalCheckFailed", ConditionalCheckFailed().message, old)


def _apply(backend: Any, targets: list[_Target], count: int) -> None:
    from moto.dynamodb.exceptions import MockValidationException, TransactionCanceledException

    # What each written key held before, and where each stream shard ended.
    journal: list[tuple[_Target, Any]] = []
    shard_ends = {
        id(t.table): (t.table, len(t.table.stream_shard.items))
        for t in targets
        if t.table.stream_shard is not None
    }
    for index, target in enumerate(targets):
        if target.op_type == "ConditionCheck":
            continue
        before = target.table.get_item(target.hash_value, target.range_value)
        journal.append((target, copy.deepcopy(before)))
        try:
            _write(backend, target)
        except Exception as error:
            _undo(journal, shard_ends)
            if isinstance(error, MockValidationException):
                raise
            reasons: list[tuple[Any, Any, Any]] = [(None, None, None)] * count
            reasons[index] = (type(error).__name__, str(error), None)
            raise TransactionCanceledException(reasons) from error


def _write(backend: Any, target: _Target) -> None:
    op = target.op
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    # Conditions were checked in the first phase, against this same state.
    if target.op_type == "Put":
        backend.put_item(
            op["TableName"],
            op["Item"],
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif target.op_type == "Delete":
        backend.delete_item(
            op["TableName"],
            target.key,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    else:
        backend.update_item(
            op["TableName"],
            target.key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=names,
            expression_attribute_values=values,
        )


def _undo(journal: list[tuple[_Target, Any]], shard_ends: dict[int, tuple[Any, int]]) -> None:
    for target, before in reversed(journal):
        items = target.table.items
        if target.range_value is None:
            if before is None:
                items.pop(target.hash_value, None)
            else:
                items[target.hash_value] = before
            continue
        bucket = items.get(target.hash_value, {})
        if before is None:
            bucket.pop(target.range_value, None)
        else:
            bucket[target.range_value] = before
            items[target.hash_value] = bucket
        if not bucket:
            items.pop(target.hash_value, None)
    for table, end in shard_ends.values():
        del table.stream_shard.items[end:]


def _all_or_nothing(original: Any) -> Any:
    @functools.wraps(original)
    def patched(self: Any, transact_items: list[dict[str, Any]]) -> None:
        transact_write_items(self, transact_items)

    return patched


TRANSACTIONS = Patch(
    "mototransactions: all or nothing, in place",
    {Target("moto.dynamodb.models", "DynamoDBBackend", "transact_write_items"): _all_or_nothing},
)
PATCHES = (TRANSACTIONS,)
