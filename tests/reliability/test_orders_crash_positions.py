"""Crashes at every call position of the orders' functions and routes, and of their redelivery.

For each of ``intake_orders``, ``publish_order_events``, ``update_inventory``,
``send_notifications``, ``update_analytics``, ``POST /orders`` and
``PATCH /orders/{id}``, a scenario sets the world up to the moment just before
one delivery (a batch on the function's queue, the stream's new records, or a
request), and a clean run counts that delivery's AWS calls. Then, for every
position N of those calls, a new scenario kills the delivery just before
call N, and again just after call N's response arrived; the same delivery
comes again (SQS after the visibility timeout, the stream mapping from its
checkpoint, the client retrying the same request with the same
Idempotency-Key), and everything is drained. Every position is tried; none is
sampled. After each, the orders' invariant holds
(:mod:`tests.reliability.orders_invariants`).

The redelivery is crashed too: for a one-message delivery of each function,
each state a first crash can leave behind (after each of its writes; see
:func:`_writing_crashes`) is combined with a crash at every position of the
redelivery that follows it (its calls counted in a run where it completes),
and the third delivery completes.

Scenarios of one function share a world (provisioning costs more than a
scenario); each has its own products, customers and keys, and is checked on
what it made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.reliability.orders_invariants import Scenario
from tests.reliability.orders_world import OrdersWorld, orders_world

GET, BATCH_GET, TRANSACT, UPDATE = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:UpdateItem",
)
SEND, PUBLISH, WHO = "ses:SendEmail", "sns:PublishBatch", "sts:GetCallerIdentity"


@dataclass(frozen=True)
class Target:
    """One delivery to crash: ``setup`` brings a scenario to just before it and returns
    what ``deliver`` needs; ``deliver`` makes it once and says whether it crashed."""

    setup: Callable[[Scenario], Any]
    deliver: Callable[[Scenario, Any], bool]
    calls: list[str]  # a clean delivery's AWS calls, in order


def _queue(key: str) -> Callable[[Scenario, Any], bool]:
    def deliver(scenario: Scenario, _: Any) -> bool:
        delivery = scenario.world.deliver(key)
        assert delivery is not None, f"nothing on {key}"
        return delivery.crashed

    return deliver


def _publish(scenario: Scenario, _: Any) -> bool:
    delivery = scenario.world.publish()
    assert delivery is not None, "nothing on the stream"
    return delivery.crashed


# -- the routes --------------------------------------------------------------------


def _post_setup(scenario: Scenario) -> dict[str, Any]:
    product = scenario.product(5)
    customer = scenario.customer()
    return {"body": scenario.body(customer, **{product: 2}), "key": scenario.key(customer)}


def _post(scenario: Scenario, state: dict[str, Any]) -> bool:
    headers = {"Idempotency-Key": state["key"]}
    response = scenario.world.request("POST", "/orders", state["body"], headers)
    if not response.crashed:
        # The first answer and every retry's name the same order.
        assert response.status == 201, response
        order_id = state.setdefault("order_id", response.body["order_id"])
        assert response.body["order_id"] == order_id
    return response.crashed


def _patch_setup(scenario: Scenario) -> str:
    order_id = scenario.place(**{scenario.product(5): 1})
    scenario.world.drain()  # confirmed
    return order_id


def _patch(scenario: Scenario, order_id: str) -> bool:
    response = scenario.world.request("PATCH", f"/orders/{order_id}", {"status": "SHIPPED"})
    if not response.crashed:
        assert (response.status, response.body["status"]) == (200, "SHIPPED"), response
    return response.crashed


# -- the functions -----------------------------------------------------------------


def _intake_setup(scenario: Scenario, cancel: bool = True) -> None:
    """An ``order_created`` (with its key), and a cancellation of a confirmed order."""
    product = scenario.product(5)
    if cancel:
        confirmed = scenario.place(**{product: 1})
        scenario.world.drain()
    customer = scenario.customer()
    created = {
        "type": "order_created",
        "idempotency_key": scenario.key(customer),
        "data": scenario.body(customer, **{product: 2}),
    }
    scenario.world.send_intake(created, customer)
    if cancel:
        update = {"type": "order_updated", "data": {"order_id": confirmed, "status": "CANCELLED"}}
        scenario.world.send_intake(update, scenario.customers[0])


def _publisher_setup(scenario: Scenario, many: bool = True) -> None:
    """New stream records: an order created, and with ``many`` the same order cancelled
    (its two events go in two PublishBatch calls) and another order created."""
    product = scenario.product(5)
    first = scenario.place(**{product: 1})
    if many:
        scenario.move(first, "CANCELLED")
        scenario.place(**{product: 1})


def _publish_all(world: OrdersWorld) -> None:
    while world.publish() is not None:
        pass


def _inventory_setup(scenario: Scenario, many: bool = True) -> None:
    """Inventory's queue holds a creation to reserve (more than the stock left with
    ``many``: rejected), and with ``many`` a cancellation to release and a shipment
    to consume."""
    world, product = scenario.world, scenario.product(5)
    if many:
        cancelled, shipped = scenario.place(**{product: 1}), scenario.place(**{product: 1})
        world.drain()
        scenario.move(cancelled, "CANCELLED")
        scenario.move(shipped, "SHIPPED")
    scenario.place(**{product: 5 if many else 2})
    _publish_all(world)


def _notifications_setup(scenario: Scenario, many: bool = True) -> None:
    """Notifications' queue holds one or two creations."""
    product = scenario.product(5)
    for _ in range(2 if many else 1):
        scenario.place(**{product: 1})
    _publish_all(scenario.world)


