"""Time and randomness, injected so that retries and timestamps are testable."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime


def iso_utc(ts: datetime) -> str:
    """The ISO 8601 UTC text, to the microsecond, that every eventflow record uses."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def iso_now(self) -> str:
        return iso_utc(self.now())

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def uniform(self, low: float, high: float) -> float:
        return random.uniform(low, high)


class Backoff:
    """Exponential backoff with full jitter, for a bounded number of attempts.

    Full jitter (a uniform wait between 0 and the exponential bound) keeps
    many retrying writers from hammering a throttled table in lockstep.
    """

    def __init__(self, clock: Clock, attempts: int = 8, base: float = 0.05, cap: float = 2.0):
        self.clock = clock
        self.attempts = attempts
        self.base = base
        self.cap = cap

    def wait(self, attempt: int) -> None:
        """Sleep before retry number ``attempt`` (1 for the first retry)."""
        bound = min(self.cap, self.base * 2 ** (attempt - 1))
        self.clock.sleep(self.clock.uniform(0, bound))
