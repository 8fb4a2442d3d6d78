"""The products, orders and customers REST operations, independent of Chalice.

The calling convention and the shared parsing live in :mod:`chalicelib.rest`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chalicelib import rest
from chalicelib.errors import BadRequest, NotFound, ValidationFailed
from chalicelib.lazy import lazy
from chalicelib.orders.states import Actor
from chalicelib.pagination import decode_cursor, invalid_cursor

# Imported at first use (app.py imports this module; see chalicelib/lazy.py):
# the models bring pydantic, the service and store bring boto3.
pydantic = lazy("pydantic")
model = lazy("chalicelib.orders.model")
service = lazy("chalicelib.orders.service")
store = lazy("chalicelib.orders.store")
validation = lazy("chalicelib.validation")

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Printable ASCII without spaces at the ends: what a client library generates
# (a UUID, usually) and what fits a DynamoDB key with room to spare.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?")
# The If-Match forms docs/orders.md lists, and no others: 3, "3" and W/"3".
_VERSION = re.compile(r'([0-9]{1,18})|(?:W/)?"([0-9]{1,18})"')


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A request header by case-insensitive name."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _validated(model_class, body: dict[str, Any], what: str):
    try:
        return model_class.model_validate(body)
    except pydantic.ValidationError as error:
        raise ValidationFailed(f"the {what} is not valid", validation.problems(error)) from None


def _identifier(name: str, value: str) -> str:
    return rest.field(name, model.parse_identifier, value)


def idempotency_key(headers: Mapping[str, str] | None) -> str | None:
    key = header(headers, IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequest.field(IDEMPOTENCY_HEADER, "must be 1-255 printable ASCII characters")
    return key


def _expected_version(headers: Mapping[str, str] | None) -> int | None:
    value = header(headers, "If-Match")
    if value is None:
        return None
    # Only the optional whitespace HTTP allows around a field value is ignored.
    match = _VERSION.fullmatch(value.strip(" \t"))
    if not match:
        raise BadRequest.field(
            "If-Match", 'must be the order\'s version as 3, "3" or W/"3" (its ETag)'
        )
    return int(match.group(1) or match.group(2))


def etag(order: dict[str, Any]) -> dict[str, str]:
    """The ``ETag`` header of an order: its version, which every change increments."""
    return {"ETag": f'"{order["version"]}"'}


def _order_id(order_id: str) -> str:
    if not model.ORDER_ID.fullmatch(order_id):
        raise NotFound(f"no order {order_id}")
    return order_id


# -- products ----------------------------------------------------------------------


def put_product(services, product_id, params, raw_body, headers):
    rest.query(params, ())
    product_id = _identifier("product_id", product_id)
    product = _validated(model.ProductInput, rest.parse_body(raw_body), "product")
    created, public = services.products.put(product_id, product)
    return (201 if created else 200), public


def get_product(services, product_id, params, raw_body, headers):
    rest.query(params, ())
    return 200, services.products.get(_identifier("product_id", product_id))


# -- orders ------------------------------------------------------------------------


def create_order(services, params, raw_body, headers):
    rest.query(params, ())
    key = idempotency_key(headers)
    request = _validated(model.OrderRequest, rest.parse_body(raw_body), "order")
    order, created = service.place_order(request, key, services)
    return 201, order, ({} if created else {REPLAYED_HEADER: "true"})


def get_order(services, order_id, params, raw_body, headers):
    rest.query(params, ())
    order = services.orders.get(_order_id(order_id))
    if order is None:
        raise NotFound(f"no order {order_id}")
    return 200, order, etag(order)


def change_order(services, order_id, params, raw_body, headers):
    rest.query(params, ())
    order_id = _order_id(order_id)
    expected = _expected_version(headers)
    change = _validated(model.StatusChange, rest.parse_body(raw_body), "status change")
    order = service.change_status(
        order_id, change.status, Actor.CLIENT, services, expected_version=expected
    )
    return 200, order, etag(order)


def list_customer_orders(services, customer_id, params, raw_body, headers):
    params = rest.query(params, ("limit", "cursor"))
    customer_id = _identifier("customer_id", customer_id)
    limit = rest.limit(params)
    query = {"path": "customer-orders", "customer_id": customer_id}
    start_key = None
    if "cursor" in params:
        start_key = decode_cursor(params["cursor"], query)
        if not _is_customer_key(start_key, customer_id):
            raise invalid_cursor()
    orders, last = services.orders.by_customer(customer_id, limit, start_key)
    return 200, rest.page(orders, query, last)


def _is_customer_key(value: Any, customer_id: str) -> bool:
    names = (store.ORDER_PK, store.BY_CUSTOMER_PK, store.BY_CUSTOMER_SK)
    if not isinstance(value, dict) or set(value) != set(names):
        return False
    order_id, customer, sort = (value[k] for k in names)
    return (
        customer == customer_id
        and isinstance(order_id, str)
        and bool(model.ORDER_ID.fullmatch(order_id))
        and isinstance(sort, str)
        and sort.endswith(f"#{order_id}")
    )
