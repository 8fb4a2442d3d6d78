"""Order and product validation: what the API and the intake both enforce."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.orders.model import MAX_LINES, OrderRequest, ProductInput
from chalicelib.validation import problems
from tests.orders.helpers import order_body


def _problems(model, body) -> dict[str, str]:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(body)
    return {p["field"]: p["problem"] for p in problems(raised.value)}


def test_a_valid_order_parses():
    request = OrderRequest.model_validate(order_body(widget=2, gadget=1))
    assert [(line.product_id, line.quantity) for line in request.items] == [
        ("widget", 2),
        ("gadget", 1),
    ]


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"customer_email": "no-at-sign"}, "customer_email", "not a valid email"),
        ({"customer_email": "a@b"}, "customer_email", "not a valid email"),
        ({"customer_email": "a b@example.com"}, "customer_email", "not a valid email"),
        ({"customer_id": "has space"}, "customer_id", "letters, digits"),
        ({"customer_id": ""}, "customer_id", "letters, digits"),
        ({"items": []}, "items", "at least 1"),
        ({"items": [{"product_id": "w", "quantity": 0}]}, "items.0.quantity", "greater than"),
        ({"items": [{"product_id": "w", "quantity": 1001}]}, "items.0.quantity", "less than"),
        ({"items": [{"product_id": "w", "quantity": "2"}]}, "items.0.quantity", "integer"),
        ({"items": [{"product_id": "w", "quantity": True}]}, "items.0.quantity", "integer"),
        ({"items": [{"product_id": "w", "quantity": 1, "price": 1}]}, "items.0.price", "known"),
        ({"discount": 5}, "discount", "is not a known field"),
    ],
)
def test_each_rule_names_the_field_and_the_problem(change, field, problem):
    found = _problems(OrderRequest, {**order_body(), **change})
    assert field in found and problem in found[field], found


def test_the_same_product_twice_is_refused():
    body = order_body()
    body["items"] = [{"product_id": "w", "quantity": 1}, {"product_id": "w", "quantity": 2}]
    assert "more than once" in _problems(OrderRequest, body)["items"]


@given(st.integers(min_value=1, max_value=MAX_LINES + 5))
def test_one_to_fifty_lines(count):
    body = order_body(**{f"p{i}": 1 for i in range(count)})
    if count <= MAX_LINES:
        assert len(OrderRequest.model_validate(body).items) == count
    else:
        assert "at most 50" in _problems(OrderRequest, body)["items"]


def test_the_fingerprint_ignores_line_order():
    one = OrderRequest.model_validate(order_body(widget=2, gadget=1))
    two = OrderRequest.model_validate(order_body(gadget=1, widget=2))
    assert one.fingerprint() == two.fingerprint()


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"name": "W", "price": "1.999", "stock": 1}, "price", "2 decimal places"),
        ({"name": "W", "price": "0", "stock": 1}, "price", "greater than 0"),
        ({"name": "W", "price": "1", "stock": -1}, "stock", "greater than or equal to 0"),
        ({"name": "W", "price": "1", "stock": 1.5}, "stock", "integer"),
        ({"name": " ", "price": "1", "stock": 1}, "name", "empty"),
        ({"name": "W\x00", "price": "1", "stock": 1}, "name", "control"),
        ({"price": "1", "stock": 1}, "name", "is required"),
    ],
)
def test_product_rules(body, field, problem):
    found = _problems(ProductInput, body)
    assert problem in found[field], found
