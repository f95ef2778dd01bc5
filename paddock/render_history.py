"""Render times kept across restarts: what hh_api's client learns goes to the database,
and comes back into a new client at start-up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlite_utils import Database

from hh_api import RenderTimes
from hh_api.render_times import RenderKey
from paddock.budget import timestamp, utcnow
from paddock.store import Store

log = logging.getLogger(__name__)

KEEP = 200  # rows kept per kind of render; the client uses the newest 50


class RenderHistory:
    """The ``render_times`` table."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    async def load_into(self, times: RenderTimes) -> int:
        """Record every kept render into `times`, oldest first; returns how many."""

        def run(db: Database) -> list[tuple]:
            return db.execute(
                "SELECT provider, mode, resolution, duration, after, done_by "
                "FROM render_times ORDER BY id"
            ).fetchall()

        rows = await self.store.read(run)
        for provider, mode, resolution, duration, after, done_by in rows:
            times.record((provider, mode, resolution, duration), after, done_by)
        return len(rows)

    async def add(self, key: RenderKey, after: float, done_by: float) -> None:
        """Keep one render's bounds, dropping the oldest beyond `KEEP` of its kind."""
        provider, mode, resolution, duration = key
        at = timestamp(self.clock())

        def run(db: Database) -> None:
            db.execute(
                "INSERT INTO render_times (provider, mode, resolution, duration, after, "
                "done_by, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [provider, mode, resolution, duration, after, done_by, at],
            )
            db.execute(
                "DELETE FROM render_times WHERE provider = ? AND mode = ? "
                "AND resolution IS NOT DISTINCT FROM ? AND duration IS NOT DISTINCT FROM ? "
                "AND id <= (SELECT id FROM render_times WHERE provider = ? AND mode = ? "
                "AND resolution IS NOT DISTINCT FROM ? AND duration IS NOT DISTINCT FROM ? "
                "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                [*key, *key, KEEP],
            )

        await self.store.write(run)
