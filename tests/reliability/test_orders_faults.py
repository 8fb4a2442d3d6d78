"""Transient AWS faults under botocore's retries, on the orders' consumers.

Throttling, 5xx and lost responses are injected at the HTTP level of the
consumers' own clients (:mod:`tests.reliability.faults`), on every second
request of each kind at once: the inventory's and the analytics' transactions (with
their processed-event markers), the notifications' claims and marks, and the
publisher's ``PublishBatch``. Orders then live their whole lives (confirmed,
shipped, delivered; cancelled after confirmation and while pending; rejected
for stock) with the fault active throughout, and the orders' invariant must
hold (:mod:`tests.reliability.orders_invariants`): one mail per event, stock
and counters moved once, every order with its events, every DLQ empty.

A lost response is the fault botocore cannot see through: the write landed
and the retry meets it. A transaction's retry meets its own marker (moto; AWS
would answer success to the repeated token), a PublishBatch's retry publishes
again (the consumers deduplicate), and a claim's or a mark's retry meets the
claim as this very delivery left it, which the claim's token tells apart from
another delivery's (:mod:`chalicelib.orders.claims`).

SNS answers a throttled ``PublishBatch`` with ``Throttled`` (HTTP 429).
PublishBatch does not model that error, so botocore's standard mode retries it
as it retries any 429; the records are handed back to the stream mapping only
once those retries are spent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from chalicelib.orders import notifications
from tests.reliability.faults import Call, Every, LostResponse, Rule, ServerError, Throttle
from tests.reliability.orders_invariants import Scenario
from tests.reliability.orders_world import orders_world


@dataclass(frozen=True)
class On:
    """The calls of one operation whose request body contains ``text``."""

    name: str
    text: str = ""

    def __call__(self, call: Call) -> bool:
        if call.name != self.name:
            return False
        body = call.request.body
        return self.text in (body.decode() if isinstance(body, bytes) else body or "")


TARGETS = {
    "inventory-transaction": On("dynamodb:TransactWriteItems", "inventory#"),
    "analytics-transaction": On("dynamodb:TransactWriteItems", "analytics#"),
    "notifications-claim": On("dynamodb:UpdateItem", "if_not_exists(attempts"),
    "notifications-mark": On("dynamodb:UpdateItem", "claim_state = :sent"),
    "publisher-publish-batch": On("sns:PublishBatch"),
}
FAULTS: dict[str, Callable[[On], Rule]] = {
    "throttled": lambda on: Throttle(on, Every(2)),
    "5xx": lambda on: ServerError(on, Every(2)),
    "lost-response": lambda on: LostResponse(on, Every(2)),
}


def live_orders(scenario: Scenario) -> None:
    """Orders through every kind of life, settled after each step."""
    world = scenario.world
    product = scenario.product(3)
    delivered = scenario.place(**{product: 1})
    cancelled = scenario.place(**{product: 1})
    scenario.place(**{product: 5})  # more than the stock: rejected
    scenario.move(scenario.place(**{product: 1}), "CANCELLED")  # while pending
    world.drain()
    scenario.move(delivered, "SHIPPED")
    scenario.move(cancelled, "CANCELLED")
    world.drain()
    scenario.move(delivered, "DELIVERED")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_transient_faults_on_the_consumers_keep_the_orders_invariant(worlds, fault):
    """The fault on every second request of each of the five kinds at once."""
    rules = {target: FAULTS[fault](on) for target, on in TARGETS.items()}
    with orders_world(worlds, *rules.values()) as world:
        scenario = Scenario(world, "faults")
        live_orders(scenario)
        scenario.check()
        assert not [target for target, rule in rules.items() if not rule.injected], (
            f"{fault} never hit these"
        )


def _emf_metrics(out: str) -> set[str]:
    """The metric names in the EMF lines printed (Powertools prints them to stdout)."""
    names = set()
    for line in out.splitlines():
        if '"_aws"' in line:
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                names |= {metric["Name"] for metric in directive["Metrics"]}
    return names


@pytest.mark.parametrize("target", ["notifications-claim", "notifications-mark"])
def test_a_claim_or_mark_whose_response_was_lost_is_the_delivery_s_own(
    worlds, capsys, caplog, target
):
    """The retry of a lost claim finds SENDING with its own token: it holds the claim
    (not "held by another delivery", which would wait out its own lease and could
    spend the message's receives). The retry of a lost mark finds SENT with its own
    token: the mail went once and is marked (not "taken over; may go twice")."""
    first_only = LostResponse(TARGETS[target], Every(1_000))
    with orders_world(worlds, first_only) as world:
        scenario = Scenario(world, "lost")
        order_id = scenario.place(**{scenario.product(3): 1})
        capsys.readouterr()
        caplog.clear()
        scenario.check()  # one mail per event, every DLQ empty
        out = capsys.readouterr().out
        assert first_only.injected == 1
        claims = notifications.claims(world.services())
        created = next(e for e in scenario.events.values() if e["version"] == 1)
        assert created["order_id"] == order_id
        record = claims.get(created["event_id"])
        assert (record["claim_state"], record["attempts"]) == ("SENT", 1), record
        metrics = _emf_metrics(out)
        assert "NotificationsSent" in metrics  # the capture sees the consumer's metrics
        assert not metrics & {"NotificationsLeaseLost", "NotificationsBusy"}, metrics
        logged = " ".join(caplog.messages)
        assert "notification handled" in logged  # the capture sees its logs too
        assert "may go twice" not in logged
