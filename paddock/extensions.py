"""Extend's records: which clip a continuation job continues, and from which frame.

A continuation is an ordinary image-to-video job (reserved, charged or refunded like any
other); this table only says that, once it arrives, it is joined after ``source_url``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from paddock.budget import timestamp, utcnow
from paddock.store import Store


@dataclass(frozen=True)
class Extension:
    """A continuation job and the posted clip it continues."""

    job_id: str  # the continuation
    parent_job_id: str  # the job whose posted video is continued
    source_url: str  # that video, a Discord attachment link (refresh it before use)
    frame_url: str  # its last frame, posted on Discord: the continuation's first picture
    parts: int  # clips in the joined video: 2, then 3 for an extended extension, ...


class Extensions:
    """The ``extensions`` table."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    async def record(self, extension: Extension) -> None:
        """Keep `extension` (before its job is accepted); recording it again is a no-op."""
        at = timestamp(self.clock())

        def run(db: Database) -> None:
            db.execute(
                "INSERT INTO extensions (job_id, parent_job_id, source_url, "
                "frame_url, parts, created_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [extension.job_id, extension.parent_job_id, extension.source_url,
                 extension.frame_url, extension.parts, at],
            )

        await self.store.write(run)

    async def get(self, job_id: str) -> Extension | None:
        """The extension a job is, or None for any other job."""

        def run(db: Database) -> tuple | None:
            return db.execute(
                "SELECT job_id, parent_job_id, source_url, frame_url, parts FROM extensions "
                "WHERE job_id = ?", [job_id]).fetchone()

        row = await self.store.read(run)
        return Extension(*row) if row is not None else None
