"""Shared helpers for the store, ledger and job tests: a settable clock and an opener."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from paddock.jobs import JobStore
from paddock.ledger import Ledger
from paddock.store import Store, open_store

GUILD = 1001
ALICE = 11
BOB = 12
MOD = 99

# A Monday noon, so that daily, weekly and monthly boundaries are all easy to reach.
START = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


async def open_all(location: Path | str, clock: Clock) -> tuple[Store, Ledger, JobStore]:
    """The store at ``location`` (a SQLite file or a PostgreSQL URL), its ledger and jobs."""
    store = await open_store(location)
    return store, Ledger(store, clock=clock), JobStore(store, clock=clock)
