"""Leases: which process drives which job, so that jobs belong to no process.

A job the bot still has work on (waiting to be sent, being sent, at a provider, being
delivered) is driven by exactly one process: the one whose id is in its ``lease_owner``,
until ``lease_until`` (a Unix time). Every process makes a random id when it starts.

- **Claim.** A process takes a job by one conditional UPDATE: only if nobody holds it,
  its lease ended, or the process holds it already. A job accepted by a process is leased
  to it in the write that accepts it (`Leases.new_job_lease`). On PostgreSQL the claim of
  lapsed jobs picks its rows with ``FOR UPDATE SKIP LOCKED``, so processes scanning at once
  never wait on each other's rows.
- **Heartbeat.** One statement per process renews all its leases (`Leases.renew`), every
  third of the lease time; the same write takes the callbacks recorded for its tasks
  (a callback that reached a process not driving the task, `Leases.record_wake`; on
  PostgreSQL it is also sent on the ``paddock_wakes`` NOTIFY channel, and the owner's
  listener polls the task at once, without waiting for this heartbeat).
- **Fencing.** Every state change a driver makes first checks, in its own transaction, that
  the process still holds the lease (`Leases.fence`, given to the job store by
  `paddock.jobs.JobStore.fenced`): a process that lost its lease (it paused past the lease
  time, another one took the job) gets :class:`LeaseLost` at its next write and stops.
- **Takeover.** Every process, at start and at each heartbeat, claims the unfinished jobs
  whose lease ended (`Leases.claim_lapsed`) and resumes them from their stored state.
- **A restart.** A process that finds no other process running on the same database
  (`RunnerLock`: on SQLite an OS file lock every runner holds, released by the kernel when
  a process dies, even by SIGKILL; on PostgreSQL a session advisory lock, released by the
  server when the process's connection ends) takes every lease back at once, so a restart
  resumes as fast as without leases. With another runner alive, leases are taken only once
  they end.

Times are numbers from an injectable clock, so tests can use short leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlite_utils import Database

from paddock.errors import JobNotFound
from paddock.jobs import UNFINISHED, Job, select_jobs

log = logging.getLogger(__name__)

DEFAULT_TTL = 30.0  # seconds a lease lasts unless renewed
WAKES_KEPT = 3600.0  # seconds a callback for a task nobody drives is kept
WAKES_CHANNEL = "paddock_wakes"  # PostgreSQL NOTIFY channel of recorded callbacks
RUNNERS_LOCK_KEY = 0x7061_6464_6F63  # PostgreSQL advisory lock every runner holds ("paddoc")
_UNFINISHED = tuple(state.value for state in UNFINISHED)
_MARKS = ", ".join("?" for _ in _UNFINISHED)


class LeaseLost(Exception):
    """This process no longer holds the job's lease: another process drives it now."""

    def __init__(self, job_id: str, holder: str | None) -> None:
        super().__init__(job_id, holder)
        self.job_id = job_id
        self.holder = holder

    def __str__(self) -> str:
        return f"job {self.job_id} is leased to {self.holder or 'nobody'}, not to this process"


def new_owner() -> str:
    """A process's lease id: host and pid for the operator's eye, and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _postgres(db: Database) -> bool:
    return getattr(db, "dialect", "sqlite") == "postgresql"


def hold_in(db: Database, job_id: str, owner: str) -> None:
    """Raise :class:`LeaseLost` unless `owner` holds the job's lease, inside the caller's
    transaction. On PostgreSQL the row stays locked until that transaction ends, so no
    claim slips in between the check and the change it guards (SQLite's write lock does
    the same for the whole file)."""
    sql = "SELECT lease_owner FROM jobs WHERE id = ?"
    if _postgres(db):
        sql += " FOR UPDATE"
    row = db.execute(sql, [job_id]).fetchone()
    if row is None:
        raise JobNotFound(job_id)
    if row[0] != owner:
        raise LeaseLost(job_id, row[0])


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What one renewal found: the jobs still held, and tasks whose callback arrived
    elsewhere."""

    held: frozenset[str]
    woken: tuple[str, ...]


