"""The notifications consumer: one email per order event, at most once per ``event_id``.

For each event (``ORDER_CREATED`` and every status change):

1. render the email (:mod:`chalicelib.orders.emails`); a template bug fails
   here, before anything is claimed;
2. claim the event (:mod:`chalicelib.orders.claims`): one conditional
   ``UpdateItem``. A claim that finds the event SENT or REJECTED ends here
   ("duplicate"); one that finds another delivery's live lease raises
   :class:`~chalicelib.orders.claims.ClaimHeld`, and the message is retried
   after a backoff, never sent meanwhile;
3. ``SendEmail`` (text body) from the stage's sender, ``EVENTFLOW_MAIL_FROM``;
4. mark the claim SENT (one conditional ``UpdateItem``).

What SES answers decides what happens to the claim:

* accepted → SENT;
* refused for the recipient (``MessageRejected`` that does not name our
  sender, e.g. an unverified recipient in the SES sandbox; or
  ``InvalidParameterValue``, a malformed address) → REJECTED with SES's
  reason, a ``NotificationsRejected`` metric and a warning log. Retrying
  would never succeed, so the message is done;
* any other error (throttling after the client's retries, our sender not
  verified, the account paused) → the lease is released (SES certainly did
  not take the mail) and the message fails: SQS retries it with backoff, and
  after ``maxReceiveCount`` receives it waits in the DLQ for a redrive.

The one window: a delivery that dies after SES accepted the mail and before
its mark (or whose mark fails after every retry) leaves a SENDING claim; once
its lease expires, a redelivery claims it again and sends a second email.
Email is therefore at most once except in that window (see docs/orders.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from chalicelib import metric_names
from chalicelib.dynamo import error_code
from chalicelib.observability import count, logger
from chalicelib.orders import emails, keys
from chalicelib.orders.claims import Claims, EmailClaim, Settled
from chalicelib.orders.events import OrderEvent

CONSUMER = keys.NOTIFICATIONS_CONSUMER
CHARSET = "UTF-8"
# SES refuses these for the message itself (its recipient): retrying cannot help.
RECIPIENT_REFUSALS = frozenset({"MessageRejected", "InvalidParameterValue"})


def claims(services) -> Claims:
    return Claims(
        services.clients.dynamodb, services.settings.idempotency_table, CONSUMER, services.clock
    )


def apply(event: OrderEvent, services, lease: timedelta) -> str:
    """Send the event's email once; returns what happened (for logs and tests).

    ``sent``, ``rejected`` (SES refused the recipient; recorded) or
    ``duplicate`` (sent or rejected before). Raises ``ClaimHeld`` while
    another delivery holds the event, and SES's error when the mail may be
    retried.
    """
    email = emails.render(event)
    # Built before the claim: a client that cannot be made (no region) fails
    # the message without leaving a lease behind.
    ses = services.clients("ses")
    store = claims(services)
    claim = store.claim(
        event.event_id, lease, {"order_id": event.order_id, "event_type": event.event_type}
    )
    if isinstance(claim, Settled):
        logger.info("email already dealt with", extra={"claim_state": claim.state})
        return "duplicate"
    if claim.attempt > 1:
        # An earlier delivery claimed it and its lease ran out: it may have
        # died after SES accepted its mail (the documented window).
        count(metric_names.NOTIFICATIONS_RECLAIMED, 1)
        logger.warning("claiming an email again after a lease expired", extra={
            "attempt": claim.attempt, "event_id": event.event_id})  # fmt: skip
    return _send(email, claim, store, ses, services.settings.mail_from)


def _send(email: emails.Email, claim: EmailClaim, store: Claims, ses: Any, sender: str) -> str:
    try:
        response = ses.send_email(
            Source=sender,
            Destination={"ToAddresses": [email.to]},
            Message={
                "Subject": {"Data": email.subject, "Charset": CHARSET},
                "Body": {"Text": {"Data": email.text, "Charset": CHARSET}},
            },
        )
    except ClientError as error:
        if _recipient_refused(error, sender):
            reason = f"{error_code(error)}: {error.response.get('Error', {}).get('Message', '')}"
            store.mark_rejected(claim, reason)
            count(metric_names.NOTIFICATIONS_REJECTED, 1)
            logger.warning("SES refused the recipient; not retried", extra={"reason": reason})
            return "rejected"
        store.release(claim)
        raise
    except (EndpointConnectionError, ConnectTimeoutError):
        # Never connected, so nothing was sent. Other errors (a read timeout)
        # may come after SES accepted the mail: the lease stays until it ends.
        store.release(claim)
        raise
    if not store.mark_sent(claim, response["MessageId"]):
        count(metric_names.NOTIFICATIONS_LEASE_LOST, 1)
        logger.error("another delivery took this email over while it was sent; it may go twice")
    count(metric_names.NOTIFICATIONS_SENT, 1)
    return "sent"


def _recipient_refused(error: ClientError, sender: str) -> bool:
    """Whether SES refused the mail for its recipient, not for our own configuration.

    SES answers ``MessageRejected`` for an unverified sender too, naming it in
    the message; that is ours to fix (and redrive), not the customer's.
    """
    if error_code(error) not in RECIPIENT_REFUSALS:
        return False
    message = error.response.get("Error", {}).get("Message", "")
    return sender.lower() not in message.lower()
