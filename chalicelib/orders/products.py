"""Products in DynamoDB: create or replace, read, and the prices an order needs.

``stock`` is what can still be reserved and ``reserved`` is what open orders
hold; the inventory consumer moves units between the two in transactions. A
``PUT`` replaces the name, the price and the stock, and never touches
``reserved``: units held by open orders stay held across a restock.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chalicelib.clock import Backoff, Clock
from chalicelib.dynamo import from_item, to_item
from chalicelib.errors import NotFound, UnprocessedKeysError
from chalicelib.orders.keys import PRODUCT_PK
from chalicelib.orders.model import ProductInput
from chalicelib.orders.money import format_money

# BatchGetItem reads at most 100 keys per request; an order has at most 50 lines.
BATCH_GET_LIMIT = 100


def to_public(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "product_id": values[PRODUCT_PK],
        "name": values["name"],
        "price": format_money(values["price"]),
        "stock": int(values["stock"]),
        "reserved": int(values.get("reserved", 0)),
    }


class ProductStore:
    def __init__(self, client: Any, table: str, clock: Clock):
        self.client = client
        self.table = table
        self.clock = clock

    def _key(self, product_id: str) -> dict[str, Any]:
        return to_item({PRODUCT_PK: product_id})

    def put(self, product_id: str, product: ProductInput) -> tuple[bool, dict[str, Any]]:
        """Create or replace; returns ``(created, product)``."""
        now = self.clock.iso_now()
        response = self.client.update_item(
            TableName=self.table,
            Key=self._key(product_id),
            UpdateExpression="SET #name = :name, price = :price, stock = :stock, "
            "updated_at = :now, reserved = if_not_exists(reserved, :zero), "
            "created_at = if_not_exists(created_at, :now)",
            ExpressionAttributeNames={"#name": "name"},
            ExpressionAttributeValues=to_item(
                {
                    ":name": product.name,
                    ":price": product.price,
                    ":stock": product.stock,
                    ":now": now,
                    ":zero": 0,
                }
            ),
            ReturnValues="ALL_OLD",
        )
        old = from_item(response.get("Attributes") or {})
        values = {
            PRODUCT_PK: product_id,
            "name": product.name,
            "price": product.price,
            "stock": product.stock,
            "reserved": old.get("reserved", 0),
        }
        return not old, to_public(values)

    def get(self, product_id: str) -> dict[str, Any]:
        item = self.client.get_item(
            TableName=self.table, Key=self._key(product_id), ConsistentRead=True
        ).get("Item")
        if not item:
            raise NotFound(f"no product {product_id}")
        return to_public(from_item(item))

    def prices(self, product_ids: list[str], backoff: Backoff) -> dict[str, Decimal]:
        """The price of each product that exists (unknown ids are left out).

        BatchGetItem may return some keys as ``UnprocessedKeys`` under load;
        they are asked again with backoff, a bounded number of times.
        """
        found: dict[str, Decimal] = {}
        for start in range(0, len(product_ids), BATCH_GET_LIMIT):
            keys = [self._key(p) for p in product_ids[start : start + BATCH_GET_LIMIT]]
            request = {
                self.table: {
                    "Keys": keys,
                    "ProjectionExpression": "#id, price",
                    "ExpressionAttributeNames": {"#id": PRODUCT_PK},
                    # Prices must be the current ones: an order is priced once.
                    "ConsistentRead": True,
                }
            }
            for attempt in range(1, backoff.attempts + 1):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    values = from_item(item)
                    found[values[PRODUCT_PK]] = values["price"]
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt == backoff.attempts:
                    raise UnprocessedKeysError(
                        f"{len(request[self.table]['Keys'])} product(s) still unread after "
                        f"{backoff.attempts} BatchGetItem attempts"
                    )
                backoff.wait(attempt)
        return found
