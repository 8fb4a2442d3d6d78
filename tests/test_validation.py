"""One rule for free text in both domains: no Cc, Cf, Zl or Zp character, anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.orders.model import ProductInput
from chalicelib.readings.model import Reading
from chalicelib.validation import TEXT_PROBLEM, forbidden_character, problems

READING = {
    "timestamp": "1700000000",
    "location": "lab-1",
    "source": "wired",
    "local_dest": "gw",
    "local_avg": "1",
    "remote_dest": "probe",
    "remote_avg": "2",
}
forbidden = st.characters(categories=["Cc", "Cf", "Zl", "Zp"])
allowed = st.characters(codec="utf-8", exclude_categories=["Cc", "Cf", "Cs", "Zl", "Zp"]).filter(
    lambda c: c not in "\ufffe\uffff"
)


def _refusal(model, body, field) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return {p["field"]: p["problem"] for p in problems(caught.value)}[field]


@given(st.text(alphabet=allowed, max_size=20), forbidden, st.text(alphabet=allowed, max_size=20))
def test_every_forbidden_character_is_refused_in_every_domain_wherever_it_stands(
    before, char, after
):
    text = f"a{before}{char}{after}"
    assert forbidden_character(text) == char
    assert _refusal(ProductInput, {"name": text, "price": "1", "stock": 1}, "name").startswith(
        TEXT_PROBLEM
    )
    for field in ("location", "source", "local_dest", "remote_dest"):
        assert _refusal(Reading, {**READING, field: text}, field).startswith(TEXT_PROBLEM)


@given(st.text(alphabet=allowed, min_size=1, max_size=40).filter(str.strip))
def test_text_without_them_passes_the_shared_rule(text):
    assert forbidden_character(text) is None
    product = ProductInput.model_validate({"name": text[:200], "price": "1", "stock": 1})
    assert product.name == text[:200].strip()


@pytest.mark.parametrize(
    "char", ["\u200b", "\u202e", "\u2066", "\ufeff", "\u00ad", "\u2028", "\u2029", "\x85"]
)
def test_the_usual_suspects_are_refused(char):
    assert forbidden_character(f"Widget{char}") == char
