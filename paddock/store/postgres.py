"""The store on PostgreSQL: the same interface as :class:`paddock.store.sqlite.Store`.

Every write in Paddock is a synchronous SQL program ``fn(db, *args)`` (the ledger's
reserve and settle, a job's transitions, a settings change), shared by both backends.
Rather than keep a second, async copy of each, this store runs them as they are on a
bounded pool of worker threads, each borrowing a connection from a
:mod:`psycopg_pool` pool (psycopg 3), so the event loop never waits on the database:
``writers`` threads and connections for writes (one by default, see
:data:`DEFAULT_WRITERS`), ``readers`` for reads.

``await store.write(fn, *args)`` runs ``fn(db, *args)`` in one
``BEGIN ISOLATION LEVEL SERIALIZABLE`` transaction. SQLite gets its invariants from its
single writer; here several processes write at once, and SERIALIZABLE makes their
transactions behave as if they had run one at a time: when PostgreSQL cannot promise that
(serialization failure 40001, deadlock 40P01) the whole function runs again, after a
jittered backoff, up to :data:`WRITE_ATTEMPTS` times, then :class:`StoreBusy`. That is
safe because write functions touch nothing but the database (the SQLite store's rule too).
``await store.read(fn, *args)`` runs ``fn(db, *args)`` in a read-only REPEATABLE READ
transaction: one snapshot, like SQLite's read transaction.

``db`` offers what the write and read functions use: ``db.execute(sql, params)`` (a
psycopg cursor: ``fetchone``, ``fetchall``, iteration, ``rowcount``),
``db.executescript(sql)``, ``db.executemany(sql, rows)`` and ``db.dialect``
(``"postgresql"``; the SQLite store's ``db.dialect`` is ``"sqlite"``) for the rare
statement that must differ. The SQL keeps SQLite's ``?`` and ``:name`` placeholders;
:func:`to_pyformat` translates them once per statement text. Whole numbers come back as
``int`` (a ``SUM`` of ``BIGINT`` is ``NUMERIC`` in PostgreSQL), as from SQLite.

When the server cannot be reached, ``write`` and ``read`` raise :class:`StoreUnavailable`
(the cause chained).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.adapt import Loader

from paddock.errors import StoreBusy, StoreUnavailable
from paddock.store.notifications import Listener, OnMissed, OnNotify, Subscription

log = logging.getLogger(__name__)

T = TypeVar("T")
WRITE_ATTEMPTS = 40  # a serialization failure or deadlock runs the write again, this often
# Writes at once from one process. One, like SQLite's writer: on a 2-core machine, with
# reserve+settle pairs of 10 members (bench/ledger.py), 1 writer made 147 pairs/s with no
# retry, 2 made 101 (235 retries), 4 made 109 (492): SERIALIZABLE's predicate locks are
# by index page, so concurrent reserves, which all look up and insert holds, clash.
# Other processes still write at the same time; SERIALIZABLE keeps that correct.
DEFAULT_WRITERS = 1
DEFAULT_READERS = 4  # reads at once from one process (a REPEATABLE READ snapshot each)
_BACKOFF_FIRST = 0.002
_BACKOFF_MAX = 0.2


# -- placeholders ------------------------------------------------------------------------

_TOKENS = re.compile(
    r"""
      (?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*")   # a string literal or a quoted name
    | (?P<comment>--[^\n]*)                        # a line comment
    | (?P<cast>::)                                 # PostgreSQL's cast, not a placeholder
    | (?P<named>(?<![:\w]):[A-Za-z_]\w*)           # :name
    | (?P<positional>\?)                           # ?
    | (?P<percent>%)                               # psycopg's own marker: must be doubled
    """,
    re.VERBOSE,
)


@functools.lru_cache(maxsize=2048)
def to_pyformat(sql: str) -> str:
    """SQLite's ``?`` and ``:name`` placeholders as psycopg's ``%s`` and ``%(name)s``.

    Text inside quotes and comments is kept as it is (only ``%`` is doubled everywhere,
    as psycopg requires), and ``::`` casts are left alone.
    """

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        text = match.group()
        if kind == "named":
            return f"%({text[1:]})s"
        if kind == "positional":
            return "%s"
        if kind == "percent":
            return "%%"
        return text.replace("%", "%%") if kind in ("quoted", "comment") else text

    return _TOKENS.sub(replace, sql)


# -- the db handed to write and read functions --------------------------------------------


class _WholeNumberLoader(Loader):
    """NUMERIC as ``int`` when whole (``SUM`` of ``BIGINT``), else ``float``, as SQLite."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        try:
            return int(text)
        except ValueError:
            return float(text)


class PostgresDatabase:
    """One connection inside one transaction, with the SQLite side's ``execute`` shape."""

    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> psycopg.Cursor[Any]:
        if not params:  # no parameters: psycopg reads the text as it is
            return self.conn.execute(sql)
        if not isinstance(params, Mapping):
            params = list(params)
        return self.conn.execute(to_pyformat(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), list(rows))

    def executescript(self, sql: str) -> None:
        """Several statements without parameters, in the caller's transaction."""
        self.conn.execute(sql)

    def notify(self, channel: str, payload: str) -> None:
        """Announce a change to every listening process, when this transaction commits
        (see :mod:`paddock.store.notifications`)."""
        self.conn.execute("SELECT pg_notify(%s, %s)", [channel, payload])


# -- the store ---------------------------------------------------------------------------


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (pg_errors.SerializationFailure, pg_errors.DeadlockDetected))


