"""The order status machine: which moves exist, who may make them, what each emits.

::

    PENDING ──▶ CONFIRMED ──▶ SHIPPED ──▶ DELIVERED
       │  ╲          │
       │   ╲         └──▶ CANCELLED
       │    ╲
       │     └──▶ REJECTED
       └──▶ CANCELLED

CONFIRMED and REJECTED are the inventory's verdict on an order (system
moves); clients cancel, ship and deliver. Who may ask for a status does not
depend on the order's state: a client asking for CONFIRMED is refused even
when the order is already CONFIRMED, so that "may I ask for this?" never has
a different answer for a retry. Every move is one conditional write
on the order's ``version`` (see :mod:`chalicelib.orders.store`), so two moves
can never both start from the same state.
"""

from __future__ import annotations

from enum import StrEnum

from chalicelib.errors import Conflict


class Status(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"


class Actor(StrEnum):
    CLIENT = "client"
    SYSTEM = "system"


class EventType(StrEnum):
    ORDER_CREATED = "ORDER_CREATED"
    ORDER_STATUS_CHANGED = "ORDER_STATUS_CHANGED"
    ORDER_CANCELLED = "ORDER_CANCELLED"


# current status → {next status: who may make the move}
TRANSITIONS: dict[Status, dict[Status, Actor]] = {
    Status.PENDING: {
        Status.CONFIRMED: Actor.SYSTEM,
        Status.REJECTED: Actor.SYSTEM,
        Status.CANCELLED: Actor.CLIENT,
    },
    Status.CONFIRMED: {Status.SHIPPED: Actor.CLIENT, Status.CANCELLED: Actor.CLIENT},
    Status.SHIPPED: {Status.DELIVERED: Actor.CLIENT},
}
FINAL = frozenset(s for s in Status if s not in TRANSITIONS)


def allowed(current: Status, actor: Actor) -> tuple[Status, ...]:
    """The statuses ``actor`` may move an order in ``current`` to, in declaration order."""
    return tuple(t for t, who in TRANSITIONS.get(current, {}).items() if who == actor)


def requestable(actor: Actor) -> frozenset[Status]:
    """The statuses ``actor`` may ever ask for: the targets of its moves.

    PENDING is nobody's: an order starts there and no move leads back.
    """
    return frozenset(
        t for moves in TRANSITIONS.values() for t, who in moves.items() if who == actor
    )


def check_actor(current: Status, target: Status, actor: Actor) -> None:
    """Raise :class:`InvalidTransition` if ``actor`` may never ask for ``target``,
    whatever the order's status (``current`` only fills in the answer)."""
    if target not in requestable(actor):
        raise InvalidTransition(current, target, actor)


def check(current: Status, target: Status, actor: Actor) -> None:
    """Raise :class:`InvalidTransition` unless ``actor`` may move ``current`` to ``target``."""
    if target not in allowed(current, actor):
        raise InvalidTransition(current, target, actor)


def event_type(old: Status | None, new: Status) -> EventType:
    """The domain event a move emits (``old`` is None for a new order)."""
    if old is None:
        return EventType.ORDER_CREATED
    if new is Status.CANCELLED:
        return EventType.ORDER_CANCELLED
    return EventType.ORDER_STATUS_CHANGED


_NAMED = {Actor.CLIENT: "a client", Actor.SYSTEM: "the system"}


def _refusal(current: Status, target: Status, actor: Actor) -> str:
    if target not in requestable(actor):
        others = [who for who in Actor if who is not actor and target in requestable(who)]
        if others:
            return f"{target} is set by {_NAMED[others[0]]}, not by {_NAMED[actor]}"
        return f"{target} is where an order starts; no move leads to it"
    return f"an order in {current} cannot move to {target}"


class InvalidTransition(Conflict):
    """A move the machine does not have, or one the actor may not make."""

    def __init__(self, current: Status, target: Status, actor: Actor):
        options = allowed(current, actor)
        options_text = ", ".join(options) if options else "none"
        reason = _refusal(current, target, actor)
        super().__init__(
            f"{reason}; allowed from {current}: {options_text}",
            [{"field": "status", "problem": reason}],
            code="invalid_transition",
        )
        self.extra = {"current_status": str(current), "allowed": [str(s) for s in options]}
        self.current = current
        self.target = target
        self.allowed = options
