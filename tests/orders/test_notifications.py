"""The notifications consumer under moto: templates, the claim and its lease, SES's answers.

Time is the test's: the services run on a :class:`ManualClock`, and a lease
expires because the test moves the clock past it, never by sleeping. Mail is
read back from moto's SES through the local outbox (:mod:`localcloud.outbox`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.orders import claims, emails, handlers, notifications, service
from chalicelib.orders.claims import ClaimHeld, Settled
from chalicelib.orders.events import OrderEvent, parse_event
from chalicelib.orders.states import TRANSITIONS, Actor, Status
from localcloud import outbox
from localcloud.motopatch import applied
from tests.conftest import InstantClock
from tests.orders.flow import OrderFlow
from tests.orders.helpers import place, seed_products

LEASE = timedelta(seconds=35)


class ManualClock(InstantClock):
    """Stands still until the test moves it."""

    def __init__(self) -> None:
        super().__init__()
        self.current = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


class Crash(BaseException):
    """The function's process died here: nothing after it runs, no handler catches it."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def mail(services):
    with applied(outbox.SEND_EMAIL):
        yield lambda email=None: outbox.messages(email)


@pytest.fixture
def flow(services, outputs):
    seed_products(services)  # widget: 100 at 12.50, gadget: 10 at 3.99
    return OrderFlow(services, outputs)


def move(services, order, status):
    return service.change_status(order["order_id"], Status(status), Actor.CLIENT, services)


def queued_events(services, outputs) -> list[OrderEvent]:
    """Take every event off the notifications queue, as SNS delivered it."""
    sqs, url = services.clients.sqs, outputs.queues["notifications"]["url"]
    found = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            found.append(parse_event(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def every_kind_of_event(services, flow) -> list[OrderEvent]:
    """Real events of every kind, through the API's service, the stream and the topic."""
    shipped = place(services, "cust-ship", widget=2, gadget=1)
    place(services, "cust-short", gadget=11)
    cancelled = place(services, "cust-cancel", widget=1)
    flow.settle()
    move(services, shipped, "SHIPPED")
    move(services, cancelled, "CANCELLED")
    flow.settle()
    move(services, shipped, "DELIVERED")
    flow.settle()
    return queued_events(services, flow.outputs)


def ses_calls(services) -> Counter:
    """Counts the SES and DynamoDB operations the app's clients make from now on."""
    seen: Counter = Counter()

    def note(model, **_):
        seen[model.name] += 1

    services.clients.dynamodb.meta.events.register("before-call.dynamodb", note)
    services.clients("ses").meta.events.register("before-call.ses", note)
    return seen


def on_send(services, stage: str, action) -> None:
    """Run ``action`` before SendEmail reaches SES, or after SES answered (``stage``)."""
    services.clients("ses").meta.events.register(f"{stage}-call.ses.SendEmail", action)


def ses_error(code: str, message: str, status: int = 400):
    """A before-call hook that answers SendEmail with an SES error; SES never sees it."""

    def answer(**_):
        body = {"Error": {"Code": code, "Message": message, "Type": "Sender"}}
        return AWSResponse("https://email.invalid", status, {}, None), body

    return answer


# -- templates ---------------------------------------------------------------------


def test_every_status_a_move_can_reach_has_a_template_and_no_template_is_unused():
    reachable = {str(target).lower() for moves in TRANSITIONS.values() for target in moves}
    assert set(emails.kinds()) == reachable | {"created"}


def test_every_template_renders_with_a_real_event(services, flow):
    events = every_kind_of_event(services, flow)
    by_kind = {emails.kind_of(e): e for e in events}
    assert set(by_kind) == set(emails.kinds())
    for event in events:
        email = emails.render(event)
        assert email.to == event.customer_email
        assert event.order_id in email.subject and "$" not in email.subject
        assert "\n" not in email.subject
        assert "$" not in email.text and email.text.startswith("Hello,\n")
        assert event.customer_id not in email.text + email.subject
        for line in event.items:
            assert f"{line['quantity']} x {line['product_id']} at {line['unit_price']}" in (
                email.text
            )
    [shipped_order] = [e for e in events if e.customer_id == "cust-ship" and e.version == 1]
    created = emails.render(shipped_order)
    assert "Total: 28.99" in created.text and "received" in created.subject
    assert "Why: insufficient stock: gadget (wanted 11," in (
        emails.render(by_kind["rejected"]).text
    )
    assert "(it was CONFIRMED)" in emails.render(by_kind["cancelled"]).text
    # The customer reads a date, not a timestamp.
    assert "1 Dec 2026, 09:30 UTC" in emails.render(by_kind["shipped"]).text


def test_no_template_can_echo_the_caller_chosen_customer_id(services, flow, tmp_path, monkeypatch):
    event = every_kind_of_event(services, flow)[0]
    for path in emails.TEMPLATES_DIR.iterdir():
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "created.txt").write_text("Hello $customer_id, your order $order_id\n")
    monkeypatch.setattr(emails, "TEMPLATES_DIR", tmp_path)
    emails.templates.cache_clear()
    try:
        with pytest.raises(KeyError, match="customer_id"):
            emails.render(replace(event, event_type="ORDER_CREATED"))
    finally:
        emails.templates.cache_clear()


def test_a_template_naming_a_value_that_does_not_exist_fails_instead_of_mailing_it(
    services, flow, tmp_path, monkeypatch
):
    event = every_kind_of_event(services, flow)[0]
    for path in emails.TEMPLATES_DIR.iterdir():
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "created.txt").write_text("Dear $customer_name, your order $order_id\n")
    monkeypatch.setattr(emails, "TEMPLATES_DIR", tmp_path)
    emails.templates.cache_clear()
    try:
        with pytest.raises(KeyError, match="customer_name"):
            emails.render(replace(event, event_type="ORDER_CREATED"))
    finally:
        emails.templates.cache_clear()


