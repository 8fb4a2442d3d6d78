"""Notifications on a real local cloud: the outbox, redelivery through the runtime, the DLQ.

Every email is read back the way a developer reads it, from the outbox the
local cloud serves at ``/_aws/ses``. Clouds in one process share moto's state,
so each test names its own customers and looks only at their mail.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid
from collections import Counter

import pytest
from rich.console import Console

from chalicelib.batch import RetryPolicy
from chalicelib.services import Services
from chalicelib.services import services as app_services
from localcloud.cloud import LocalCloud
from ops.__main__ import main as ops_main
from tests.localcloud.http_api import call
from tests.localcloud.test_orders_e2e import drain, subscribe, wait_for


@pytest.fixture
def fast_retries(monkeypatch):
    # Failed messages come back after 1 s instead of the stage's 2 s doubling,
    # so five receives (and the DLQ) take seconds.
    fast = RetryPolicy(base_seconds=1, cap_seconds=1)
    monkeypatch.setattr(Services, "sqs_retry", property(lambda self: fast))
    monkeypatch.setattr("ops.queues.WAIT_SECONDS", 0)


@pytest.fixture
def cloud(fast_retries):
    with LocalCloud(aws_port=0, api_port=0) as running:
        yield running


def outbox(cloud: LocalCloud, query: str = "", method: str = "GET") -> tuple[int, dict | None]:
    request = urllib.request.Request(f"{cloud.aws_endpoint}/_aws/ses{query}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def mail_to(cloud: LocalCloud, address: str) -> list[dict]:
    return outbox(cloud, f"?email={address}")[1]["messages"]


def ops(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = ops_main(["--stage", "local", *argv], console=Console(file=out, width=240))
    return code, out.getvalue()


def customer(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def place(cloud: LocalCloud, who: str, **lines: int) -> dict:
    body = {
        "customer_id": who,
        "customer_email": f"{who}@example.com",
        "items": [{"product_id": p, "quantity": q} for p, q in lines.items()],
    }
    status, order = call(cloud.api_port, "POST", "/orders", body)
    assert status == 201, order
    return order


def products(cloud: LocalCloud, suffix: str) -> tuple[str, str]:
    """Two products of this test's own: plenty of widgets, three gadgets."""
    widget, gadget = f"widget-{suffix}", f"gadget-{suffix}"
    for product_id, price, stock in ((widget, "12.50", 100), (gadget, "3.99", 3)):
        body = {"name": product_id, "price": price, "stock": stock}
        assert call(cloud.api_port, "PUT", f"/products/{product_id}", body)[0] in (200, 201)
    return widget, gadget


def status_of(cloud: LocalCloud, order: dict) -> str:
    return call(cloud.api_port, "GET", f"/orders/{order['order_id']}")[1]["status"]


