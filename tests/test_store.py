"""The SQLite store: migrations, pragmas, transactions, group commit and read-only readers;
the tests taking ``any_store`` run on PostgreSQL too (tests/test_store_postgres.py has
PostgreSQL's own)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlite_utils
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from paddock.errors import StoreBusy, StoreUnavailable
from paddock.migrations import MIGRATIONS
from paddock.store import DEFAULT_PATH, Store, open_store
from tests.postgres_fixtures import integrity_error, read_only_error

# Every registered migration, in order, as a fresh database would have them pending.
ALL_MIGRATIONS = [m.name for m in MIGRATIONS.pending(sqlite_utils.Database(memory=True))]
assert ALL_MIGRATIONS[:2] == ["m001_ledger", "m002_jobs"]


@pytest.fixture
async def store(tmp_path: Path):
    store = await Store.open(tmp_path / "nested" / "paddock.db")
    yield store
    await store.close()


@pytest.fixture
async def any_store(db_location: Path | str):
    """The tests that hold for both backends take this one: SQLite, then PostgreSQL."""
    store = await open_store(db_location)
    yield store
    await store.close()


async def test_open_creates_the_folder_and_applies_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "paddock.db"
    store = await Store.open(path)
    try:
        assert path.exists()
        applied = await store.read(lambda db: [m.name for m in MIGRATIONS.applied(db)])
        assert applied == ALL_MIGRATIONS
        tables = set(await store.read(lambda db: db.table_names()))
        assert {"accounts", "holds", "journal", "jobs", "guild_settings"} <= tables
    finally:
        await store.close()


async def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "paddock.db"
    await (await Store.open(path)).close()
    store = await Store.open(path)
    try:
        rows = await store.read(
            lambda db: db.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone()[0]
        )
        assert rows == len(ALL_MIGRATIONS)
    finally:
        await store.close()


async def test_a_failing_migration_leaves_no_trace(tmp_path: Path) -> None:
    broken = Migrations("broken")

    @broken()
    def m001_ok(db: Database) -> None:
        db.execute("CREATE TABLE ok (x)")

    @broken()
    def m002_fails(db: Database) -> None:
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await Store.open(tmp_path / "m.db", migrations=broken)
    db = Database(tmp_path / "m.db")
    assert "ok" in db.table_names()
    assert "half" not in db.table_names()
    assert [m.name for m in broken.applied(db)] == ["m001_ok"]
    db.close()


async def test_writer_pragmas_are_set_for_money(store: Store) -> None:
    def pragmas(db: Database) -> tuple[str, int, int, int]:
        return (
            db.execute("PRAGMA journal_mode").fetchone()[0],
            db.execute("PRAGMA synchronous").fetchone()[0],
            db.execute("PRAGMA foreign_keys").fetchone()[0],
            db.execute("PRAGMA busy_timeout").fetchone()[0],
        )

    mode, synchronous, foreign_keys, busy = await store.write(pragmas)
    assert (mode, synchronous, foreign_keys) == ("wal", 2, 1)  # 2 is FULL
    assert busy == 5000


async def test_the_busy_timeout_asked_for_is_the_writers(tmp_path: Path) -> None:
    """PADDOCK_SQLITE_BUSY_SECONDS reaches the connection that waits for another program's
    write lock (bot.py opens the store through open_store with it)."""
    store = await open_store(tmp_path / "paddock.db", busy_timeout=0.25)
    try:
        waits = await store.write(lambda db: db.execute("PRAGMA busy_timeout").fetchone()[0])
    finally:
        await store.close()
    assert waits == 250


async def test_write_runs_in_an_immediate_transaction_on_one_thread(store: Store) -> None:
    def where(db: Database) -> tuple[bool, str]:
        return db.conn.in_transaction, threading.current_thread().name

    seen = await asyncio.gather(*(store.write(where) for _ in range(20)))
    assert all(in_tx for in_tx, _ in seen)
    assert len({name for _, name in seen}) == 1
    assert seen[0][1] != threading.current_thread().name


async def test_write_commits_and_returns_the_result(any_store: Store) -> None:
    store = any_store
    await store.write(lambda db: db.execute("CREATE TABLE t (x INTEGER)"))
    assert await store.write(lambda db: db.execute("INSERT INTO t VALUES (7)").rowcount) == 1
    assert await store.read(lambda db: db.execute("SELECT x FROM t").fetchall()) == [(7,)]


async def test_a_failing_write_rolls_back_only_itself(any_store: Store) -> None:
    store = any_store
    await store.write(lambda db: db.execute("CREATE TABLE t (x INTEGER)"))

    def insert(db: Database, x: int) -> int:
        db.execute("INSERT INTO t VALUES (?)", [x])
        if x % 3 == 0:
            raise ValueError(f"refused {x}")
        return x

    results = await asyncio.gather(
        *(store.write(insert, x) for x in range(30)), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, ValueError)]
    assert len(failed) == 10
    stored = await store.read(lambda db: [r[0] for r in db.execute("SELECT x FROM t ORDER BY x")])
    assert stored == [x for x in range(30) if x % 3]


async def test_an_error_that_kills_the_transaction_does_not_lose_its_batch(store: Store) -> None:
    await store.write(
        lambda db: db.executescript(
            """
            CREATE TABLE t (x INTEGER);
            CREATE TRIGGER no_13 BEFORE INSERT ON t WHEN NEW.x = 13
            BEGIN SELECT RAISE(ROLLBACK, 'thirteen'); END;
            """
        )
    )

    def insert(db: Database, x: int) -> int:
        db.execute("INSERT INTO t VALUES (?)", [x])
        return x

    results = await asyncio.gather(
        *(store.write(insert, x) for x in range(20)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and "thirteen" in str(errors[0])
    stored = await store.read(lambda db: [r[0] for r in db.execute("SELECT x FROM t ORDER BY x")])
    assert stored == [x for x in range(20) if x != 13]


class WriteAborted(BaseException):
    """Not an Exception, like KeyboardInterrupt, but safe to raise inside pytest's loop."""


