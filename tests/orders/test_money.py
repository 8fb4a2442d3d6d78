"""Money is exact: Decimal in, two-place strings out, never a float."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.orders.money import MAX_PRICE, format_money, parse_price

cents = st.integers(min_value=1, max_value=int(MAX_PRICE * 100))


@given(cents)
def test_any_whole_number_of_cents_round_trips_exactly(amount):
    price = Decimal(amount) / 100
    for given_as in (price, str(price), format_money(price)):
        parsed = parse_price(given_as)
        assert parsed == price
        assert format_money(parsed) == f"{amount // 100}.{amount % 100:02d}"


@given(
    st.integers(min_value=0, max_value=int(MAX_PRICE * 100) - 1),
    st.integers(min_value=3, max_value=8),
    st.data(),
)
def test_fractions_of_a_cent_are_refused(cents, places, data):
    # Every drawn price is in range and has a non-zero digit below the cent.
    below = data.draw(st.integers(min_value=1, max_value=10 ** (places - 2) - 1))
    price = Decimal(cents) / 100 + Decimal(below) / Decimal(10) ** places
    for given_as in (price, f"{price:f}"):  # a Decimal, and a plain string of digits
        with pytest.raises(ValueError, match="at most 2 decimal places"):
            parse_price(given_as)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (0, "greater than 0"),
        ("0.00", "greater than 0"),
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        ("12,50", "decimal string"),
        ("", "decimal string"),
        (True, "number or a decimal string"),
        (12.5, "number or a decimal string"),  # a float has already lost exactness
        (None, "number or a decimal string"),
        ("1000000.01", "must not exceed"),
    ],
)
def test_bad_prices_say_what_is_wrong(value, problem):
    with pytest.raises(ValueError, match=problem):
        parse_price(value)


def test_trailing_zeros_and_whole_numbers_are_shown_with_two_places():
    assert format_money(Decimal("12.5")) == "12.50"
    assert format_money(Decimal("7")) == "7.00"
    assert format_money(parse_price("0.10")) == "0.10"


ASCII_MONEY = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")


@pytest.mark.parametrize(
    "text",
    [
        "1e3",
        "1E3",
        "1_000",
        "+5",
        "-1.00",
        "  5",
        "5 ",
        "5\n",
        "\u0665",
        "\u0661\u0662.50",
        "\uff15",
        "NaN",
        "Infinity",
        "0x10",
        "5.",
        ".5",
        "12.345",
        "12345678",
    ],
)
def test_money_strings_other_than_ascii_digits_are_refused(text):
    with pytest.raises(ValueError, match="ASCII digits"):
        parse_price(text)


@given(st.text(alphabet="0123456789\u0660\u0665\u06f5\uff15.eE_+- \t\n", max_size=12))
def test_a_money_string_is_accepted_exactly_when_it_has_the_documented_shape(text):
    if not ASCII_MONEY.fullmatch(text):
        with pytest.raises(ValueError):
            parse_price(text)
        return
    amount = Decimal(text)
    if 0 < amount <= MAX_PRICE:
        assert parse_price(text) == amount
    else:
        with pytest.raises(ValueError):
            parse_price(text)