class Leases:
    """This process's leases on jobs, on a store (SQLite or PostgreSQL)."""

    def __init__(
        self,
        store: Any,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self.owner = owner or new_owner()
        self.held = 0  # leases held at the last renewal (for /metrics)
        self.takeovers = 0  # jobs taken from another process's ended lease (for /metrics)
        # When the soonest lease of another process ends (at the last claim), if any:
        # the next takeover scan need not wait longer than that.
        self.next_lapse: float | None = None

    def until(self) -> float:
        return self.clock() + self.ttl

    def _times(self) -> tuple[float, float]:
        """Now and a new lease's end, read inside a write as it runs: a write can wait
        in the queue behind a burst, and a lease counted from before would be short."""
        now = self.clock()
        return now, now + self.ttl

    def new_job_lease(self) -> dict[str, Any]:
        """The columns that lease a job being accepted to this process."""
        return {"lease_owner": self.owner, "lease_until": self.until()}

    def fence(self, db: Database, job_id: str) -> None:
        """Inside a write: raise :class:`LeaseLost` unless this process holds the job."""
        hold_in(db, job_id, self.owner)

    async def claim(self, job_id: str) -> Job | None:
        """Take one unfinished job if nobody holds it, its lease ended, or it is ours
        already; None if another process holds it (or it is finished)."""

        def run(db: Database, owner: str) -> Job | None:
            now, until = self._times()
            row = db.execute(
                "UPDATE jobs SET lease_owner = ?, lease_until = ?"
                f" WHERE id = ? AND state IN ({_MARKS})"
                " AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)"
                " RETURNING id",
                [owner, until, job_id, *_UNFINISHED, owner, now],
            ).fetchone()
            if row is None:
                return None
            [job] = select_jobs(db, "id = ?", [job_id])
            return job

        return await self.store.write(run, self.owner)

    async def claim_lapsed(self, *, every_lease: bool = False, limit: int = 500) -> list[Job]:
        """Claim unfinished jobs nobody holds or whose lease ended, oldest first.

        ``every_lease``: also those whose lease has not ended yet (but not this process's
        own); only for a process that knows every other holder is dead (see
        :class:`RunnerLock`)."""

        def run(db: Database, owner: str) -> tuple[list[Job], float | None]:
            now, until = self._times()
            if every_lease:  # all but those claimed already
                lapsed, args = " AND (lease_owner IS NULL OR lease_owner <> ?)", [owner]
            else:
                lapsed, args = " AND (lease_owner IS NULL OR lease_until < ?)", [now]
            pick = (f"SELECT id FROM jobs WHERE state IN ({_MARKS}){lapsed}"
                    " ORDER BY created_at, id LIMIT ?")
            if _postgres(db):
                pick += " FOR UPDATE SKIP LOCKED"
            ids = [r[0] for r in db.execute(
                f"UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN ({pick})"
                " RETURNING id",
                [owner, until, *_UNFINISHED, *args, limit],
            ).fetchall()]
            [soonest] = db.execute(
                f"SELECT MIN(lease_until) FROM jobs WHERE state IN ({_MARKS})"
                " AND lease_owner <> ?",
                [*_UNFINISHED, owner],
            ).fetchone()
            if not ids:
                return [], soonest
            return select_jobs(db, f"id IN ({', '.join('?' for _ in ids)})", ids), soonest

        jobs, self.next_lapse = await self.store.write(run, self.owner)
        return sorted(jobs, key=lambda job: (job.created_at, job.id))

    async def renew(self, *, keep_out: Collection[str] = ()) -> Heartbeat:
        """Extend every lease this process holds but those in `keep_out` (jobs it no
        longer drives), in one statement; take the callbacks recorded for its tasks. The
        jobs not in ``held`` were lost to another process (or kept out)."""
        left_out = sorted(keep_out)

        def run(db: Database, owner: str) -> Heartbeat:
            now, until = self._times()
            but = f" AND id NOT IN ({', '.join('?' for _ in left_out)})" if left_out else ""
            held = db.execute(
                f"UPDATE jobs SET lease_until = ? WHERE lease_owner = ? AND state IN ({_MARKS})"
                f"{but} RETURNING id",
                [until, owner, *_UNFINISHED, *left_out],
            ).fetchall()
            woken = db.execute(
                "DELETE FROM job_wakes WHERE task_id IN (SELECT provider_task_id FROM jobs"
                " WHERE lease_owner = ? AND provider_task_id IS NOT NULL) RETURNING task_id",
                [owner],
            ).fetchall()
            db.execute("DELETE FROM job_wakes WHERE at < ?", [now - WAKES_KEPT])
            return Heartbeat(frozenset(r[0] for r in held), tuple(r[0] for r in woken))

        beat = await self.store.write(run, self.owner)
        self.held = len(beat.held)
        return beat

    async def holder(self, job_id: str) -> tuple[str | None, Job]:
        """Who holds the job's lease now (None: nobody), and the job."""

        def run(db: Database) -> tuple[str | None, Job]:
            [row] = db.execute("SELECT lease_owner FROM jobs WHERE id = ?", [job_id]).fetchall()
            [job] = select_jobs(db, "id = ?", [job_id])
            return row[0], job

        return await self.store.read(run)

    async def confirm(self, job_id: str) -> None:
        """Renew one lease just before an act no write can fence (posting the video), so a
        whole lease time is left for it; :class:`LeaseLost` if another process holds it."""

        def run(db: Database, owner: str) -> None:
            hold_in(db, job_id, owner)
            db.execute("UPDATE jobs SET lease_until = ? WHERE id = ?", [self.until(), job_id])

        await self.store.write(run, self.owner)

    async def release_all(self) -> int:
        """Give up every lease (a clean stop): another process may take the jobs at once."""

        def run(db: Database, owner: str) -> int:
            return len(db.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?"
                " RETURNING id",
                [owner],
            ).fetchall())

        released = await self.store.write(run, self.owner)
        self.held = 0
        return released

    async def record_wake(self, task_id: str) -> None:
        """Keep a provider's callback for the process that drives `task_id` (or will)."""

        def run(db: Database, at: float) -> None:
            db.execute(
                "INSERT INTO job_wakes (task_id, at) VALUES (?, ?)"
                " ON CONFLICT (task_id) DO UPDATE SET at = excluded.at",
                [task_id, at],
            )
            # PostgreSQL: sent at COMMIT; every runner's listener hears it (Runner.start)
            db.notify(WAKES_CHANNEL, task_id)

        await self.store.write(run, self.clock())


