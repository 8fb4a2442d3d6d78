"""The status machine: every pair of statuses, for each actor, and the event each move emits."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.orders import states
from chalicelib.orders.states import Actor, EventType, Status

# The machine as docs/orders.md draws it: (from, to) → who may make the move.
EXPECTED = {
    (Status.PENDING, Status.CONFIRMED): Actor.SYSTEM,
    (Status.PENDING, Status.REJECTED): Actor.SYSTEM,
    (Status.PENDING, Status.CANCELLED): Actor.CLIENT,
    (Status.CONFIRMED, Status.SHIPPED): Actor.CLIENT,
    (Status.CONFIRMED, Status.CANCELLED): Actor.CLIENT,
    (Status.SHIPPED, Status.DELIVERED): Actor.CLIENT,
}


@pytest.mark.parametrize(
    ("current", "target", "actor"), list(itertools.product(Status, Status, Actor))
)
def test_exactly_the_drawn_moves_are_allowed_and_only_to_their_actor(current, target, actor):
    allowed = EXPECTED.get((current, target)) is actor
    if allowed:
        states.check(current, target, actor)
        assert target in states.allowed(current, actor)
    else:
        with pytest.raises(states.InvalidTransition) as raised:
            states.check(current, target, actor)
        body = raised.value.to_body()
        assert raised.value.status == 409 and body["error"] == "invalid_transition"
        assert body["current_status"] == current
        assert body["allowed"] == [str(s) for s in states.allowed(current, actor)]
        assert target not in states.allowed(current, actor)


def test_a_client_is_told_that_confirming_is_the_systems_move():
    with pytest.raises(states.InvalidTransition) as raised:
        states.check(Status.PENDING, Status.CONFIRMED, Actor.CLIENT)
    assert "set by the system" in raised.value.message
    assert raised.value.to_body()["allowed"] == ["CANCELLED"]


def test_final_statuses_allow_nothing():
    assert {Status.REJECTED, Status.CANCELLED, Status.DELIVERED} == states.FINAL
    for status in states.FINAL:
        assert states.allowed(status, Actor.CLIENT) == states.allowed(status, Actor.SYSTEM) == ()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (None, Status.PENDING, EventType.ORDER_CREATED),
        (Status.PENDING, Status.CONFIRMED, EventType.ORDER_STATUS_CHANGED),
        (Status.PENDING, Status.REJECTED, EventType.ORDER_STATUS_CHANGED),
        (Status.PENDING, Status.CANCELLED, EventType.ORDER_CANCELLED),
        (Status.CONFIRMED, Status.CANCELLED, EventType.ORDER_CANCELLED),
        (Status.CONFIRMED, Status.SHIPPED, EventType.ORDER_STATUS_CHANGED),
        (Status.SHIPPED, Status.DELIVERED, EventType.ORDER_STATUS_CHANGED),
    ],
)
def test_each_move_emits_its_event(old, new, expected):
    assert states.event_type(old, new) is expected


def test_who_may_ask_for_a_status_does_not_depend_on_the_order():
    assert states.requestable(Actor.CLIENT) == {Status.CANCELLED, Status.SHIPPED, Status.DELIVERED}
    assert states.requestable(Actor.SYSTEM) == {Status.CONFIRMED, Status.REJECTED}
    for current, target, actor in itertools.product(Status, Status, Actor):
        ever = any(who is actor and to is target for (_, to), who in EXPECTED.items())
        if ever:
            states.check_actor(current, target, actor)
        else:
            with pytest.raises(states.InvalidTransition):
                states.check_actor(current, target, actor)