def test_an_event_without_a_template_is_an_error_not_a_silent_drop(services, flow):
    event = replace(every_kind_of_event(services, flow)[0], new_status="ON_HOLD")
    event = replace(event, event_type="ORDER_STATUS_CHANGED")
    with pytest.raises(emails.UnknownEmailKind, match="on_hold"):
        emails.render(event)


# -- one email per event -----------------------------------------------------------


def test_each_event_sends_one_email_from_the_sender_with_claim_send_mark(services, flow, mail):
    order = place(services, "cust-mail", widget=2)
    flow.settle()
    calls = ses_calls(services)
    responses = flow.deliver("notifications", handlers.send_notifications)
    assert responses == [{"batchItemFailures": []}]
    # Per event: the claim (UpdateItem), SendEmail, the mark (UpdateItem).
    assert calls == Counter({"UpdateItem": 4, "SendEmail": 2})

    sent = mail("cust-mail@example.com")
    assert [m["Subject"] for m in sent] == [
        f"We received your order {order['order_id']}",
        f"Your order {order['order_id']} is confirmed",
    ]
    assert all(m["Source"] == services.settings.mail_from for m in sent)
    assert all(m["Destination"]["ToAddresses"] == ["cust-mail@example.com"] for m in sent)
    assert "Total: 25.00" in sent[0]["Body"]["text_part"] and sent[0]["Body"]["html_part"] is None


def test_every_event_delivered_three_times_sends_one_email_each(services, flow, mail):
    events = every_kind_of_event(services, flow)
    sqs, url = services.clients.sqs, flow.outputs.queues["notifications"]["url"]
    for copy in range(3):
        for event in events if copy % 2 == 0 else reversed(events):
            sqs.send_message(QueueUrl=url, MessageBody=event.body())
    responses = flow.deliver("notifications", handlers.send_notifications)
    assert all(r == {"batchItemFailures": []} for r in responses)
    sent = mail()
    assert len(sent) == len(events) == 9
    for event in events:
        record = notifications.claims(services).get(event.event_id)
        assert (record["claim_state"], record["attempts"]) == ("SENT", 1)


