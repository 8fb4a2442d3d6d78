"""The stream handler, fed the orders table's real stream records (moto's, not hand-built)."""

from __future__ import annotations

import json

import pytest

from chalicelib.orders import events, handlers, service
from chalicelib.orders.states import Actor, Status
from tests.orders.helpers import place, seed_products
from tests.orders.streams import received, stream_records, subscribe_queue


@pytest.fixture
def tap(services):
    seed_products(services)
    return subscribe_queue(services, "tap")


def publish(services, records):
    return handlers.publish_order_events({"Records": records}, None, services)


def bodies(messages):
    return [json.loads(m["Body"]) for m in messages]


def test_each_kind_of_change_becomes_at_most_one_event(services, tap):
    order = place(services, widget=2)
    service.change_status(order["order_id"], Status.CANCELLED, Actor.CLIENT, services)
    table, key = services.settings.orders_table, {"order_id": {"S": order["order_id"]}}
    ddb = services.clients.dynamodb
    ddb.update_item(  # a change that moves no status
        TableName=table,
        Key=key,
        UpdateExpression="SET note = :n",
        ExpressionAttributeValues={":n": {"S": "gift wrap"}},
    )
    ddb.delete_item(TableName=table, Key=key)
    records = stream_records(services)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "MODIFY", "REMOVE"]

    assert publish(services, records) == {"batchItemFailures": []}
    created, cancelled = bodies(received(services, tap))
    assert created == {
        "event_id": events.event_id(order["order_id"], 1),
        "event_type": "ORDER_CREATED",
        "order_id": order["order_id"],
        "customer_id": "cust-1",
        "customer_email": "cust-1@example.com",
        "old_status": None,
        "new_status": "PENDING",
        "items": order["items"],
        "total": "25.00",
        "version": 1,
        "occurred_at": order["created_at"],
        "reason": None,
    }
    assert cancelled["event_type"] == "ORDER_CANCELLED"
    assert (cancelled["old_status"], cancelled["new_status"]) == ("PENDING", "CANCELLED")
    assert cancelled["event_id"] == events.event_id(order["order_id"], 2)


def test_events_carry_the_attributes_that_filter_policies_match(services, tap):
    place(services, widget=2)
    publish(services, stream_records(services))
    [message] = received(services, tap)
    attributes = message["MessageAttributes"]
    assert attributes["event_type"] == {"DataType": "String", "StringValue": "ORDER_CREATED"}
    assert attributes["new_status"] == {"DataType": "String", "StringValue": "PENDING"}
    assert attributes["total"] == {"DataType": "Number", "StringValue": "25.00"}


def test_a_status_change_event(services, tap):
    order = place(services, gadget=1)
    service.change_status(order["order_id"], Status.CONFIRMED, Actor.SYSTEM, services)
    publish(services, stream_records(services))
    _, confirmed = bodies(received(services, tap))
    assert confirmed["event_type"] == "ORDER_STATUS_CHANGED"
    assert (confirmed["old_status"], confirmed["new_status"], confirmed["version"]) == (
        "PENDING",
        "CONFIRMED",
        2,
    )


def test_redelivered_records_publish_events_with_the_same_ids(services, tap):
    """Lambda retries a batch, or an operator replays the stream: the same records are
    published again as the same events (same id, same body, the id as the FIFO topic's
    deduplication id), so AWS's topic drops them and every consumer can."""
    place(services, widget=1)
    place(services, gadget=2)
    records = stream_records(services)
    published: list[list[dict]] = []
    sns = services.clients.sns
    hook = "provide-client-params.sns.PublishBatch"

    def note(params, **_):
        published.append(params["PublishBatchRequestEntries"])

    sns.meta.events.register(hook, note)
    try:
        assert publish(services, records) == {"batchItemFailures": []}
        first = [e for call in published for e in call]
        published.clear()
        assert publish(services, records) == {"batchItemFailures": []}
        again = [e for call in published for e in call]
    finally:
        sns.meta.events.unregister(hook, note)

    ids = [json.loads(e["Message"])["event_id"] for e in first]
    assert len(set(ids)) == 2
    assert [e["MessageDeduplicationId"] for e in first] == ids
    sent = [(e["Message"], e["MessageDeduplicationId"], e["MessageGroupId"]) for e in first]
    assert [(e["Message"], e["MessageDeduplicationId"], e["MessageGroupId"]) for e in again] == sent
    # What reached a subscriber is those events and no other.
    assert {b["event_id"] for b in bodies(received(services, tap))} == set(ids)


class FailEntries:
    """Makes SNS refuse chosen PublishBatch entries: they are removed from the
    request before it is sent, and reported in the response's ``Failed`` list,
    as SNS reports an entry it did not publish."""

    def __init__(self, sns, fail_ids: set[str]):
        self.fail_ids = fail_ids
        self.removed: list[str] = []
        sns.meta.events.register("provide-client-params.sns.PublishBatch", self.drop)
        sns.meta.events.register("after-call.sns.PublishBatch", self.report)
        self.sns = sns

    def drop(self, params, **_):
        entries = params["PublishBatchRequestEntries"]
        self.removed = [e["Id"] for e in entries if e["Id"] in self.fail_ids]
        params["PublishBatchRequestEntries"] = [e for e in entries if e["Id"] not in self.fail_ids]
        return params

    def report(self, parsed, **_):
        parsed.setdefault("Failed", []).extend(
            {"Id": i, "Code": "InternalError", "SenderFault": False, "Message": "injected"}
            for i in self.removed
        )

    def close(self):
        self.sns.meta.events.unregister("provide-client-params.sns.PublishBatch", self.drop)
        self.sns.meta.events.unregister("after-call.sns.PublishBatch", self.report)


def test_a_publish_failure_is_reported_by_sequence_number_from_the_first_failure(services, tap):
    orders = [place(services, widget=n) for n in (1, 2, 3)]
    records = stream_records(services)
    injector = FailEntries(services.clients.sns, {"1"})
    try:
        response = publish(services, records)
    finally:
        injector.close()
    sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in sequences[1:]]}
    got = {b["order_id"] for b in bodies(received(services, tap))}
    assert orders[1]["order_id"] not in got and orders[0]["order_id"] in got

    # Lambda retries from the lowest sequence reported: everything arrives.
    assert publish(services, records[1:]) == {"batchItemFailures": []}
    got |= {b["order_id"] for b in bodies(received(services, tap))}
    assert got == {o["order_id"] for o in orders}


def test_a_batch_never_holds_two_events_of_one_order(services, tap):
    order = place(services, widget=1)
    service.change_status(order["order_id"], Status.CONFIRMED, Actor.SYSTEM, services)
    service.change_status(order["order_id"], Status.SHIPPED, Actor.CLIENT, services)
    calls = []
    services.clients.sns.meta.events.register(
        "provide-client-params.sns.PublishBatch",
        lambda params, **_: calls.append(len(params["PublishBatchRequestEntries"])),
    )
    publish(services, stream_records(services))
    assert calls == [1, 1, 1]
    assert [b["version"] for b in bodies(received(services, tap))] == [1, 2, 3]


def test_a_poison_record_is_reported_after_its_predecessors_are_published(services, tap):
    place(services, widget=1)
    good = stream_records(services)
    poison = json.loads(json.dumps(good[0]))
    poison["dynamodb"]["SequenceNumber"] = "99999999999999999999"
    del poison["dynamodb"]["NewImage"]["status"]
    response = publish(services, [*good, poison])
    assert response == {"batchItemFailures": [{"itemIdentifier": "99999999999999999999"}]}
    assert len(received(services, tap)) == 1
