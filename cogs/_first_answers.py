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
    first; it goes on once no first answer is outstanding, or after ``patience`` seconds
    whatever happens (a flood that never ends must not starve it).
    """

    def __init__(self, patience: float = 1.0) -> None:
        self.patience = patience
        self._open = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self.waiting = 0  # callers of drained() waiting now

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        """Around the steps that lead to one command's first answer."""
        self._open += 1
        self._drained.clear()
        try:
            yield
        finally:
            self._open -= 1
            if not self._open:
                self._drained.set()

    async def drained(self) -> None:
        """Return once no command waits for its first answer, or after ``patience``."""
        if not self._open:
            return
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):  # past patience, the work goes on anyway
                async with asyncio.timeout(self.patience):
                    await self._drained.wait()
        finally:
            self.waiting -= 1
