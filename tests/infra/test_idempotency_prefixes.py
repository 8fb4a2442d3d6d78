"""Least privilege inside the shared idempotency table: each function, its own key prefix.

The order-key records, the inventory and analytics markers and the
notification claims share one table. Each function's grant on it carries a
``dynamodb:LeadingKeys`` condition, so a consumer can neither claim nor
overwrite another's records; the recorded-calls plugin evaluates the
condition against the keys each call really names.
"""

from __future__ import annotations

import pytest

from chalicelib.orders import handlers
from chalicelib.orders.markers import marker_id
from chalicelib.orders.store import key_record_id
from infra import arns, iam
from tests.infra.conftest import stack_for
from tests.orders.flow import OrderFlow
from tests.orders.helpers import place, seed_products
from tests.plugins.iam_calls import Call, Recorder, authorized_requests, conditioned_tables

OWN_PREFIX = {
    "api_handler": "order-key#",
    "intake_orders": "order-key#",
    "update_inventory": "inventory#",
    "update_analytics": "analytics#",
    "send_notifications": "notifications#",
}
ACCOUNT = arns.Account(account_id="123456789012", region="us-east-1")


def idempotency_arn(stack) -> str:
    return ACCOUNT.fill(arns.table(stack.table("idempotency").name))


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_function_reaches_only_its_own_prefix(stage):
    stack = stack_for(stage)
    table = idempotency_arn(stack)
    assert key_record_id("k") == "order-key#k" and marker_id("inventory", "e") == "inventory#e"
    for function in stack.functions:
        policy = iam.fill(iam.policy(stack, function.name), ACCOUNT)
        for owner, prefix in OWN_PREFIX.items():
            for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"):
                context = {iam.LEADING_KEYS: [f"{prefix}e-1"]}
                if iam.allows(policy, action, table, context):
                    assert OWN_PREFIX.get(function.name) == prefix, (function.name, owner, action)
        grants = [s for s in policy["Statement"] if table in s["Resource"]]
        for statement in grants:
            condition = statement["Condition"]["ForAllValues:StringLike"]
            assert condition == {iam.LEADING_KEYS: [OWN_PREFIX[function.name] + "*"]}


def test_a_call_outside_the_prefix_is_a_violation():
    """The plugin evaluates the condition, so the check itself can fail."""
    stack = stack_for("local")
    keyed = conditioned_tables("local")
    table = stack.table("idempotency")
    assert keyed == {table.name: table.partition_key.name}

    def transact(key: str) -> list[Call]:
        params = {
            "TransactItems": [
                {"Put": {"TableName": table.name, "Item": {"id": {"S": key}, "n": {"N": "1"}}}}
            ]
        }
        requests = authorized_requests("dynamodb", "TransactWriteItems", params, "us-east-1", keyed)
        return [Call("local", "update_inventory", a, r, "us-east-1", k) for a, r, k in requests]

    own, other = transact("inventory#e-1"), transact("analytics#e-1")
    assert [call.leading_keys for call in own] == [("inventory#e-1",)]
    assert Recorder(calls=set(own)).violations() == []
    assert Recorder(calls=set(other)).violations() == [
        f"update_inventory calls dynamodb:PutItem on {idempotency_arn(stack)} "
        "with key analytics#e-1"
    ]


@pytest.fixture
def flow(services, outputs):
    return OrderFlow(services, outputs)


def test_the_consumers_recorded_calls_pass_under_the_narrowed_policy(iam_calls, services, flow):
    seed_products(services)
    with iam_calls.capturing() as recorded:
        place(services, customer="cust-prefix", widget=1)
        flow.settle()
        flow.deliver("analytics", handlers.update_analytics)
        flow.deliver("notifications", handlers.send_notifications)

    table = services.settings.idempotency_table
    keyed = {c.function: c.leading_keys for c in recorded if c.resource.endswith(f"/{table}")}
    for function in ("update_inventory", "update_analytics", "send_notifications"):
        assert keyed.get(function), f"{function} wrote no idempotency record"
        assert all(key.startswith(OWN_PREFIX[function]) for key in keyed[function])
    assert Recorder(calls=set(recorded)).violations() == []
