"""Builders shared by the orders tests: products, order bodies, stream records."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.orders import service
from chalicelib.orders.model import OrderRequest, ProductInput

PRODUCTS = {"widget": ("Widget", "12.50", 100), "gadget": ("Gadget", "3.99", 10)}


def seed_products(services, products: dict[str, tuple[str, str, int]] = PRODUCTS) -> None:
    for product_id, (name, price, stock) in products.items():
        services.products.put(
            product_id, ProductInput.model_validate({"name": name, "price": price, "stock": stock})
        )


def order_body(customer: str = "cust-1", **lines: int) -> dict[str, Any]:
    lines = lines or {"widget": 2}
    return {
        "customer_id": customer,
        "customer_email": f"{customer}@example.com",
        "items": [{"product_id": p, "quantity": q} for p, q in lines.items()],
    }


def place(services, customer: str = "cust-1", **lines: int) -> dict[str, Any]:
    """An order placed through the service (no HTTP), as the API would place it."""
    request = OrderRequest.model_validate(order_body(customer, **lines))
    return service.place_order(request, None, services)[0]


def as_json(body: Any) -> str:
    return json.dumps(body)