# A broken writer used to leave every later write waiting forever: bound each wait.
HANG = 10


async def test_a_write_raising_a_base_exception_fails_only_itself(store: Store) -> None:
    await store.write(lambda db: db.execute("CREATE TABLE t (x INTEGER)"))

    def insert(db: Database, x: int) -> int:
        db.execute("INSERT INTO t VALUES (?)", [x])
        if x == 3:
            raise WriteAborted(x)
        return x

    results = await asyncio.wait_for(
        asyncio.gather(*(store.write(insert, x) for x in range(6)), return_exceptions=True), HANG
    )
    assert [type(r) for r in results].count(WriteAborted) == 1
    assert isinstance(results[3], WriteAborted)
    # The writer survived: later writes still run and commit.
    assert await asyncio.wait_for(store.write(insert, 10), HANG) == 10
    stored = await store.read(lambda db: [r[0] for r in db.execute("SELECT x FROM t ORDER BY x")])
    assert stored == [0, 1, 2, 4, 5, 10]


async def test_a_broken_writer_fails_its_batch_and_every_later_write_fast(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "p.db")
    await store.write(lambda db: db.execute("CREATE TABLE t (x INTEGER)"))

    def sabotage(db: Database) -> None:
        db.conn.close()  # the writer's own RELEASE/COMMIT now fails, outside any write

    def insert(db: Database, x: int) -> int:
        db.execute("INSERT INTO t VALUES (?)", [x])
        return x

    try:
        batch = await asyncio.wait_for(
            asyncio.gather(
                store.write(insert, 1), store.write(sabotage), store.write(insert, 2),
                return_exceptions=True,
            ),
            HANG,
        )  # fmt: skip
        assert all(isinstance(r, StoreUnavailable) for r in batch), batch
        with pytest.raises(StoreUnavailable) as later:
            await asyncio.wait_for(store.write(insert, 3), HANG)
        assert isinstance(later.value.__cause__, sqlite3.ProgrammingError)
        assert "restart" in str(later.value)
        # Nothing of the failed batch was committed; readers still work.
        assert await store.read(lambda db: db.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 0
    finally:
        await asyncio.wait_for(store.close(), HANG)


async def test_readers_see_committed_data_in_one_snapshot_and_cannot_write(
    any_store: Store,
) -> None:
    store = any_store
    await store.write(lambda db: db.execute("CREATE TABLE t (x INTEGER)"))
    refusal, words = read_only_error(store)
    with pytest.raises(refusal, match=words):
        await store.read(lambda db: db.execute("INSERT INTO t VALUES (1)"))

    started, release = threading.Event(), threading.Event()

    def long_read(db: Database) -> tuple[int, int]:
        first = db.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        started.set()
        release.wait(10)
        return first, db.execute("SELECT COUNT(*) FROM t").fetchone()[0]

    reading = asyncio.ensure_future(store.read(long_read))
    await asyncio.to_thread(started.wait, 10)
    # The writer is not blocked by the open read, and the event loop is not blocked either.
    await store.write(lambda db: db.execute("INSERT INTO t VALUES (1)"))
    release.set()
    assert await reading == (0, 0)
    assert await store.read(lambda db: db.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 1


async def test_the_journal_refuses_update_and_delete(any_store: Store) -> None:
    store = any_store
    def tamper(db: Database, sql: str) -> None:
        db.execute("INSERT INTO journal (at, guild_id, kind) VALUES ('2025-01-01', 1, 'x')")
        db.execute(sql)

    for sql in ("UPDATE journal SET kind = 'y'", "DELETE FROM journal"):
        with pytest.raises(integrity_error(store), match="append-only"):
            await store.write(tamper, sql)
    assert (
        await store.read(lambda db: db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]) == 0
    )


async def test_a_closed_store_refuses_work(db_location: Path | str) -> None:
    store = await open_store(db_location)
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        await store.write(lambda db: None)
    with pytest.raises(RuntimeError, match="closed"):
        await store.read(lambda db: None)


async def test_close_finishes_queued_writes(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "p.db")
    await store.write(lambda db: db.execute("CREATE TABLE t (x INTEGER)"))
    pending = [
        asyncio.ensure_future(
            store.write(lambda db, x=x: db.execute("INSERT INTO t VALUES (?)", [x]))
        )
        for x in range(50)
    ]
    await asyncio.sleep(0)
    await store.close()
    await asyncio.gather(*pending)
    db = Database(tmp_path / "p.db")
    assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 50
    db.close()


async def test_a_long_foreign_lock_is_reported_as_busy(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = await Store.open(path, busy_timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusy) as caught:
            await store.write(lambda db: db.execute("SELECT 1"))
        assert "busy" in str(caught.value)
        other.execute("ROLLBACK")
        assert await store.write(lambda db: db.execute("SELECT 41 + 1").fetchone()[0]) == 42
    finally:
        other.close()
        await store.close()


async def test_two_stores_opening_a_fresh_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    stores = await asyncio.gather(Store.open(path), Store.open(path))
    try:
        names = await stores[0].read(
            lambda db: [r[0] for r in db.execute("SELECT name FROM _sqlite_migrations")]
        )
        assert names == ALL_MIGRATIONS
    finally:
        for store in stores:
            await store.close()


async def test_opening_waits_for_another_writer_of_a_file_not_yet_in_wal(tmp_path: Path) -> None:
    # SQLite refuses the switch to WAL at once ("locked", no busy handler) while another
    # connection holds a rollback-journal file's write lock; two first opens race so.
    path = tmp_path / "fresh.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.3, other.execute, ["COMMIT"])
    release.start()
    try:
        store = await Store.open(path, busy_timeout=5)
        try:
            assert await store.read(lambda db: db.execute("SELECT x FROM t").fetchall()) == [(1,)]
            mode = await store.write(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0])
            assert mode == "wal"
        finally:
            await store.close()
    finally:
        release.join()
        other.close()


async def test_the_default_path_is_data_paddock_db(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = await Store.open()
    await store.close()
    assert store.path == DEFAULT_PATH
    assert (tmp_path / "data" / "paddock.db").exists()


async def test_an_unopenable_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()  # a directory where the database file should be
    with pytest.raises(sqlite3.OperationalError):
        await Store.open(tmp_path / "dir.db")