def queue_empty(cloud: LocalCloud, key: str) -> bool:
    attributes = cloud.clients.sqs.get_queue_attributes(
        QueueUrl=cloud.outputs.queues[key]["url"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


def test_the_outbox_lists_filters_and_empties_what_ses_sent_and_ops_mail_reads_it(cloud):
    ses, sender = cloud.clients("ses"), cloud.stack.settings.mail_from
    ann, bob = f"{customer('ann')}@example.com", f"{customer('bob')}@example.com"
    for to, subject in ((ann, "for ann"), (bob, "for bob"), (ann, "ann again")):
        ses.send_email(
            Source=sender,
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": subject},
                "Body": {"Text": {"Data": f"text {subject}"}, "Html": {"Data": "<p>hi</p>"}},
            },
        )

    status, body = outbox(cloud)
    assert status == 200
    mine = [m for m in body["messages"] if m["Destination"]["ToAddresses"][0] in (ann, bob)]
    assert [m["Subject"] for m in mine] == ["for ann", "for bob", "ann again"]
    first = mine[0]
    assert set(first) == {
        "Id", "Region", "Source", "Destination", "Subject", "Body", "Timestamp"}  # fmt: skip
    assert (first["Region"], first["Source"]) == ("us-east-1", sender)
    # Both parts kept, though moto itself keeps only one.
    assert first["Body"] == {"text_part": "text for ann", "html_part": "<p>hi</p>"}
    assert first["Timestamp"].endswith("Z")
    assert [m["Subject"] for m in mail_to(cloud, ann)] == ["for ann", "ann again"]
    assert len(mail_to(cloud, sender)) >= 3  # the sender matches too

    code, out = ops("mail", "--email", ann)
    assert code == 0 and "Outbox: 2 message(s)" in out and "ann again" in out
    code, out = ops("mail", "--email", bob, "--json")
    assert code == 0 and [m["Subject"] for m in json.loads(out)["messages"]] == ["for bob"]
    code, out = ops("status")
    assert code == 0 and "Mail" in out

    assert outbox(cloud, method="POST")[0] == 405
    assert outbox(cloud, method="DELETE")[0] == 204
    assert outbox(cloud)[1] == {"messages": []}
    code, out = ops("mail", "--clear")
    assert code == 0 and "(0 message(s))" in out


def test_every_event_fed_three_times_through_the_runtime_sends_one_email_each(cloud):
    suffix = uuid.uuid4().hex[:8]
    widget, gadget = products(cloud, suffix)
    tap = subscribe(cloud, None)
    kept, cancelled, rejected = customer("kept"), customer("cancel"), customer("short")
    orders = [place(cloud, kept, **{widget: 2}), place(cloud, cancelled, **{widget: 1})]
    orders.append(place(cloud, rejected, **{gadget: 4}))
    wait_for(lambda: status_of(cloud, orders[1]) == "CONFIRMED")
    assert call(cloud.api_port, "PATCH", f"/orders/{orders[1]['order_id']}",
                {"status": "CANCELLED"})[0] == 200  # fmt: skip
    expected = {kept: 2, cancelled: 3, rejected: 2}  # received, then the verdicts

    def all_mail_arrived():
        counts = {who: len(mail_to(cloud, f"{who}@example.com")) for who in expected}
        return counts if counts == expected else None

    wait_for(all_mail_arrived)
    ours = {o["order_id"] for o in orders}
    events: list[str] = []

    def all_events_tapped() -> bool:
        events.extend(json.dumps(e) for e in drain(cloud, tap) if e["order_id"] in ours)
        return len(events) == 7

    wait_for(all_events_tapped)

    # Every event twice more, in batches that mix copies, so some copies are
    # handled while another invocation holds the same event's claim.
    copies = events * 2
    sqs, url = cloud.clients.sqs, cloud.outputs.queues["notifications"]["url"]
    claimed: Counter[str] = Counter()

    def count_claims(params, **_):
        key = params.get("Key", {}).get("id", {}).get("S", "")
        if key.startswith("notifications#") and "attribute_not_exists" in params.get(
            "ConditionExpression", ""
        ):
            claimed[key] += 1

    handlers_ddb = app_services().clients.dynamodb
    handlers_ddb.meta.events.register("before-parameter-build.dynamodb.UpdateItem", count_claims)
    for start in range(0, len(copies), 10):
        entries = [
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(copies[start : start + 10])
        ]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
    wait_for(lambda: queue_empty(cloud, "notifications") and cloud.runtime.wait_until_idle(5))
    handlers_ddb.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", count_claims)

    # Every copy reached the handler and asked for its event's claim (a copy that
    # met a live lease asked again after its backoff), and none of them sent.
    assert len(claimed) == 7 and all(n >= 2 for n in claimed.values())

    assert all_mail_arrived() == expected
    for who in expected:
        subjects = Counter(m["Subject"] for m in mail_to(cloud, f"{who}@example.com"))
        assert set(subjects.values()) == {1}, subjects
    assert queue_empty(cloud, "notifications-dlq")


def test_a_poison_body_and_mail_refused_for_our_sender_reach_the_dlq_and_come_back(cloud):
    ses, sender = cloud.clients("ses"), cloud.stack.settings.mail_from
    sqs, dlq = cloud.clients.sqs, cloud.outputs.queues["notifications-dlq"]["url"]
    widget, _ = products(cloud, uuid.uuid4().hex[:8])
    who = customer("unverified")
    poison = f"not an order event {uuid.uuid4().hex}"

    def dead_letters() -> list[str]:
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [m["Body"] for m in got.get("Messages", [])]

    ses.delete_identity(Identity=sender)  # a deploy that forgot to verify the sender
    try:
        sqs.send_message(QueueUrl=cloud.outputs.queues["notifications"]["url"], MessageBody=poison)
        order = place(cloud, who, **{widget: 1})
        # The poison body, and both emails of the order (received, confirmed).
        wait_for(lambda: len(dead_letters()) == 3, timeout=90)
        assert mail_to(cloud, f"{who}@example.com") == []
    finally:
        ses.verify_email_identity(EmailAddress=sender)  # the fix

    code, out = ops("dlq", "redrive", "notifications")
    assert code == 0 and "moved 3 message(s)" in out, out
    wait_for(lambda: len(mail_to(cloud, f"{who}@example.com")) == 2)
    assert {m["Subject"] for m in mail_to(cloud, f"{who}@example.com")} == {
        f"We received your order {order['order_id']}",
        f"Your order {order['order_id']} is confirmed",
    }
    # The poison body came back too, and, being no event, fails its way back.
    wait_for(lambda: dead_letters() == [poison], timeout=90)
    for message in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]:
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