def test_a_redelivered_event_costs_one_call_and_sends_nothing(services, flow, mail):
    place(services, "cust-dup", widget=1)
    flow.publish()
    [event] = queued_events(services, flow.outputs)
    assert notifications.apply(event, services, LEASE) == "sent"
    calls = ses_calls(services)
    assert notifications.apply(event, services, LEASE) == "duplicate"
    # The refused claim answers with the record itself: no second read.
    assert calls == Counter({"UpdateItem": 1})
    assert len(mail("cust-dup@example.com")) == 1
    record = notifications.claims(services).get(event.event_id)
    assert (record["claim_state"], record["attempts"]) == ("SENT", 1)
    assert record["ses_message_id"] == mail("cust-dup@example.com")[0]["Id"]
    # Expires through the table's TTL, like the processed-event markers.
    assert record["expires_at"] == int((services.clock.now() + timedelta(days=15)).timestamp())


# -- the lease and the crash points ------------------------------------------------


@pytest.fixture
def event(services, flow) -> OrderEvent:
    place(services, "cust-lease", gadget=1)
    flow.publish()
    [created] = queued_events(services, flow.outputs)
    return created


def test_a_crash_after_the_claim_and_before_the_send_sends_once_after_the_lease(
    services, event, mail, clock
):
    def crash(**_):
        raise Crash()

    on_send(services, "before", crash)
    with pytest.raises(Crash):
        notifications.apply(event, services, LEASE)
    services.clients("ses").meta.events.unregister("before-call.ses.SendEmail", crash)
    assert mail("cust-lease@example.com") == []

    # A redelivery while the dead delivery's lease is live must not send.
    with pytest.raises(ClaimHeld):
        notifications.apply(event, services, LEASE)
    clock.advance(LEASE - timedelta(seconds=1))
    with pytest.raises(ClaimHeld):
        notifications.apply(event, services, LEASE)
    assert mail("cust-lease@example.com") == []

    clock.advance(timedelta(seconds=1))  # the lease has ended
    assert notifications.apply(event, services, LEASE) == "sent"
    assert notifications.apply(event, services, LEASE) == "duplicate"
    assert len(mail("cust-lease@example.com")) == 1
    assert notifications.claims(services).get(event.event_id)["attempts"] == 2


def test_a_crash_after_ses_accepted_and_before_the_mark_is_the_documented_window(
    services, event, mail, clock
):
    """docs/orders.md: the one way to get two emails. The lease keeps the second one
    away while the first delivery may still be running; after it, the event is sent again."""

    def crash(**_):
        raise Crash()

    on_send(services, "after", crash)
    with pytest.raises(Crash):
        notifications.apply(event, services, LEASE)
    services.clients("ses").meta.events.unregister("after-call.ses.SendEmail", crash)
    assert len(mail("cust-lease@example.com")) == 1
    assert notifications.claims(services).get(event.event_id)["claim_state"] == "SENDING"

    with pytest.raises(ClaimHeld):
        notifications.apply(event, services, LEASE)
    assert len(mail("cust-lease@example.com")) == 1

    clock.advance(LEASE)
    assert notifications.apply(event, services, LEASE) == "sent"
    assert len(mail("cust-lease@example.com")) == 2  # the window, realised
    record = notifications.claims(services).get(event.event_id)
    assert (record["claim_state"], record["attempts"]) == ("SENT", 2)


def test_a_holder_whose_lease_was_taken_over_cannot_mark_the_claim(services, event, clock):
    store = notifications.claims(services)
    first = store.claim(event.event_id, LEASE, {})
    clock.advance(LEASE)
    second = store.claim(event.event_id, LEASE, {})
    assert (first.attempt, second.attempt) == (1, 2)
    assert store.mark_sent(first, "late") is False
    assert store.mark_sent(second, "on-time") is True
    assert store.get(event.event_id)["ses_message_id"] == "on-time"
    assert store.claim(event.event_id, LEASE, {}) == Settled(second.key, "SENT")


def test_the_lease_lasts_the_invocation_s_remaining_time_and_a_margin():
    class Context:
        def get_remaining_time_in_millis(self):
            return 29_500

    assert claims.lease_for(Context()) == timedelta(milliseconds=29_500) + claims.LEASE_MARGIN
    # Without a deadline (a direct call), the longest a Lambda invocation can live.
    assert claims.lease_for(None) == timedelta(minutes=15) + claims.LEASE_MARGIN


