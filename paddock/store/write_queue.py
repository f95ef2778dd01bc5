"""What both stores' writer threads share: a queued write, its outcome, and how an outcome
reaches the coroutine awaiting it (on its own event loop, after the COMMIT)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WriteRequest:
    """``fn(db, *args)``, queued for a writer thread; ``future`` gets its outcome."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    transactional: bool = True


@dataclass(slots=True)
class Outcome:
    """A write's answer: its return value (``ok``) or what it raised."""

    request: WriteRequest
    ok: bool
    value: Any = field(default=None)


def _deliver(outcomes: list[Outcome]) -> None:
    """Resolve awaiting futures on their event loop (runs via call_soon_threadsafe)."""
    for outcome in outcomes:
        future = outcome.request.future
        if future.done():  # the caller gave up waiting; the write itself stands
            continue
        if outcome.ok:
            future.set_result(outcome.value)
        else:
            future.set_exception(outcome.value)


def send(outcomes: list[Outcome]) -> None:
    """Hand ``outcomes`` to their event loops, from a writer thread."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome.request.loop, []).append(outcome)
    for loop, group in by_loop.items():
        try:
            loop.call_soon_threadsafe(_deliver, group)
        except RuntimeError:  # the loop closed while we worked; nobody is waiting
            log.warning("dropping %d write result(s) for a closed event loop", len(group))
