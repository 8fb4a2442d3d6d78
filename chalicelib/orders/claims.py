"""Claims with a lease: how a side effect outside DynamoDB (an email) happens at most once.

An email cannot share a transaction with a processed-event marker
(:mod:`chalicelib.orders.markers`), so the notifications consumer brackets
the send with a claim record ``{consumer}#{event_id}`` in the idempotency
table instead, and moves it through these states, each move one conditional
``UpdateItem``:

::

    (none) ──claim──▶ SENDING ──mark_sent──▶ SENT
                        │  ▲ ╲
                        │  │  ╲──mark_rejected──▶ REJECTED
                        │  └─ claim again, once the lease has expired
                        └──release: the lease ends now (SES refused the mail)

* **claim**: only when no record exists, or the record is SENDING and its
  lease has expired (the delivery that held it died or gave up). A claim
  sets a new ``lease_token`` and counts ``attempts``.
* A claim that finds SENT or REJECTED reports it: the event is done.
* A claim that finds a live lease of another delivery raises :class:`ClaimHeld`:
  that delivery may be sending right now, so this one must not. The message
  fails, and SQS delivers it again after a backoff.
* **mark_sent**, **mark_rejected** and **release** are conditioned on the
  holder's own token: a holder whose lease another delivery took over changes
  nothing (and says so).
* The token also tells a delivery its own write from another's when botocore
  retries a request whose response was lost: a retried claim that finds
  SENDING with its own token holds the claim; a retried mark that finds SENT
  (or REJECTED) with its own token has marked it. Only a claim sets a new
  token, so another delivery's record never carries this one's.

The lease must outlive the holder: it lasts the invocation's remaining time
plus :data:`LEASE_MARGIN` (:func:`lease_for`), so while a holder can still
run, nobody else sends. Claims expire through the table's TTL after
:data:`~chalicelib.orders.markers.MARKER_TTL`, like the markers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import Clock
from chalicelib.dynamo import from_item, is_condition_failure, to_item
from chalicelib.orders.markers import MARKER_TTL, marker_id
from chalicelib.orders.store import EXPIRES_AT, IDEMPOTENCY_PK

SENDING, SENT, REJECTED = "SENDING", "SENT", "REJECTED"
# Lambda's longest timeout: the lease when the invocation's deadline is unknown.
MAX_INVOCATION = timedelta(minutes=15)
# Beyond the holder's deadline, for clocks that differ a little between hosts.
LEASE_MARGIN = timedelta(seconds=5)
# A rejection reason is a hint for the operator; items have a size limit.
MAX_REASON_CHARS = 500


class ClaimHeld(RuntimeError):
    """Another delivery holds a live lease on the event: it may be sending now."""

    def __init__(self, key: str, lease_until_ms: int | None):
        super().__init__(f"{key} is being sent by another delivery (lease until {lease_until_ms})")
        self.key = key
        self.lease_until_ms = lease_until_ms


@dataclass(frozen=True)
class Claim:
    """A live claim this delivery holds."""

    key: str
    token: str
    attempt: int


@dataclass(frozen=True)
class Settled:
    """The event was dealt with already: ``state`` is SENT or REJECTED."""

    key: str
    state: str


def lease_for(context: Any) -> timedelta:
    """How long a claim made by this invocation must stay exclusive.

    An invocation cannot outlive its deadline (Lambda ends it there), so its
    remaining time, plus a margin, covers everything it may still do.
    """
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return MAX_INVOCATION + LEASE_MARGIN
    return timedelta(milliseconds=remaining()) + LEASE_MARGIN


def _ms(clock: Clock, delta: timedelta = timedelta()) -> int:
    return int((clock.now() + delta).timestamp() * 1000)


class Claims:
    """Claim records of one consumer in the idempotency table."""

    def __init__(self, client: Any, table: str, consumer: str, clock: Clock):
        self.client = client
        self.table = table
        self.consumer = consumer
        self.clock = clock

    def key(self, event_id: str) -> str:
        return marker_id(self.consumer, event_id)

    def claim(self, event_id: str, lease: timedelta, details: dict[str, str]) -> Claim | Settled:
        """Take the event for this delivery, or learn that it is done.

        ``details`` are kept on the record for operators (order id, event type).
        Raises :class:`ClaimHeld` when another delivery's lease is live.
        """
        key = self.key(event_id)
        token = uuid.uuid4().hex
        values = {
            ":sending": SENDING,
            ":until": _ms(self.clock, lease),
            ":now": _ms(self.clock),
            ":token": token,
            ":at": self.clock.iso_now(),
            ":expires": int((self.clock.now() + MARKER_TTL).timestamp()),
            ":zero": 0,
            ":one": 1,
            **{f":{name}": value for name, value in details.items()},
        }
        detail_sets = "".join(f", {name} = :{name}" for name in details)
        try:
            attributes = self.client.update_item(
                TableName=self.table,
                Key=to_item({IDEMPOTENCY_PK: key}),
                UpdateExpression=(
                    "SET claim_state = :sending, lease_until = :until, lease_token = :token, "
                    "claimed_at = :at, #expires = if_not_exists(#expires, :expires), "
                    "attempts = if_not_exists(attempts, :zero) + :one" + detail_sets
                ),
                ConditionExpression=(
                    "attribute_not_exists(#id) OR (claim_state = :sending AND lease_until <= :now)"
                ),
                ExpressionAttributeNames={"#id": IDEMPOTENCY_PK, "#expires": EXPIRES_AT},
                ExpressionAttributeValues=to_item(values),
                ReturnValues="UPDATED_NEW",
                # A refused claim answers with the record as it is: no second read.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            current = from_item(error.response.get("Item") or {})
            state = current.get("claim_state")
            if state in (SENT, REJECTED):
                return Settled(key, state)
            if state == SENDING and current.get("lease_token") == token:
                # This very claim, landed by an attempt whose response was lost
                # (botocore retried it): the lease is this delivery's own.
                return Claim(key, token, int(current["attempts"]))
            until = current.get("lease_until")
            raise ClaimHeld(key, int(until) if until is not None else None) from None
        return Claim(key, token, int(from_item(attributes)["attempts"]))

    def mark_sent(self, claim: Claim, message_id: str) -> bool:
        """Record the mail as sent; False if another delivery took the claim over."""
        return self._settle(
            claim,
            "SET claim_state = :sent, sent_at = :at, ses_message_id = :message REMOVE lease_until",
            {":sent": SENT, ":message": message_id},
            SENT,
        )

    def mark_rejected(self, claim: Claim, reason: str) -> bool:
        """Record that SES will never take this mail (the address); False if taken over."""
        return self._settle(
            claim,
            "SET claim_state = :rejected, rejected_at = :at, rejected_reason = :reason "
            "REMOVE lease_until",
            {":rejected": REJECTED, ":reason": reason[:MAX_REASON_CHARS] or "rejected"},
            REJECTED,
        )

    def release(self, claim: Claim) -> bool:
        """End the lease now: the mail was certainly not sent, so a retry may claim at once."""
        return self._settle(
            claim,
            "SET lease_until = :now_ms, released_at = :at",
            {":now_ms": _ms(self.clock)},
            None,  # a repeated release still finds the claim SENDING and applies again
        )

    def _settle(
        self, claim: Claim, expression: str, values: dict[str, Any], final: str | None
    ) -> bool:
        """Apply a holder's move; True if it holds, False if another delivery took over.

        The token tells the two apart: only a claim changes it, so a record in the
        ``final`` state still carrying this holder's token was moved by this holder,
        by an attempt whose response was lost before botocore retried it.
        """
        try:
            self.client.update_item(
                TableName=self.table,
                Key=to_item({IDEMPOTENCY_PK: claim.key}),
                UpdateExpression=expression,
                ConditionExpression="claim_state = :sending AND lease_token = :token",
                ExpressionAttributeValues=to_item(
                    {
                        **values,
                        ":sending": SENDING,
                        ":token": claim.token,
                        ":at": self.clock.iso_now(),
                    }
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            current = from_item(error.response.get("Item") or {})
            return (
                final is not None
                and current.get("claim_state") == final
                and current.get("lease_token") == claim.token
            )
        return True

    def get(self, event_id: str) -> dict[str, Any] | None:
        """The claim record, for tests and operators."""
        item = self.client.get_item(
            TableName=self.table,
            Key=to_item({IDEMPOTENCY_PK: self.key(event_id)}),
            ConsistentRead=True,
        ).get("Item")
        return from_item(item) if item else None
