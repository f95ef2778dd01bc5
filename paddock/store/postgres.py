"""The store on PostgreSQL: the same interface as :class:`paddock.store.sqlite.Store`.

Every write in Paddock is a synchronous SQL program ``fn(db, *args)`` (the ledger's
reserve and settle, a job's transitions, a settings change), shared by both backends.
Rather than keep a second, async copy of each, this store runs them as they are on
worker threads, each borrowing a connection from a :mod:`psycopg_pool` pool (psycopg 3),
so the event loop never waits on the database: ``writers`` writer threads (one by
default, see :data:`DEFAULT_WRITERS`) taking writes from one queue, and ``readers``
threads and connections for reads.

``await store.write(fn, *args)`` queues ``fn(db, *args)``. A writer takes queued writes,
up to ``max_batch`` (:data:`DEFAULT_MAX_BATCH`), into one ``BEGIN ISOLATION LEVEL
SERIALIZABLE`` transaction (group commit, as SQLite's writer does) and answers them after
its COMMIT. It first runs them one after the other without savepoints; if one raises,
that transaction is rolled back and the batch runs again with a savepoint around each
write, so the error undoes only its own write. SQLite gets its invariants from its single
writer; here several processes write at once, and SERIALIZABLE makes their transactions
behave as if they had run one at a time: when PostgreSQL cannot promise that
(serialization failure 40001, deadlock 40P01) a batch of several writes runs again one
write per transaction, and a single write runs again after a jittered backoff, up to
:data:`WRITE_ATTEMPTS` times, then :class:`StoreBusy`. That is safe because write
functions touch nothing but the database (the SQLite store's rule too).

Round trips to the server are what a write costs, so the writer's ``db`` defers them
(:class:`PostgresDatabase` with ``deferred=True``): a statement is sent when its result
is first looked at, with every statement queued before it in one message; one whose
result nobody reads (a journal row) waits for the next, and BEGIN goes with the first.
A reserve+settle pair took 15 round trips (BEGIN and COMMIT each one of them); now 8
and a share of one COMMIT when writes queue, 10 alone.

``await store.read(fn, *args)`` runs ``fn(db, *args)`` in a read-only REPEATABLE READ
transaction: one snapshot, like SQLite's read transaction.

``db`` offers what the write and read functions use: ``db.execute(sql, params)`` (a
psycopg cursor, or a :class:`Statement` with the same ``fetchone``, ``fetchall``,
iteration and ``rowcount``), ``db.executescript(sql)``, ``db.executemany(sql, rows)`` and
``db.dialect`` (``"postgresql"``; the SQLite store's ``db.dialect`` is ``"sqlite"``) for
the rare statement that must differ. The SQL keeps SQLite's ``?`` and ``:name``
placeholders; :func:`to_pyformat` translates them once per statement text. Whole numbers
come back as ``int`` (a ``SUM`` of ``BIGINT`` is ``NUMERIC`` in PostgreSQL), as from
SQLite.

When the server cannot be reached, ``write`` and ``read`` raise :class:`StoreUnavailable`
(``server=True``: try again later; the cause chained).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.adapt import Loader

from paddock.errors import StoreBusy, StoreUnavailable
from paddock.store.notifications import Listener, OnMissed, OnNotify, Subscription
from paddock.store.write_queue import Outcome, WriteRequest, send

log = logging.getLogger(__name__)

T = TypeVar("T")
WRITE_ATTEMPTS = 40  # a serialization failure or deadlock runs a write again, this often
# Queued writes committed at once, at most (group commit: 1.26x / 1.41x the ledger's
# pairs/s at 100 / 1,000 members in one process, bench/ledger.py). A batch that loses a
# race is not run again whole: it reads and writes the rows of many jobs, members and
# leases, so with other processes writing it lost again and again, and after
# WRITE_ATTEMPTS every write in it was refused (bench/cluster.py, 4 processes: 269-317
# of 1,000 members told the ledger was busy).
DEFAULT_MAX_BATCH = 256
# Writer threads (and connections) of one process. One, like SQLite's writer, and it
# commits whatever is queued at once: with several, each batch's reads and inserts of
# holds clash with the others' under SERIALIZABLE (its predicate locks are kept per index
# page) and whole batches run again. Other processes still write at the same time;
# SERIALIZABLE keeps that correct.
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
    """One connection inside one transaction, with the SQLite side's ``execute`` shape.

    Built with ``deferred=True`` (the writer's), ``execute`` sends nothing yet: it returns
    a :class:`Statement` that is sent when its result is first looked at (``fetchone``,
    ``rowcount``...), together with every statement queued before it, in one round trip;
    a statement whose result nobody looks at (a journal row, a hold's insert) goes with
    the next one that is needed, or with the COMMIT. Errors therefore surface at the next
    round trip, still inside the same transaction; the store's writer attributes them
    (see :meth:`PostgresStore._run_writes`). Reads run each statement at once.
    """

    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any], *, deferred: bool = False) -> None:
        self.conn = conn
        self.deferred = deferred
        self.committing = False  # the COMMIT was sent: a lost connection leaves it unknown
        self._queued: list[Statement] = []
        self._sent_any = False
        self._client: psycopg.ClientCursor[Any] | None = None

    def execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> psycopg.Cursor[Any] | Statement:
        if self.deferred:
            statement = Statement(self, sql, params)
            self._queued.append(statement)
            return statement
        return self._run(sql, params)

    def _run(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None
    ) -> psycopg.Cursor[Any]:
        if not params:  # no parameters: psycopg reads the text as it is
            return self.conn.execute(sql)
        if not isinstance(params, Mapping):
            params = list(params)
        return self.conn.execute(to_pyformat(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
        self.send()
        with self.conn.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), list(rows))

    def executescript(self, sql: str) -> None:
        """Several statements without parameters, in the caller's transaction."""
        self.send()
        self.conn.execute(sql)

    def notify(self, channel: str, payload: str) -> None:
        """Announce a change to every listening process, when this transaction commits
        (see :mod:`paddock.store.notifications`)."""
        self.execute("SELECT pg_notify(?, ?)", [channel, payload])

    def send(self, then: str | None = None) -> None:
        """Send the queued statements, and then ``then`` (a command without parameters:
        ``COMMIT``, ``SAVEPOINT ...``), in one round trip; each keeps its result."""
        if then == "COMMIT":
            if not self._sent_any:
                # Never COMMIT in the transaction's first round trip: a connection that
                # died while idle fails that one, and must leave no doubt it wrote nothing.
                self.send()
            self.committing = True
        queued, self._queued = self._queued, []
        self._sent_any = True
        if len(queued) == 1 and then is None:  # alone: bound by the server, prepared
            queued[0].keep_cursor(self._run(queued[0].sql, queued[0].params))
            return
        if not queued and then is None:
            return
        if self._client is None:
            self._client = psycopg.ClientCursor(self.conn)
        client = self._client
        texts = [statement.bound(client) for statement in queued]
        client.execute("; ".join(texts + ([then] if then else [])))
        for index, statement in enumerate(queued):
            if index:
                client.nextset()
            rows = client.fetchall() if client.description is not None else None
            statement.keep_rows(rows, client.rowcount)

    def discard(self) -> None:
        """Forget the queued statements (their write failed before they were sent)."""
        self._queued = []


class Statement:
    """A statement of a deferred :class:`PostgresDatabase`: sent when its result is first
    needed. It offers what write functions use of a cursor: ``fetchone``, ``fetchall``,
    iteration and ``rowcount``."""

    __slots__ = ("_cursor", "_db", "_next", "_rowcount", "_rows", "_sent", "params", "sql")

    def __init__(
        self, db: PostgresDatabase, sql: str, params: Sequence[Any] | Mapping[str, Any] | None
    ) -> None:
        self._db = db
        self.sql = sql
        self.params = params
        self._cursor: psycopg.Cursor[Any] | None = None
        self._rows: list[Any] | None = None
        self._rowcount = -1
        self._next = 0
        self._sent = False

    def bound(self, client: psycopg.ClientCursor[Any]) -> str:
        """The statement's text with its parameters written in (quoted by psycopg)."""
        if not self.params:
            return self.sql
        params = self.params if isinstance(self.params, Mapping) else list(self.params)
        return client.mogrify(to_pyformat(self.sql), params)

    def keep_cursor(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor
        self._sent = True

    def keep_rows(self, rows: list[Any] | None, rowcount: int) -> None:
        self._rows = rows
        self._rowcount = rowcount
        self._sent = True

    def _result(self) -> list[Any] | None:
        if not self._sent:
            self._db.send()
        if self._cursor is None and self._rows is None:
            raise psycopg.ProgrammingError("the statement didn't produce a result")
        return self._rows

    def fetchone(self) -> Any:
        rows = self._result()
        if self._cursor is not None:
            return self._cursor.fetchone()
        assert rows is not None
        if self._next >= len(rows):
            return None
        self._next += 1
        return rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rows = self._result()
        if self._cursor is not None:
            return self._cursor.fetchall()
        assert rows is not None
        rest, self._next = rows[self._next :], len(rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    @property
    def rowcount(self) -> int:
        if not self._sent:
            self._db.send()
        return self._cursor.rowcount if self._cursor is not None else self._rowcount


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
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self.url = url
        self.writers = writers
        self.readers = readers
        self.connect_timeout = connect_timeout
        self.max_batch = max_batch
        self._writers = self._pool("paddock-write", writers, read_only=False)
        self._readers = self._pool("paddock-read", readers, read_only=True)
        self._queue: queue.SimpleQueue[WriteRequest | None] = queue.SimpleQueue()
        self._write_threads = [
            threading.Thread(target=self._run_writer, name=f"paddock-pg-writer-{n}", daemon=True)
            for n in range(writers)
        ]
        # As many reading threads as connections: a thread never waits for a connection.
        self._read_threads = ThreadPoolExecutor(readers, "paddock-pg-reader")
        self._closed = False
        self.listener = Listener(url, connect_timeout=connect_timeout)
        self.server_version = ""
        self.retries = 0  # transactions run again after a serialization failure (benchmarks)
        self.commits = 0  # write transactions committed (benchmarks: writes per COMMIT)
        self._counts_lock = threading.Lock()

    def _pool(self, name: str, size: int, *, read_only: bool) -> psycopg_pool.ConnectionPool:
        # Every connection opened with the store (min_size=size): opened on demand, the
        # first burst of commands waited for them.
        return psycopg_pool.ConnectionPool(
            self.url,
            min_size=size,
            max_size=size,
            open=False,
            timeout=self.connect_timeout,
            configure=functools.partial(_configure, read_only=read_only),
            name=name,
        )

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
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> PostgresStore:
        """Connect to ``url`` and apply pending migrations.

        ``migrations`` defaults to Paddock's own schema
        (:data:`paddock.store.pg_migrations.MIGRATIONS`). Raises :class:`StoreUnavailable`
        (the cause chained) when the server cannot be reached or a migration fails.
        """
        if migrations is None:
            from paddock.store.pg_migrations import MIGRATIONS

            migrations = MIGRATIONS
        store = cls(
            url,
            writers=writers,
            readers=readers,
            connect_timeout=connect_timeout,
            max_batch=max_batch,
        )
        try:
            await asyncio.to_thread(store._open_pools)
            await store._start_readers()
            store.server_version = await store.read(_server_version)
            await asyncio.to_thread(store._migrate, migrations)
        except psycopg.Error as exc:  # e.g. no right to create the tables
            await store.close()
            raise StoreUnavailable(server=True) from exc
        except BaseException:
            await store.close()
            raise
        for thread in store._write_threads:
            thread.start()
        return store

    def _open_pools(self) -> None:
        # One direct connection first: the pool would retry until its timeout and then
        # keep only "couldn't get a connection", where this says why (no such database...).
        try:
            psycopg.connect(self.url, connect_timeout=max(1, round(self.connect_timeout))).close()
            for pool in (self._writers, self._readers):
                pool.open(wait=True)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreUnavailable(server=True) from exc

    async def _start_readers(self) -> None:
        """Start every reading thread now. Left to the first reads, a thread's start
        (``Thread.start`` waits for the new thread to run) fell in the first burst of
        commands, on the event loop's time, before members' first answers."""
        everyone = threading.Barrier(self.readers)  # one call per thread, not reused
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(
            loop.run_in_executor(self._read_threads, everyone.wait, self.connect_timeout)
            for _ in range(self.readers)
        ))

    def _migrate(self, migrations: Any) -> list[str]:
        with self._writers.connection() as conn:
            return migrations.apply(conn)

    async def close(self) -> None:
        """Finish queued writes and running reads, then close every connection. Safe to
        call twice."""
        if self._closed:
            return
        self._closed = True
        await self.listener.close()
        started = [thread for thread in self._write_threads if thread.is_alive()]
        for _thread in started:
            self._queue.put(None)  # each writer takes one and stops, after what came before
        for thread in started:
            await asyncio.to_thread(thread.join)
        await asyncio.to_thread(self._read_threads.shutdown, wait=True)
        await asyncio.to_thread(self._writers.close)
        await asyncio.to_thread(self._readers.close)

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- public API ----------------------------------------------------------------------

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` in a SERIALIZABLE transaction; its result once committed.

        The transaction may hold other queued writes too (group commit, see the module's
        docstring). An exception from ``fn`` rolls back everything ``fn`` wrote, and only
        that, and is raised here. A serialization failure or deadlock runs the
        transaction again (at most :data:`WRITE_ATTEMPTS` times, then
        :class:`StoreBusy`).
        """
        if self._closed:
            raise RuntimeError("store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(WriteRequest(fn, args, future, loop))
        return await future

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

    # -- writer threads ------------------------------------------------------------------

    def _run_writer(self) -> None:
        """Take the queued writes, up to ``max_batch`` at once, until close()'s ``None``."""
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                outcomes = self._run_batch(batch)
            except (StoreBusy, StoreUnavailable) as exc:
                outcomes = [Outcome(request, False, exc) for request in batch]
            except BaseException as exc:  # the writer's own failure: fail this batch, go on
                log.exception("a batch of %d write(s) failed outside its write functions",
                              len(batch))
                outcomes = [Outcome(request, False, exc) for request in batch]
            send(outcomes)
            if stop:
                return

    def _run_batch(self, batch: list[WriteRequest]) -> list[Outcome]:
        """Run ``batch`` in one transaction until it commits; the writes' outcomes.

        First without savepoints (each costs a round trip). When a write raises, that
        transaction is rolled back and the batch runs again with a savepoint around each
        write, so the error undoes only its own write. A serialization failure of a single
        write (its whole transaction is lost) runs it again after a jittered backoff; after
        :data:`WRITE_ATTEMPTS` of them, :class:`StoreBusy`. A batch of several writes
        that loses a race (a serialization failure or a deadlock) runs each write in its
        own transaction instead: its footprint is all of theirs, so run again whole it
        would meet the other processes' writes again, and a deadlock from locks that
        writes take in a fixed order (the leases' advisory locks) needs a batch to string
        several together.
        """
        savepoints = False
        delay = _BACKOFF_FIRST
        attempts = 0
        while True:
            try:
                return self._commit_batch(batch, savepoints)
            except _WriteRaised:
                savepoints = True  # at once: nothing clashed, a write refused
                continue
            except psycopg.Error as exc:
                if not _is_retryable(exc):
                    raise
                if len(batch) > 1:  # one at a time: each meets only its own rivals
                    with self._counts_lock:
                        self.retries += 1
                    return [outcome for request in batch for outcome in self._alone(request)]
            attempts += 1
            with self._counts_lock:
                self.retries += 1
            if attempts >= WRITE_ATTEMPTS:
                raise StoreBusy()
            time.sleep(random.uniform(0, delay))  # jitter: the rivals don't meet again
            delay = min(delay * 2, _BACKOFF_MAX)

    def _alone(self, request: WriteRequest) -> list[Outcome]:
        """One write in its own transaction, retried as any; its outcome, even when that
        is the store's own refusal (the writes before it have committed)."""
        try:
            return self._run_batch([request])
        except (StoreBusy, StoreUnavailable) as exc:
            return [Outcome(request, False, exc)]
        except BaseException as exc:  # the writer's own failure, for this write alone
            log.exception("a write failed outside its write function")
            return [Outcome(request, False, exc)]

    def _commit_batch(self, batch: list[WriteRequest], savepoints: bool) -> list[Outcome]:
        """Run ``batch`` in a transaction on a pooled connection, and commit.

        A pooled connection may have died while idle (the server restarted, a proxy
        dropped it): when it turns out broken before COMMIT was sent, nothing was written,
        so the batch runs once more on a fresh connection. A connection lost during COMMIT
        leaves the outcome unknown, and is :class:`StoreUnavailable`, as is a second loss.
        """
        pool = self._writers
        for last_try in (False, True):
            conn = self._borrow(pool)
            db = PostgresDatabase(conn, deferred=True)
            try:
                outcomes = self._run_writes(db, batch, savepoints)
                with self._counts_lock:
                    self.commits += 1
                return outcomes
            except BaseException as exc:
                if not conn.broken:
                    conn.rollback()
                    raise
                if db.committing or last_try:
                    raise StoreUnavailable(server=True) from exc
            finally:
                pool.putconn(conn)  # the pool discards a broken connection
            self._lost_a_connection(pool)
        raise AssertionError("unreachable")

    def _run_writes(
        self, db: PostgresDatabase, batch: list[WriteRequest], savepoints: bool
    ) -> list[Outcome]:
        """Each write of ``batch`` in one transaction, then COMMIT; their outcomes, to be
        sent only now that it committed (under SERIALIZABLE, what a transaction read, its
        refusals included, holds only if it commits).

        Without ``savepoints``, a write that raises (or whose statements, sent later,
        fail) ends the attempt with :class:`_WriteRaised`, unless it is the batch's only
        write: then its error is its outcome and nothing is committed. With them, it is
        rolled back to its savepoint, its statements sent before its savepoint is
        released, and the others go on. A serialization failure, a deadlock or a lost
        connection ends the attempt.
        """
        conn = db.conn
        db.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")  # goes with the first statement
        outcomes: list[Outcome] = []
        try:
            for request in batch:
                if savepoints:
                    db.send("SAVEPOINT paddock_write")
                try:
                    value = request.fn(db, *request.args)
                    if savepoints:
                        db.send("RELEASE paddock_write")
                except BaseException as exc:  # even KeyboardInterrupt fails only this write
                    if not savepoints or conn.broken or _is_retryable(exc):
                        raise
                    db.discard()
                    conn.execute("ROLLBACK TO SAVEPOINT paddock_write; RELEASE paddock_write")
                    outcomes.append(Outcome(request, False, exc))
                    continue
                outcomes.append(Outcome(request, True, value))
            db.send("COMMIT")
        except BaseException as exc:
            if savepoints or conn.broken or _is_retryable(exc):
                raise
            db.discard()
            conn.rollback()
            if len(batch) > 1:
                raise _WriteRaised() from exc
            return [Outcome(batch[0], False, exc)]
        return outcomes

    # -- reading threads -----------------------------------------------------------------

    def _run_read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """Run ``fn`` in a read-only transaction on a pooled connection (once more on a
        fresh connection if the first turns out to have died while idle)."""
        pool = self._readers
        for last_try in (False, True):
            conn = self._borrow(pool)
            try:
                value = fn(PostgresDatabase(conn), *args)
                conn.commit()
                return value
            except BaseException as exc:
                if not conn.broken:
                    conn.rollback()
                    raise
                if last_try:
                    raise StoreUnavailable(server=True) from exc
            finally:
                pool.putconn(conn)
            self._lost_a_connection(pool)
        raise AssertionError("unreachable")

    @staticmethod
    def _borrow(pool: psycopg_pool.ConnectionPool) -> psycopg.Connection[Any]:
        try:
            return pool.getconn()
        except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailable(server=True) from exc

    @staticmethod
    def _lost_a_connection(pool: psycopg_pool.ConnectionPool) -> None:
        log.warning("a pooled connection to the database was lost; trying a new one")
        pool.check()  # drop the other idle connections that died with it


class _WriteRaised(Exception):
    """A write of a batch run without savepoints raised: run the batch with them."""


def _configure(conn: psycopg.Connection[Any], *, read_only: bool) -> None:
    conn.adapters.register_loader("numeric", _WholeNumberLoader)
    if read_only:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
    else:
        # The writer says BEGIN ISOLATION LEVEL SERIALIZABLE itself, in the same round
        # trip as its first statement (psycopg would send it alone).
        conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        conn.autocommit = True
    conn.commit()  # leave the pool's setup transaction, if any


def _server_version(db: PostgresDatabase) -> str:
    return str(db.execute("SHOW server_version").fetchone()[0]).split()[0]
