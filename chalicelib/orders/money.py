"""Money as exact decimals: parsed from JSON numbers or strings, shown with two places.

Prices never pass through ``float``: request bodies are parsed with
``Decimal`` (:func:`chalicelib.rest.parse_body`), DynamoDB stores numbers
exactly, and responses and events carry money as strings like ``"12.50"``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
# Far above any real price, far below DynamoDB's 38 significant digits even
# after multiplying by the largest quantity and summing the largest order.
MAX_PRICE = Decimal("1000000")
# A price as text: 1-7 ASCII digits, then at most two decimals; nothing else.
_MONEY_TEXT = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")


def parse_price(value: Any) -> Decimal:
    """A price, > 0 and at most 1,000,000: a JSON number, or a string of ASCII
    digits with at most two decimals (``^[0-9]{1,7}(\\.[0-9]{1,2})?$``).

    Raises ValueError with a sentence a client can act on.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise ValueError("must be a number or a decimal string, e.g. 12.50")
    if isinstance(value, str) and not _MONEY_TEXT.fullmatch(value):
        # Decimal() alone also takes "1e3", "1_000", "+5", " 5" and other
        # scripts' digits: none of them is how anyone writes a price.
        raise ValueError(
            "must be a decimal string of ASCII digits with at most 2 decimal places, e.g. 12.50"
        )
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError("must be a number or a decimal string, e.g. 12.50") from None
    if not amount.is_finite():
        raise ValueError("must be a finite amount")
    if amount <= 0:
        raise ValueError("must be greater than 0")
    if amount > MAX_PRICE:
        raise ValueError(f"must not exceed {format_money(MAX_PRICE)}")
    if amount != amount.quantize(CENT):
        raise ValueError("must have at most 2 decimal places")
    return amount.quantize(CENT)


def format_money(amount: Decimal) -> str:
    """``Decimal("12.5")`` → ``"12.50"``."""
    return str(Decimal(amount).quantize(CENT))
