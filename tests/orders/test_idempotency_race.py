"""Two POSTs with one Idempotency-Key at the same moment create one order.

Both requests are made to miss the key's record first (a barrier holds each in
front of its write until the other has read), which is the race a retry storm
produces. moto's DynamoDB is made atomic across threads first
(:mod:`localcloud.motolocks`); unlocked, moto can lose one of two concurrent
transactions, which would prove nothing about ours.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.orders.model import OrderRequest
from chalicelib.orders.service import place_order
from tests.orders.helpers import order_body, seed_products


@pytest.fixture
def shop(services, moto_locks):
    seed_products(services)
    return services


def both_past_the_key_check(services, monkeypatch) -> None:
    """Each caller waits in front of its write until both have looked the key up."""
    barrier = threading.Barrier(2, timeout=30)
    create = type(services.orders).create

    def create_after_both_looked(store, *args, **kwargs):
        barrier.wait()
        return create(store, *args, **kwargs)

    monkeypatch.setattr(type(services.orders), "create", create_after_both_looked)


def place_twice_at_once(services, bodies):
    def place(body):
        return place_order(OrderRequest.model_validate(body), "race-key", services)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return [future.result() for future in [pool.submit(place, b) for b in bodies]]


def test_two_concurrent_posts_with_one_key_create_one_order(shop, monkeypatch):
    both_past_the_key_check(shop, monkeypatch)
    results = place_twice_at_once(shop, [order_body(), order_body()])

    (first, first_created), (second, second_created) = results
    assert first["order_id"] == second["order_id"]
    assert sorted([first_created, second_created]) == [False, True]
    orders, _ = shop.orders.by_customer("cust-1", 10, None)
    assert [o["order_id"] for o in orders] == [first["order_id"]]


def test_a_concurrent_post_with_the_key_and_another_body_is_refused(shop, monkeypatch):
    from chalicelib.errors import ValidationFailed

    both_past_the_key_check(shop, monkeypatch)
    with pytest.raises(ValidationFailed) as refused:
        place_twice_at_once(shop, [order_body(widget=1), order_body(widget=2)])

    assert refused.value.code == "idempotency_key_reused"
    orders, _ = shop.orders.by_customer("cust-1", 10, None)
    assert len(orders) == 1
