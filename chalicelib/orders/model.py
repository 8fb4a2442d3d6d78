"""What a product and an order request mean, and how they are validated.

The REST API and the partner intake queue validate with the same models, so
an order is held to the same rules whichever way it arrives. Identifiers are
URL path segments, DynamoDB keys and (customer ids) SQS FIFO message group
ids, so they keep to characters that need no escaping in any of them.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
)
from pydantic_core import PydanticCustomError

from chalicelib.orders.money import parse_price
from chalicelib.orders.states import Status
from chalicelib.validation import text_problem

MAX_LINES = 50
MAX_QUANTITY = 1000
MAX_STOCK = 1_000_000_000
MAX_NAME = 200
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
ORDER_ID = re.compile(r"[0-9a-f]{32}")
# The shape SMTP accepts (RFC 5321 dot-atom local part, LDH domain labels, a
# TLD of letters). Deliverability is SES's business, not the API's.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
MAX_EMAIL = 254


def _problem(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def parse_identifier(value: Any) -> str:
    """A product or customer id: 1-128 letters, digits or ``. _ : @ -``, starting alphanumeric."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise _problem(
            "identifier",
            "must be 1-128 letters, digits or . _ : @ -, starting with a letter or digit",
        )
    return value


def parse_order_id(value: Any) -> str:
    if not isinstance(value, str) or not ORDER_ID.fullmatch(value):
        raise _problem("order_id", "must be an order id: 32 lowercase hex digits")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise _problem("text", "must be a string")
    # Checked before stripping: a forbidden character is refused wherever it is.
    problem = text_problem(value)
    if problem:
        raise _problem("text", problem)
    text = value.strip()
    if not text:
        raise _problem("text", "is empty")
    if len(text) > MAX_NAME:
        raise _problem("text", f"is longer than {MAX_NAME} characters")
    return text


def _email(value: Any) -> str:
    if not isinstance(value, str):
        raise _problem("email", "must be a string")
    text = value.strip()
    if len(text) > MAX_EMAIL or not _EMAIL.fullmatch(text):
        raise _problem("email", "is not a valid email address")
    return text


def _price(value: Any) -> Decimal:
    try:
        return parse_price(value)
    except ValueError as error:
        raise _problem("price", str(error)) from None


Identifier = Annotated[str, BeforeValidator(parse_identifier)]
OrderId = Annotated[str, BeforeValidator(parse_order_id)]
Email = Annotated[str, BeforeValidator(_email)]
Price = Annotated[Decimal, BeforeValidator(_price)]
Name = Annotated[str, BeforeValidator(_name)]


class ProductInput(BaseModel):
    """The body of ``PUT /products/{product_id}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name
    price: Price
    stock: Annotated[StrictInt, Field(ge=0, le=MAX_STOCK)]


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: Identifier
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]


def _distinct_products(lines: list[OrderLine]) -> list[OrderLine]:
    seen: set[str] = set()
    for line in lines:
        if line.product_id in seen:
            raise _problem("items", f"names product {line.product_id} more than once")
        seen.add(line.product_id)
    return lines


class OrderRequest(BaseModel):
    """The body of ``POST /orders``, and the ``data`` of an intake ``order_created``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: Identifier
    customer_email: Email
    items: Annotated[
        list[OrderLine],
        Field(min_length=1, max_length=MAX_LINES),
        AfterValidator(_distinct_products),
    ]

    def fingerprint(self) -> dict[str, Any]:
        """The request as canonical data: what an idempotency key is bound to."""
        return {
            "customer_id": self.customer_id,
            "customer_email": self.customer_email,
            "items": sorted(
                ([line.product_id, line.quantity] for line in self.items), key=lambda x: x[0]
            ),
        }


class StatusChange(BaseModel):
    """The body of ``PATCH /orders/{order_id}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Status
