"""An asyncio-friendly SQLite store: one writer thread, read-only readers, numbered migrations.

SQLite connections belong to the thread that made them, and a write transaction blocks every
other writer, so the store keeps exactly one writer connection on a dedicated thread and
feeds it through a queue. ``await store.write(fn, *args)`` runs ``fn(db)`` on that thread
inside ``BEGIN IMMEDIATE``; ``await store.read(fn, *args)`` runs ``fn(db)`` on a small pool of
read-only connections, inside a read transaction so it sees one consistent snapshot. Neither
blocks the event loop, and in WAL mode readers never block the writer.

Group commit: when several writes are queued, the writer runs them in one transaction, each
inside its own savepoint (so one write's error rolls back only that write), and answers
them after the single COMMIT. A write is reported done only once it is durable
(``synchronous=FULL``). Because a batch may have to be replayed when a write's error
destroys the whole transaction, write functions must touch nothing but the database.
Cancelling ``await store.write(...)`` does not undo a write already queued: make writes
idempotent (the ledger keys every operation by job id) instead of relying on cancellation.

Whatever a write function raises (even a ``BaseException``) fails only that write. If the
writer itself breaks (its connection fails outside any write function), it rolls back,
answers the writes it was running and every later one with :class:`StoreUnavailable`
rather than leaving them to wait forever.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from paddock.errors import StoreBusy, StoreUnavailable
from paddock.store.notifications import OnMissed, OnNotify, Subscription
from paddock.store.write_queue import Outcome, WriteRequest, send

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("data") / "paddock.db"
T = TypeVar("T")


def _is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower()


class Store:
    """One SQLite database file used from asyncio.

    Build it with ``await Store.open(path)`` and release it with ``await store.close()``
    (or ``async with await Store.open(path) as store``).
    """

    dialect = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 5.0,
        readers: int = 2,
        max_batch: int = 256,
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[WriteRequest | None] = queue.SimpleQueue()
        self._writer = threading.Thread(
            target=self._run_writer, name=f"paddock-writer:{path.name}", daemon=True
        )
        self._reader_count = readers
        self._readers = ThreadPoolExecutor(
            max_workers=readers, thread_name_prefix=f"paddock-reader:{path.name}"
        )
        self._reader_local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._db: Database | None = None
        self._closed = False
        self._stop_seen = False  # the writer took close()'s None off the queue
        self._broken: BaseException | None = None  # why the writer gave up, if it did

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | Path = DEFAULT_PATH,
        *,
        migrations: Migrations | None = None,
        busy_timeout: float = 5.0,
        readers: int = 2,
        max_batch: int = 256,
    ) -> Store:
        """Open (creating if needed) the database at ``path`` and apply pending migrations.

        ``migrations`` defaults to Paddock's own schema (:mod:`paddock.migrations`).
        """
        if migrations is None:
            from paddock.migrations import MIGRATIONS

            migrations = MIGRATIONS
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(path, busy_timeout=busy_timeout, readers=readers, max_batch=max_batch)
        store._writer.start()
        try:
            await store._submit(_apply_migrations, (migrations,), transactional=False)
            await store._start_readers()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Finish queued writes, then close every connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._readers.shutdown, wait=True)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- public API ----------------------------------------------------------------------

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` on the writer thread in ``BEGIN IMMEDIATE`` ... ``COMMIT``.

        ``db`` is a :class:`sqlite_utils.Database` (``db.dialect`` is ``"sqlite"``; see
        :mod:`paddock.store.postgres` for the other). An exception from ``fn`` rolls back
        everything ``fn`` wrote and is raised here; otherwise ``fn``'s return value is
        returned once the transaction is committed. Raises :class:`StoreBusy` when another
        process holds the write lock for longer than the busy timeout.
        """
        return await self._submit(fn, args, transactional=True)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` on a read-only connection, in one read transaction."""
        if self._closed:
            raise RuntimeError("store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, fn, args)

    async def listen(
        self, channel: str, on_notify: OnNotify, on_missed: OnMissed | None = None
    ) -> Subscription:
        """The PostgreSQL store's ``listen``, for one interface: with one process on the
        file nothing comes from outside, so the subscription is always live and never
        called (see :mod:`paddock.store.notifications`)."""
        if self._closed:
            raise RuntimeError("store is closed")
        return Subscription(channel, on_notify, on_missed)

    # -- writer thread -------------------------------------------------------------------

    async def _submit(
        self, fn: Callable[..., T], args: tuple[Any, ...], *, transactional: bool
    ) -> T:
        if self._closed:
            raise RuntimeError("store is closed")
        if self._broken is not None:
            raise StoreUnavailable() from self._broken
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(WriteRequest(fn, args, future, loop, transactional))
        return await future

    def _connect(self, uri: str | None = None) -> sqlite3.Connection:
        target = uri if uri is not None else str(self.path)
        conn = sqlite3.connect(
            target,
            uri=uri is not None,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            timeout=self.busy_timeout,
            check_same_thread=False,  # each connection is still used by one thread only
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _run_writer(self) -> None:
        try:
            self._conn = self._connect()
            self._enter_wal(self._conn)
            self._conn.execute("PRAGMA synchronous = FULL")
            self._db = Database(self._conn, execute_plugins=False)
            self._db.dialect = "sqlite"  # type: ignore[attr-defined]
            self._db.notify = _notify_nobody  # type: ignore[attr-defined]
        except sqlite3.Error as exc:  # every waiting caller gets it, chained: no traceback here
            log.error("cannot open %s: %s", self.path, exc)
            self._fail_everything(exc)
            return
        batch: list[WriteRequest] = []
        try:
            while not self._stop_seen:
                first = self._queue.get()
                if first is None:
                    self._stop_seen = True
                    break
                batch = [first]
                while len(batch) < self.max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self._stop_seen = True
                        break
                    batch.append(item)
                plain = [r for r in batch if r.transactional]
                for request in batch:
                    if not request.transactional:
                        self._run_plain(request)
                if plain:
                    self._run_batch(plain)
                batch = []
        except BaseException as exc:
            # Not a write function's error (those fail only their write) but the writer's
            # own: its connection is in an unknown state, so no write can be trusted to it.
            log.critical("the writer of %s failed; refusing every write", self.path, exc_info=True)
            self._broken = exc
            error = StoreUnavailable()
            error.__cause__ = exc
            self._abandon_connection()
            # Writes of this batch already answered keep their answer: _deliver skips them.
            send([Outcome(r, False, error) for r in batch])
            self._fail_everything(error)
            return
        self._conn.close()

    def _enter_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL, waiting up to the busy timeout for other openers.

        When two connections open a fresh file at once, SQLite can refuse the switch with
        "database is locked" at once, without calling its busy handler: retry it here.
        """
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)

    def _abandon_connection(self) -> None:
        """Roll back and close the writer's connection after a fatal error, come what may."""
        conn = self._conn
        if conn is None:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.warning("could not roll back after the writer failed", exc_info=True)
        try:
            conn.close()
        except sqlite3.Error:
            log.warning("closing the failed writer's connection failed", exc_info=True)

    def _fail_everything(self, error: BaseException) -> None:
        """The writer cannot write: answer every request with ``error`` until closed."""
        while not self._stop_seen:
            item = self._queue.get()
            if item is None:
                self._stop_seen = True
                break
            send([Outcome(item, False, error)])

    def _run_plain(self, request: WriteRequest) -> None:
        try:
            value = request.fn(self._db, *request.args)
        except BaseException as exc:
            send([Outcome(request, False, exc)])
        else:
            send([Outcome(request, True, value)])

    def _run_batch(self, batch: list[WriteRequest]) -> None:
        """Run ``batch`` in one transaction, a savepoint per write; answer after COMMIT.

        Errors of the write functions are answered at once (their writes are rolled back
        whatever happens next); anything else raised here is the writer's own failure.
        """
        conn = self._conn
        assert conn is not None
        todo = batch
        while todo:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                error = StoreBusy() if _is_busy(exc) else exc
                send([Outcome(r, False, error) for r in todo])
                return
            done: list[Outcome] = []
            redo: list[WriteRequest] = []
            for index, request in enumerate(todo):
                conn.execute("SAVEPOINT paddock_write")
                try:
                    value = request.fn(self._db, *request.args)
                except BaseException as exc:  # even KeyboardInterrupt fails only this write
                    send([Outcome(request, False, exc)])
                    if conn.in_transaction:
                        conn.execute("ROLLBACK TO paddock_write")
                        conn.execute("RELEASE paddock_write")
                        continue
                    # The error ended the whole transaction: replay the rest in a new one.
                    redo = [o.request for o in done] + todo[index + 1 :]
                    done = []
                    break
                conn.execute("RELEASE paddock_write")
                done.append(Outcome(request, True, value))
            if conn.in_transaction:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    error = StoreBusy() if _is_busy(exc) else exc
                    done = [Outcome(o.request, False, error) for o in done]
            send(done)
            todo = redo

    # -- readers -------------------------------------------------------------------------

    def _reader_db(self) -> Database:
        db = getattr(self._reader_local, "db", None)
        if db is None:
            conn = self._connect(self.path.resolve().as_uri() + "?mode=ro")
            with self._reader_lock:
                self._reader_conns.append(conn)
            db = Database(conn, execute_plugins=False, recursive_triggers=False)
            db.dialect = "sqlite"  # type: ignore[attr-defined]
            self._reader_local.db = db
        return db

    async def _start_readers(self) -> None:
        """Start every reader thread with its connection now. Left to the first reads, a
        thread's start (``Thread.start`` waits for the new thread to run) and its connection
        fell in the first burst of commands, on the event loop's time, before members'
        first answers."""
        everyone = threading.Barrier(self._reader_count)  # one read per thread, not reused
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(
            loop.run_in_executor(self._readers, self._start_reader, everyone)
            for _ in range(self._reader_count)
        ))

    def _start_reader(self, everyone: threading.Barrier) -> None:
        self._reader_db()
        everyone.wait(timeout=self.busy_timeout)

    def _run_read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        db = self._reader_db()
        db.conn.execute("BEGIN")
        try:
            return fn(db, *args)
        finally:
            db.conn.execute("ROLLBACK")


def _notify_nobody(channel: str, payload: str) -> None:
    """``db.notify`` on SQLite: the one process on the file updates its caches itself."""


def _apply_migrations(db: Database, migrations: Migrations) -> list[str]:
    """Apply pending migrations one at a time, each in its own ``BEGIN IMMEDIATE``.

    Taking the write lock first means two processes opening a fresh file at once cannot
    both try to apply the same migration.
    """
    applied: list[str] = []
    while True:
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            pending = migrations.pending(db)
            if not pending:
                db.conn.execute("ROLLBACK")
                return applied
            after = [m.name for m in pending[1:]]
            # Inside our transaction, sqlite-utils runs the migration in a savepoint.
            migrations.apply(db, stop_before=after or None)
            db.conn.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        applied.append(pending[0].name)
        log.info("applied migration %s to %s", pending[0].name, db.conn)