class RunnerLock:
    """A lock every runner on one database holds while it runs.

    The first to start takes it exclusively: if that succeeds no other runner is alive on
    the database, and every lease in it belongs to a dead process. Then it shares it, like
    every later runner. On SQLite it is an OS lock on a file beside the database, which the
    kernel drops when a process dies (even by SIGKILL); on PostgreSQL a session advisory
    lock on a connection of its own, which the server drops when that connection ends.
    Any other store never says "alone": leases are taken once they end.
    """

    def __init__(self, store: object) -> None:
        database = getattr(store, "path", None)
        self.path = database.with_name(database.name + "-runners.lock") if isinstance(
            database, Path) else None
        url = getattr(store, "url", None)
        self.url = url if getattr(store, "dialect", None) == "postgresql" else None
        self._file: IO[bytes] | None = None
        self._session: Any = None  # psycopg.Connection holding the advisory lock
        self._exclusive = False

    async def acquire(self) -> bool:
        """Hold the lock; True if no other runner holds it (then call `share` once the
        leases are taken back)."""
        if self.path is not None:
            return await asyncio.to_thread(self._acquire, self.path)
        if self.url is not None:
            return await asyncio.to_thread(self._acquire_session, self.url)
        return False

    def _acquire_session(self, url: str) -> bool:
        import psycopg  # only a PostgreSQL store gets here

        self._session = psycopg.connect(url, autocommit=True)
        [alone] = self._session.execute(
            "SELECT pg_try_advisory_lock(%s)", [RUNNERS_LOCK_KEY]).fetchone()
        if not alone:
            # Another runner is alive (or taking leases back right now: wait for it to share).
            self._session.execute("SELECT pg_advisory_lock_shared(%s)", [RUNNERS_LOCK_KEY])
        self._exclusive = alone
        return alone

    def _share_session(self) -> None:
        self._session.execute("SELECT pg_advisory_lock_shared(%s)", [RUNNERS_LOCK_KEY])
        self._session.execute("SELECT pg_advisory_unlock(%s)", [RUNNERS_LOCK_KEY])
        self._exclusive = False

    def _acquire(self, path: Path) -> bool:
        self._file = open(path, "ab")  # noqa: SIM115 -- held open until release
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        # Another runner is alive (or taking leases back right now: wait for it to share).
        fcntl.flock(self._file, fcntl.LOCK_SH)
        return False

    async def share(self) -> None:
        """Let later runners start (they will not take this one's leases)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_SH)
        if self._session is not None and self._exclusive:
            await asyncio.to_thread(self._share_session)

    async def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self._session is not None:
            session, self._session = self._session, None
            await asyncio.to_thread(_unlock_and_close, session)


def _unlock_and_close(session: Any) -> None:
    """Drop the session's advisory locks, then close it. Closing alone drops them too, but
    only once the server's backend has read the goodbye, a moment after ``close``
    returns: a runner starting just then would find the lock still held."""
    import psycopg

    with contextlib.suppress(psycopg.Error):  # a connection gone already took its locks
        session.execute("SELECT pg_advisory_unlock_all()")
    session.close()
