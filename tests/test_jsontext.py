"""Bounded JSON: deep nesting is a 400 (or a poison intake message), never a RecursionError."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.jsontext import MAX_DEPTH, JsonTextError, depth, loads
from chalicelib.orders.events import EventFormatError, parse_event
from chalicelib.readings.chunks import ChunkFormatError, decode_chunk
from chalicelib.readings.s3events import NotificationFormatError, refs_from_sqs_body

DEEP = "[" * 5000 + "]" * 5000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=30,
)


def nesting(value) -> int:
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


@given(json_values, st.booleans())
def test_depth_counts_nesting_as_the_parser_sees_it_brackets_in_strings_included(value, ascii):
    text = json.dumps(value, ensure_ascii=ascii)
    assert depth(text) == nesting(value)


@given(st.text(alphabet='[]{}"\\ab,:', max_size=60))
def test_loads_never_raises_anything_but_our_error(text):
    try:
        loads(text, max_depth=3)
    except JsonTextError as error:
        assert error.problem
    except RecursionError:  # pragma: no cover - the failure this module exists for
        pytest.fail("RecursionError escaped")


def test_a_number_too_long_to_convert_is_our_error_not_a_500(api):
    with pytest.raises(JsonTextError, match="too many digits"):
        loads('{"a": ' + "1" * 5000 + "}")
    with pytest.raises(JsonTextError, match="not a number JSON allows"):
        loads("[NaN]")
    response = api.http.post(
        "/orders", body=b'{"a": ' + b"1" * 5000 + b"}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and json.loads(response.body)["details"][0]["field"] == (
        "body"
    )


def test_nesting_past_the_bound_is_refused_before_parsing():
    loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    with pytest.raises(JsonTextError, match="deeper than"):
        loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(JsonTextError, match="deeper than"):
        loads(DEEP)
    assert loads('["' + "[" * 40 + '"]') == ["[" * 40], "brackets in a string are text"


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/orders"), ("put", "/products/p-1"), ("post", "/readings"), ("post", "/uploads")],
)
@pytest.mark.parametrize("body", [DEEP, '{"items": ' + DEEP + "}"])
def test_a_deeply_nested_body_is_a_400_naming_the_body(api, method, path, body):
    response = getattr(api.http, method)(
        path, body=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.body
    error = json.loads(response.body)
    assert error["details"] == [
        {"field": "body", "problem": f"nests arrays or objects deeper than {MAX_DEPTH} levels"}
    ]


def test_a_deeply_nested_cursor_is_a_400(api):
    cursor = base64.urlsafe_b64encode(DEEP.encode()).decode().rstrip("=")
    response = api.http.get(f"/ingests?cursor={cursor}")
    assert response.status_code == 400 and json.loads(response.body)["details"][0]["field"] == (
        "cursor"
    )


DEEP = "[" * 5_000 + "]" * 5_000


@pytest.mark.parametrize(
    ("parse", "error"),
    [
        (decode_chunk, ChunkFormatError),
        (parse_event, EventFormatError),
        (refs_from_sqs_body, NotificationFormatError),
    ],
    ids=["readings-chunk", "order-event", "s3-notification"],
)
def test_each_queue_consumer_refuses_a_body_nested_thousands_deep_as_malformed(parse, error):
    # A RecursionError would be an unexpected failure, retried to the DLQ for
    # nothing; a format error is the poison the consumer knows.
    with pytest.raises(error):
        parse(DEEP)
