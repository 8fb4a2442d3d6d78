"""Orders in DynamoDB: the item shape, the idempotent create, reads and status moves.

Orders table (keys: :mod:`chalicelib.orders.keys`)
    an order per item, listed by customer through the ``by_customer`` index.
    The table's stream (new and old images) is the source of the domain
    events (:mod:`chalicelib.orders.events`).

Idempotency table
    partition key ``id``; an order's idempotency key is stored as
    ``order-key#{key}`` with the order id and a hash of the request, and
    expires through TTL (``expires_at``). It is written in the same
    transaction as the order, so a key never exists without its order, nor
    an order created under a key without the key's record.

Every status move is an ``UpdateItem`` conditioned on the status and
``version`` that were read, and increments ``version``: two moves from the
same state cannot both succeed, with or without a client's ``If-Match``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import Clock
from chalicelib.dynamo import from_item, is_condition_failure, to_item
from chalicelib.orders.keys import (
    BY_CUSTOMER_INDEX,
    BY_CUSTOMER_PK,
    BY_CUSTOMER_SK,
    EXPIRES_AT,
    IDEMPOTENCY_PK,
    ORDER_PK,
    key_record_id,
)
from chalicelib.orders.money import format_money

# Keys are honoured at least this long; TTL removes them some time after.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


class StaleOrder(Exception):
    """The order changed between the read and the conditional write."""


class KeyTaken(Exception):
    """Another request created an order under the same idempotency key first."""


def order_item(order: dict[str, Any]) -> dict[str, Any]:
    return to_item(
        {
            ORDER_PK: order["order_id"],
            BY_CUSTOMER_PK: order["customer_id"],
            BY_CUSTOMER_SK: f"{order['created_at']}#{order['order_id']}",
            "customer_email": order["customer_email"],
            "items": [
                {
                    "product_id": line["product_id"],
                    "quantity": line["quantity"],
                    "unit_price": Decimal(line["unit_price"]),
                    "line_total": Decimal(line["line_total"]),
                }
                for line in order["items"]
            ],
            "total": Decimal(order["total"]),
            "status": order["status"],
            "version": order["version"],
            "reason": order.get("reason"),
            "previous_status": order.get("previous_status"),
            "created_at": order["created_at"],
            "updated_at": order["updated_at"],
        }
    )


def order_from_values(values: dict[str, Any]) -> dict[str, Any]:
    """An order as the API and the events show it, from deserialized item values."""
    return {
        "order_id": values[ORDER_PK],
        "customer_id": values[BY_CUSTOMER_PK],
        "customer_email": values["customer_email"],
        "items": [
            {
                "product_id": line["product_id"],
                "quantity": int(line["quantity"]),
                "unit_price": format_money(line["unit_price"]),
                "line_total": format_money(line["line_total"]),
            }
            for line in values["items"]
        ],
        "total": format_money(values["total"]),
        "status": values["status"],
        "version": int(values["version"]),
        "reason": values.get("reason"),
        "created_at": values["created_at"],
        "updated_at": values["updated_at"],
    }


class OrderStore:
    def __init__(self, client: Any, table: str, idempotency_table: str, clock: Clock):
        self.client = client
        self.table = table
        self.idempotency_table = idempotency_table
        self.clock = clock

    def _key(self, order_id: str) -> dict[str, Any]:
        return to_item({ORDER_PK: order_id})

    # -- reads -----------------------------------------------------------------

    def get(self, order_id: str) -> dict[str, Any] | None:
        values = self.get_item(order_id)
        return order_from_values(values) if values else None

    def key_record(self, idempotency_key: str) -> dict[str, Any] | None:
        """The live record of an idempotency key (an expired one counts as absent)."""
        item = self.client.get_item(
            TableName=self.idempotency_table,
            Key=to_item({IDEMPOTENCY_PK: key_record_id(idempotency_key)}),
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        values = from_item(item)
        if int(values[EXPIRES_AT]) <= self.clock.now().timestamp():
            return None
        return values

    def by_customer(
        self, customer_id: str, limit: int, start_key: dict[str, str] | None
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """A customer's orders, newest first; returns the page and the key to resume after."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": BY_CUSTOMER_INDEX,
            "KeyConditionExpression": "#c = :c",
            "ExpressionAttributeNames": {"#c": BY_CUSTOMER_PK},
            "ExpressionAttributeValues": to_item({":c": customer_id}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start_key is not None:
            args["ExclusiveStartKey"] = to_item(start_key)
        response = self.client.query(**args)
        orders = [order_from_values(from_item(i)) for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return orders, (from_item(last) if last else None)

    # -- writes ----------------------------------------------------------------

    def create(self, order: dict[str, Any], idempotency_key: str | None, request_hash: str) -> None:
        """Write a new order, and its idempotency key's record in the same transaction.

        Raises :class:`KeyTaken` when a live record of the key already exists,
        and ``ClientError`` for anything else (including a transaction conflict,
        which the caller retries).
        """
        put_order = {
            "TableName": self.table,
            "Item": order_item(order),
            "ConditionExpression": "attribute_not_exists(#id)",
            "ExpressionAttributeNames": {"#id": ORDER_PK},
        }
        if idempotency_key is None:
            self.client.put_item(**put_order)
            return
        now = self.clock.now()
        record = {
            IDEMPOTENCY_PK: key_record_id(idempotency_key),
            "order_id": order["order_id"],
            "request_hash": request_hash,
            "created_at": order["created_at"],
            EXPIRES_AT: int((now + IDEMPOTENCY_KEY_TTL).timestamp()),
        }
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {"Put": put_order},
                    {
                        "Put": {
                            "TableName": self.idempotency_table,
                            "Item": to_item(record),
                            # TTL deletes late; an expired record may be taken over.
                            "ConditionExpression": "attribute_not_exists(#id) OR #exp <= :now",
                            "ExpressionAttributeNames": {
                                "#id": IDEMPOTENCY_PK,
                                "#exp": EXPIRES_AT,
                            },
                            "ExpressionAttributeValues": to_item({":now": int(now.timestamp())}),
                        }
                    },
                ]
            )
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
                raise KeyTaken(idempotency_key) from error
            raise

    def status_update(
        self,
        order_id: str,
        *,
        expected_status: str,
        expected_version: int,
        status: str,
        reason: str | None = None,
        also_set: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The conditional ``Update`` that moves an order, for UpdateItem or a transaction.

        It applies only if the order is still at ``expected_status`` and
        ``expected_version``, and increments ``version``. ``also_set`` adds
        attributes written in the same update (a reservation, say).
        """
        values: dict[str, Any] = {
            ":status": status,
            ":expected_status": expected_status,
            ":expected_version": expected_version,
            ":one": 1,
            ":now": self.clock.iso_now(),
        }
        # previous_status makes the item describe its last move on its own, so
        # an event can be rebuilt from the table when the stream no longer has it.
        assignments = [
            "#s = :status",
            "previous_status = :expected_status",
            "version = version + :one",
            "updated_at = :now",
        ]
        extra = dict(also_set or {})
        if reason is not None:
            extra["reason"] = reason
        for index, (name, value) in enumerate(extra.items()):
            values[f":a{index}"] = value
            assignments.append(f"{name} = :a{index}")
        return {
            "TableName": self.table,
            "Key": self._key(order_id),
            "UpdateExpression": "SET " + ", ".join(assignments),
            "ConditionExpression": "#s = :expected_status AND version = :expected_version",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": to_item(values),
        }

    def set_status(self, order_id: str, **move: Any) -> dict[str, Any]:
        """Apply :meth:`status_update` alone; returns the updated order.

        Raises :class:`StaleOrder` when the order moved since it was read.
        """
        try:
            response = self.client.update_item(
                **self.status_update(order_id, **move), ReturnValues="ALL_NEW"
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise StaleOrder(order_id) from error
            raise
        return order_from_values(from_item(response["Attributes"]))

    def get_item(self, order_id: str) -> dict[str, Any] | None:
        """The order's raw attributes (deserialized), including what the API does not show."""
        item = self.client.get_item(
            TableName=self.table, Key=self._key(order_id), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None