class PostgresStore:
    """One PostgreSQL database used from asyncio.

    Build it with ``await PostgresStore.open(url)`` and release it with
    ``await store.close()`` (or ``async with await PostgresStore.open(url) as store``).
    """

    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        writers: int = DEFAULT_WRITERS,
        readers: int = DEFAULT_READERS,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.writers = writers
        self.readers = readers
        self.connect_timeout = connect_timeout
        self._writers = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=writers,
            open=False,
            timeout=connect_timeout,
            configure=functools.partial(_configure, read_only=False),
            name="paddock-write",
        )
        self._readers = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=readers,
            open=False,
            timeout=connect_timeout,
            configure=functools.partial(_configure, read_only=True),
            name="paddock-read",
        )
        # As many threads as connections: a thread never waits for a connection.
        self._write_threads = ThreadPoolExecutor(writers, "paddock-pg-writer")
        self._read_threads = ThreadPoolExecutor(readers, "paddock-pg-reader")
        self._closed = False
        self.listener = Listener(url, connect_timeout=connect_timeout)
        self.server_version = ""
        self.retries = 0  # writes run again after a serialization failure (for benchmarks)
        self._retries_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        migrations: Any = None,
        writers: int = DEFAULT_WRITERS,
        readers: int = DEFAULT_READERS,
        connect_timeout: float = 10.0,
    ) -> PostgresStore:
        """Connect to ``url`` and apply pending migrations.

        ``migrations`` defaults to Paddock's own schema
        (:data:`paddock.store.pg_migrations.MIGRATIONS`). Raises :class:`StoreUnavailable`
        (the cause chained) when the server cannot be reached or a migration fails.
        """
        if migrations is None:
            from paddock.store.pg_migrations import MIGRATIONS

            migrations = MIGRATIONS
        store = cls(url, writers=writers, readers=readers, connect_timeout=connect_timeout)
        try:
            await asyncio.to_thread(store._open_pools)
            store.server_version = await store.read(_server_version)
            await asyncio.to_thread(store._migrate, migrations)
        except psycopg.Error as exc:  # e.g. no right to create the tables
            await store.close()
            raise StoreUnavailable() from exc
        except BaseException:
            await store.close()
            raise
        return store

    def _open_pools(self) -> None:
        # One direct connection first: the pool would retry until its timeout and then
        # keep only "couldn't get a connection", where this says why (no such database...).
        try:
            psycopg.connect(self.url, connect_timeout=max(1, round(self.connect_timeout))).close()
            for pool in (self._writers, self._readers):
                pool.open(wait=True)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreUnavailable() from exc

    def _migrate(self, migrations: Any) -> list[str]:
        with self._writers.connection() as conn:
            return migrations.apply(conn)

    async def close(self) -> None:
        """Finish running writes and reads, then close every connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self.listener.close()
        await asyncio.to_thread(self._write_threads.shutdown, wait=True)
        await asyncio.to_thread(self._read_threads.shutdown, wait=True)
        await asyncio.to_thread(self._writers.close)
        await asyncio.to_thread(self._readers.close)

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- public API ----------------------------------------------------------------------

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` in one SERIALIZABLE transaction; its result once committed.

        An exception from ``fn`` rolls back everything ``fn`` wrote and is raised here.
        A serialization failure or deadlock runs ``fn`` again (at most
        :data:`WRITE_ATTEMPTS` times, then :class:`StoreBusy`).
        """
        if self._closed:
            raise RuntimeError("store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_threads, self._run_write, fn, args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` in one read-only REPEATABLE READ transaction."""
        if self._closed:
            raise RuntimeError("store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_threads, self._run_read, fn, args)

    async def listen(
        self, channel: str, on_notify: OnNotify, on_missed: OnMissed | None = None
    ) -> Subscription:
        """Call ``on_notify(payload)`` on the event loop for every ``db.notify(channel,
        payload)`` committed by any process, and ``on_missed()`` when some may have been
        lost (see :mod:`paddock.store.notifications`). One connection serves them all."""
        if self._closed:
            raise RuntimeError("store is closed")
        return await self.listener.subscribe(channel, on_notify, on_missed)

    # -- worker threads ------------------------------------------------------------------

    def _run_write(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        delay = _BACKOFF_FIRST
        for _attempt in range(WRITE_ATTEMPTS):
            try:
                return self._in_transaction(self._writers, fn, args)
            except psycopg.Error as exc:
                if not _is_retryable(exc):
                    raise
            with self._retries_lock:
                self.retries += 1
            time.sleep(random.uniform(0, delay))  # jitter: the rivals don't meet again
            delay = min(delay * 2, _BACKOFF_MAX)
        raise StoreBusy()

    def _run_read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        return self._in_transaction(self._readers, fn, args)

    def _in_transaction(
        self, pool: psycopg_pool.ConnectionPool, fn: Callable[..., T], args: tuple[Any, ...]
    ) -> T:
        """Run ``fn`` in a transaction on a pooled connection, and commit.

        A pooled connection may have died while idle (the server restarted, a proxy
        dropped it): when it turns out broken before COMMIT was sent, nothing was written,
        so ``fn`` runs once more on a fresh connection. A connection lost during COMMIT
        leaves the outcome unknown, and is :class:`StoreUnavailable`, as is a second loss.
        """
        for last_try in (False, True):
            try:
                conn = pool.getconn()
            except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as exc:
                raise StoreUnavailable() from exc
            committing = False
            try:
                value = fn(PostgresDatabase(conn), *args)
                committing = True
                conn.commit()
                return value
            except BaseException as exc:
                if not conn.broken:
                    conn.rollback()
                    raise
                if committing or last_try:
                    raise StoreUnavailable() from exc
            finally:
                pool.putconn(conn)  # the pool discards a broken connection
            log.warning("a pooled connection to the database was lost; trying a new one")
            pool.check()  # drop the other idle connections that died with it
        raise AssertionError("unreachable")


def _configure(conn: psycopg.Connection[Any], *, read_only: bool) -> None:
    conn.adapters.register_loader("numeric", _WholeNumberLoader)
    if read_only:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
    else:
        conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
    conn.commit()  # leave the pool's setup transaction, if any


def _server_version(db: PostgresDatabase) -> str:
    return str(db.execute("SHOW server_version").fetchone()[0]).split()[0]