# -- what SES answers --------------------------------------------------------------


def test_ses_throttling_fails_the_message_and_releases_the_claim_for_the_retry(
    services, event, mail
):
    throttle = ses_error("Throttling", "Maximum sending rate exceeded.")
    on_send(services, "before", throttle)
    with pytest.raises(Exception, match="Throttling"):
        notifications.apply(event, services, LEASE)
    services.clients("ses").meta.events.unregister("before-call.ses.SendEmail", throttle)
    # SES certainly did not take the mail: the retry need not wait out the lease.
    assert notifications.apply(event, services, LEASE) == "sent"
    assert len(mail("cust-lease@example.com")) == 1


def test_an_address_ses_refuses_is_recorded_as_rejected_and_not_retried(services, event, mail):
    # moto refuses an address without a domain, as SES does.
    bad = replace(event, customer_email="nobody")
    assert notifications.apply(bad, services, LEASE) == "rejected"
    record = notifications.claims(services).get(event.event_id)
    assert record["claim_state"] == "REJECTED"
    assert "InvalidParameterValue" in record["rejected_reason"]
    assert notifications.apply(bad, services, LEASE) == "duplicate"
    assert mail("nobody") == []


def test_a_recipient_refused_in_the_sandbox_is_rejected(services, event, mail):
    refusal = "Email address is not verified. The following identities failed the check"
    refused = ses_error("MessageRejected", f"{refusal}: cust-lease@example.com")
    on_send(services, "before", refused)
    assert notifications.apply(event, services, LEASE) == "rejected"
    record = notifications.claims(services).get(event.event_id)
    assert record["claim_state"] == "REJECTED" and refusal in record["rejected_reason"]
    # Once SES would take the mail, a redelivery still sends nothing: the verdict stands.
    services.clients("ses").meta.events.unregister("before-call.ses.SendEmail", refused)
    assert notifications.apply(event, services, LEASE) == "duplicate"
    assert mail("cust-lease@example.com") == []


def test_an_unverified_sender_fails_the_message_for_a_redrive_after_the_fix(services, event, mail):
    ses = services.clients("ses")
    ses.delete_identity(Identity=services.settings.mail_from)
    with pytest.raises(Exception, match="MessageRejected"):
        notifications.apply(event, services, LEASE)
    assert notifications.claims(services).get(event.event_id)["claim_state"] == "SENDING"
    ses.verify_email_identity(EmailAddress=services.settings.mail_from)  # the fix
    assert notifications.apply(event, services, LEASE) == "sent"
    assert len(mail("cust-lease@example.com")) == 1


# -- the handler -------------------------------------------------------------------


def test_the_handler_fails_a_body_that_is_not_an_event_and_a_held_claim(services, flow, mail):
    sqs, url = services.clients.sqs, flow.outputs.queues["notifications"]["url"]
    place(services, "cust-held", widget=1)
    flow.publish()
    [event] = queued_events(services, flow.outputs)
    notifications.claims(services).claim(event.event_id, LEASE, {})  # another delivery holds it
    sqs.send_message(QueueUrl=url, MessageBody="not an event")
    sqs.send_message(QueueUrl=url, MessageBody=event.body())

    [response] = flow.deliver("notifications", handlers.send_notifications)
    assert len(response["batchItemFailures"]) == 2
    assert mail("cust-held@example.com") == []


def test_the_subscription_delivers_every_event_type_from_the_fifo_topic(services, flow):
    events = every_kind_of_event(services, flow)
    assert {(e.event_type, e.new_status) for e in events} == {
        ("ORDER_CREATED", "PENDING"),
        ("ORDER_STATUS_CHANGED", "CONFIRMED"),
        ("ORDER_STATUS_CHANGED", "REJECTED"),
        ("ORDER_STATUS_CHANGED", "SHIPPED"),
        ("ORDER_STATUS_CHANGED", "DELIVERED"),
        ("ORDER_CANCELLED", "CANCELLED"),
    }
    # Exactly one delivery per event: nine events for three orders.
    assert len(events) == len({e.event_id for e in events}) == 9
    assert json.loads(events[0].body())["event_id"] == events[0].event_id