def _analytics_setup(scenario: Scenario, many: bool = True) -> None:
    """Analytics' queue holds a creation, and with ``many`` a confirmation and the
    cancellation of a confirmed order (revenue taken back)."""
    world, product = scenario.world, scenario.product(5)
    if many:
        cancelled = scenario.place(**{product: 1})
        world.drain()
    created = scenario.place(**{product: 1})
    if many:
        scenario.move(cancelled, "CANCELLED")
        _publish_all(world)
        while world.deliver("inventory") is not None:  # confirms it
            pass
    _publish_all(world)
    assert created


RESERVE = [GET, BATCH_GET, TRANSACT]
TARGETS = {
    "POST /orders": Target(_post_setup, _post, [GET, BATCH_GET, TRANSACT]),
    "PATCH /orders/{id}": Target(_patch_setup, _patch, [GET, UPDATE]),
    "intake_orders": Target(
        _intake_setup, _queue("order-intake"), [GET, BATCH_GET, TRANSACT, GET, UPDATE]
    ),
    "publish_order_events": Target(_publisher_setup, _publish, [WHO, PUBLISH, PUBLISH]),
    "update_inventory": Target(
        _inventory_setup,
        _queue("inventory"),
        [GET, TRANSACT, GET, TRANSACT, *RESERVE],
    ),
    "send_notifications": Target(
        _notifications_setup, _queue("notifications"), [UPDATE, SEND, UPDATE] * 2
    ),
    "update_analytics": Target(_analytics_setup, _queue("analytics"), [TRANSACT] * 3),
}
# One-message deliveries, for crashing the redelivery at each of its positions too.
SINGLE = {
    "POST /orders": TARGETS["POST /orders"],
    "PATCH /orders/{id}": TARGETS["PATCH /orders/{id}"],
    "intake_orders": Target(
        lambda s: _intake_setup(s, cancel=False), _queue("order-intake"), RESERVE
    ),
    "publish_order_events": Target(
        lambda s: _publisher_setup(s, many=False), _publish, [WHO, PUBLISH]
    ),
    "update_inventory": Target(
        lambda s: _inventory_setup(s, many=False), _queue("inventory"), RESERVE
    ),
    "send_notifications": Target(
        lambda s: _notifications_setup(s, many=False),
        _queue("notifications"),
        [UPDATE, SEND, UPDATE],
    ),
    "update_analytics": Target(
        lambda s: _analytics_setup(s, many=False), _queue("analytics"), [TRANSACT]
    ),
}

