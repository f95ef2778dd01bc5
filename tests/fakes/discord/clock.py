"""The fake's clock and snowflake ids.

Deadlines Discord enforces (3 seconds to answer an interaction, 15 minutes of token
life) are measured on :class:`FakeClock`: real time plus an offset a test can move
forward with :meth:`FakeClock.advance`, so a test checks "after 15 minutes" in no time.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

DISCORD_EPOCH_MS = 1_420_070_400_000


class FakeClock:
    """Wall-clock time that a test can move forward, never back."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        """Seconds since the Unix epoch, as the fake sees them."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward, e.g. ``fake.clock.advance(15 * 60)`` to expire tokens."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds

    def iso(self, at: float | None = None) -> str:
        """An ISO 8601 timestamp as Discord writes them."""
        return datetime.fromtimestamp(self.now() if at is None else at, UTC).isoformat()


class Snowflakes:
    """Discord-shaped ids: milliseconds since the Discord epoch, then a counter."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._counter = itertools.count(1)

    def next(self) -> int:
        ms = int(self._clock.now() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)
