"""The email an order event means: its template, filled with the event's facts.

Templates are plain files in ``chalicelib/templates/`` (Chalice ships all of
``chalicelib/``), two per kind of email: ``{kind}.subject`` (one line) and
``{kind}.txt`` (the text body). They are :class:`string.Template` text:
``$order_id``, ``$lines``, ``$total``, ``$reason``, ``$status``,
``$previous_status`` and ``$occurred_at``.

There is no ``$customer_id``: the customer chooses it (a partner or a client
sends it), and an email from the shop's own verified sender must never start
with, or carry, text a caller chose ("Hello www.evil.example, click ...").
Every value a template can name is the shop's: ids it minted, products it
priced, statuses and reasons of its own state machine.

Rendering uses ``substitute``, never ``safe_substitute``: a placeholder with
no value is a bug in a template, and it must fail (a test renders every
template with a real event) rather than reach a customer as ``$typo``.

The kind is ``created`` for ``ORDER_CREATED`` and the new status, in lower
case, for every status change (``confirmed``, ``rejected``, ``shipped``,
``delivered``, ``cancelled``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from string import Template

from chalicelib.orders.events import OrderEvent
from chalicelib.orders.states import EventType

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class UnknownEmailKind(LookupError):
    """An event no template exists for: a new status or event type needs its template."""


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str


def kind_of(event: OrderEvent) -> str:
    if event.event_type == EventType.ORDER_CREATED:
        return "created"
    return event.new_status.lower()


@functools.cache
def templates(kind: str) -> tuple[Template, Template]:
    """The (subject, body) templates of ``kind``, read once per process."""
    subject, body = TEMPLATES_DIR / f"{kind}.subject", TEMPLATES_DIR / f"{kind}.txt"
    if not subject.is_file() or not body.is_file():
        raise UnknownEmailKind(f"no email template {kind!r} in {TEMPLATES_DIR}")
    return Template(subject.read_text().strip()), Template(body.read_text())


def kinds() -> list[str]:
    """Every kind that has a template."""
    return sorted(path.stem for path in TEMPLATES_DIR.glob("*.subject"))


def _lines(event: OrderEvent) -> str:
    return "\n".join(
        f"  {line['quantity']} x {line['product_id']} at {line['unit_price']}"
        f" = {line['line_total']}"
        for line in event.items
    )


def _when(iso: str) -> str:
    """``2026-11-30T18:05:00.000000Z`` → ``30 Nov 2026, 18:05 UTC``."""
    try:
        moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return iso
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def render(event: OrderEvent) -> Email:
    """The customer's email for ``event``.

    Raises :class:`UnknownEmailKind` when no template exists, and ``KeyError``
    or ``ValueError`` when a template names a placeholder that does not exist.
    """
    subject, body = templates(kind_of(event))
    values = {
        "order_id": event.order_id,
        "lines": _lines(event),
        "total": event.total,
        "reason": event.reason or "not given",
        "status": event.new_status,
        "previous_status": event.old_status or "new",
        "occurred_at": _when(event.occurred_at),
    }
    return Email(
        to=event.customer_email,
        # A header cannot hold a line break.
        subject=" ".join(subject.substitute(values).split()),
        text=body.substitute(values),
    )
