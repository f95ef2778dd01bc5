"""First answers first: in a burst of commands, what can wait waits for them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class FirstAnswers:
    """Counts commands whose first answer is not sent yet.

    Discord wants each interaction's first answer within 3 s; the work after it (a credit
    reservation, the card's edit) has no such deadline. In a burst, the gateway hands over
    many interactions at once, and the event loop runs their steps in turn: without an
    order, the first commands' reservations and edits take the loop while the last
    commands still wait for their first answer. Work that can wait calls :meth:`drained`
    first; it goes on once no first answer is outstanding, or after at most ``patience``
    seconds whatever happens (a flood that never ends must not starve it).

    A burst's waiters share one wait: one event per stretch with first answers
    outstanding, and one patience timer for all of them, so a waiter costs the loop a
    future and no timer of its own (a burst of 20 has 15 reservations waiting here, and
    their timers were work done before the last first answer went out).
    """

    def __init__(self, patience: float = 1.0) -> None:
        self.patience = patience
        self._open = 0
        self._stretch = asyncio.Event()  # set when this stretch of open answers ends
        self._stretch.set()
        self._patience: asyncio.TimerHandle | None = None
        self.waiting = 0  # callers of drained() waiting now

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        """Around the steps that lead to one command's first answer."""
        if not self._open:
            self._stretch = asyncio.Event()
        self._open += 1
        try:
            yield
        finally:
            self._open -= 1
            if not self._open:
                self._end_stretch()

    async def drained(self) -> None:
        """Return once no command waits for its first answer, or after ``patience``."""
        if not self._open:
            return
        stretch = self._stretch
        if self._patience is None:
            self._patience = asyncio.get_running_loop().call_later(
                self.patience, self._lose_patience)
        self.waiting += 1
        try:
            await stretch.wait()
        finally:
            self.waiting -= 1

    def _end_stretch(self) -> None:
        self._stretch.set()
        if self._patience is not None:
            self._patience.cancel()
            self._patience = None

    def _lose_patience(self) -> None:
        """Past patience, the waiting work goes on anyway; later callers wait anew."""
        self._patience = None
        self._stretch.set()
        if self._open:
            self._stretch = asyncio.Event()