Crash = tuple[int, bool]  # (call position, after the call's response); position 0: none


def _where(crash: Crash, calls: list[str]) -> str:
    position, after = crash
    return f"{'after' if after else 'before'} call {position} ({calls[position - 1]})"


class Runner:
    """Runs scenarios of one target in one world, numbering them."""

    def __init__(self, world: OrdersWorld, target: Target):
        self.world, self.target, self.runs = world, target, 0

    def run(self, crashes: list[Crash]) -> list[list[str]]:
        """Deliver once per crash (each must happen), then once cleanly, drain, and check.

        Returns each delivery's calls, the clean one last.
        """
        world = self.world
        self.runs += 1
        scenario = Scenario(world, f"s{self.runs}")
        state = self.target.setup(scenario)
        seen: list[list[str]] = []
        for crash in [*crashes, (0, False)]:
            world.injector.crash_at(crash[0], after=crash[1])  # position 0 only counts
            world.mails.at.clear()
            crashed = self.target.deliver(scenario, state)
            calls = list(world.injector.calls)
            seen.append(calls)
            assert crashed == (crash[0] > 0), f"crash {crash} of {calls}"
            self._note_window(scenario, crash, calls)
        try:
            scenario.check()
        except AssertionError as error:
            where = " then ".join(_where(c, s) for c, s in zip(crashes, seen, strict=False))
            raise AssertionError(f"crash {where}: {error}") from None
        return seen

    def _note_window(self, scenario: Scenario, crash: Crash, calls: list[str]) -> None:
        """A crash after SES took a mail and before its mark is the documented window."""
        position, after = crash
        sent_at = position if after else position - 1
        if position and sent_at >= 1 and calls[sent_at - 1] == SEND:
            to, subject = self.world.mails.at[sent_at]
            scenario.window[(to, subject)] += 1


def _all_crashes(calls: list[str]) -> list[Crash]:
    return [(p, after) for p in range(1, len(calls) + 1) for after in (False, True)]


@pytest.mark.parametrize("name", list(TARGETS))
def test_a_crash_at_every_call_then_a_redelivery_keeps_the_orders_invariant(worlds, name):
    target = TARGETS[name]
    with orders_world(worlds) as world:
        runner = Runner(world, target)
        [clean] = runner.run([])
        assert clean == target.calls
        for crash in _all_crashes(clean):
            runner.run([crash])
        assert runner.runs == 1 + 2 * len(target.calls)


# Calls that change something; any other call leaves AWS as it found it.
WRITES = frozenset(
    {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:TransactWriteItems", SEND, PUBLISH}
)


def _writing_crashes(calls: list[str]) -> list[Crash]:
    """One crash for each state a crash can leave behind other than the one before the
    delivery: after each write. A crash before call N+1 leaves what one after call N
    leaves (nothing reaches AWS in between), one after a read what one before it
    leaves; and a crash before any write leaves the world as it was, so its redelivery
    is a first delivery, which the single-crash test crashes at every position."""
    return [(position, True) for position, name in enumerate(calls, 1) if name in WRITES]


@pytest.mark.parametrize("name", list(SINGLE))
def test_a_crash_of_the_redelivery_at_every_call_keeps_the_orders_invariant(worlds, name):
    target = SINGLE[name]
    with orders_world(worlds) as world:
        runner = Runner(world, target)
        [clean] = runner.run([])
        assert clean == target.calls
        firsts = _writing_crashes(clean)
        assert firsts, "a delivery that writes nothing"
        pairs = 0
        for first in firsts:
            _, redelivery = runner.run([first])
            for second in _all_crashes(redelivery):
                runner.run([first, second])
                pairs += 1
        assert pairs >= 2 * len(firsts)
