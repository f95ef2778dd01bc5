"""The PostgreSQL store's own behaviour: placeholders, migrations beside SQLite's, retried
serialization failures, and an unreachable server. (The tests that hold for both backends
are in test_store.py, test_ledger.py and the others, parametrised.)"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from pathlib import Path

import psycopg
import pytest
import sqlite_utils

from paddock.errors import StoreBusy, StoreUnavailable
from paddock.migrations import MIGRATIONS as SQLITE_MIGRATIONS
from paddock.store import Store, open_store
from paddock.store import postgres as pg_store
from paddock.store.pg_migrations import MIGRATIONS, Migration, PgMigrations
from paddock.store.postgres import PostgresDatabase, PostgresStore, to_pyformat
from tests.pg_cluster import PASSWORD, PostgresCluster

# -- placeholders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sqlite", "psycopg_form"),
    [
        ("SELECT a FROM t WHERE x = ? AND y = ?", "SELECT a FROM t WHERE x = %s AND y = %s"),
        ("UPDATE t SET a = a + :da WHERE id = :id",
         "UPDATE t SET a = a + %(da)s WHERE id = %(id)s"),
        ("SELECT '?', ':no', 'it''s ?' FROM t WHERE x = ?",
         "SELECT '?', ':no', 'it''s ?' FROM t WHERE x = %s"),
        ("SELECT \"odd?name\" FROM t WHERE x = :x", "SELECT \"odd?name\" FROM t WHERE x = %(x)s"),
        ("SELECT x FROM t WHERE s LIKE '%:%' AND y = ?",
         "SELECT x FROM t WHERE s LIKE '%%:%%' AND y = %s"),
        ("SELECT 100 % 7, ?", "SELECT 100 %% 7, %s"),
        ("SELECT x::bigint FROM t WHERE y = :y", "SELECT x::bigint FROM t WHERE y = %(y)s"),
        ("SELECT x -- why? because: reasons\n FROM t WHERE y = ?",
         "SELECT x -- why? because: reasons\n FROM t WHERE y = %s"),
    ],
)
def test_sqlite_placeholders_become_psycopgs_outside_quotes_and_comments(
    sqlite: str, psycopg_form: str
) -> None:
    assert to_pyformat(sqlite) == psycopg_form


@pytest.mark.postgres
async def test_translated_statements_run_on_the_server(pg_url: str) -> None:
    def run(db: PostgresDatabase) -> list[tuple]:
        return [
            db.execute("SELECT ?, '%:%', 7 % 4, CAST(? AS TEXT)", [1, "x"]).fetchone(),
            db.execute("SELECT :a || '?', :a", {"a": "q"}).fetchone(),
            # SUM of BIGINT is NUMERIC in PostgreSQL: whole numbers still come back as int.
            db.execute("SELECT SUM(x), 5 / 2 FROM (VALUES (2::bigint), (3)) v(x)").fetchone(),
        ]

    async with await PostgresStore.open(pg_url) as store:
        assert await store.read(run) == [(1, "%:%", 3, "x"), ("q?", "q"), (5, 2)]
        assert store.dialect == "postgresql"
        assert await store.read(lambda db: db.dialect) == "postgresql"


# -- migrations beside SQLite's --------------------------------------------------------------


def test_postgresql_has_sqlites_migrations_with_the_same_names_in_the_same_order() -> None:
    sqlite_names = [m.name for m in SQLITE_MIGRATIONS.pending(sqlite_utils.Database(memory=True))]
    assert MIGRATIONS.names == sqlite_names
    assert sqlite_names[0] == "m001_ledger" and len(sqlite_names) >= 13


def _sqlite_schema(path: Path) -> dict[str, list[tuple[str, bool]]]:
    db = sqlite_utils.Database(path)
    schema = {}
    for table in db.table_names():
        if table.startswith(("_sqlite", "sqlite_")):
            continue
        rows = db.execute(f"PRAGMA table_info({table})").fetchall()
        schema[table] = [(name, bool(notnull) or bool(pk)) for _, name, _, notnull, _, pk in rows]
    db.close()
    return schema


def _postgres_schema(url: str) -> dict[str, list[tuple[str, bool]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, is_nullable FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name NOT LIKE '\\_paddock%'"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
    schema: dict[str, list[tuple[str, bool]]] = {}
    for table, column, nullable in rows:
        schema.setdefault(table, []).append((column, nullable == "NO"))
    return schema


@pytest.mark.postgres
async def test_both_schemas_have_the_same_tables_and_columns(pg_url: str, tmp_path: Path) -> None:
    await (await Store.open(tmp_path / "p.db")).close()
    sqlite = _sqlite_schema(tmp_path / "p.db")
    postgres = _postgres_schema(pg_url)
    assert sorted(postgres) == sorted(sqlite)
    for table, columns in sqlite.items():
        assert postgres[table] == columns, table


@pytest.mark.postgres
async def test_two_stores_opening_a_fresh_database_at_once_migrate_it_once(
    pg_cluster: PostgresCluster,
) -> None:
    with pg_cluster.database("fresh_twice") as url:
        opened = await asyncio.gather(
            PostgresStore.open(url), PostgresStore.open(url), return_exceptions=True
        )
        for store in opened:
            if isinstance(store, PostgresStore):
                await store.close()
        assert all(isinstance(store, PostgresStore) for store in opened), opened
        await (await PostgresStore.open(url)).close()  # reopening applies nothing
        with psycopg.connect(url) as conn:
            applied = [name for name, _ in MIGRATIONS.applied(conn)]
            assert MIGRATIONS.pending(conn) == []
        assert applied == MIGRATIONS.names


@pytest.mark.postgres
async def test_a_failing_migration_leaves_no_trace(pg_cluster: PostgresCluster) -> None:
    broken = PgMigrations("broken", [
        Migration("m001_first", "CREATE TABLE first (x BIGINT)"),
        Migration("m002_half", "CREATE TABLE half (x BIGINT); SELECT 1/0"),
    ])
    with pg_cluster.database("broken_migration") as url:
        with pytest.raises(StoreUnavailable) as refused:
            await PostgresStore.open(url, migrations=broken)
        assert isinstance(refused.value.__cause__, psycopg.errors.DivisionByZero)
        with psycopg.connect(url) as conn:
            assert [name for name, _ in broken.applied(conn)] == ["m001_first"]
            tables = {r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert "first" in tables and "half" not in tables


# -- transactions ----------------------------------------------------------------------------


@pytest.fixture
async def counter(pg_url: str):
    store = await PostgresStore.open(pg_url)
    await store.write(
        lambda db: db.execute("CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT)")
    )
    await store.write(lambda db: db.execute("INSERT INTO counter VALUES (1, 0)"))
    yield store
    await store.close()


def _bump_with_a_rival(pg_url: str, rival_every_time: bool, calls: list[int]):
    """A write that reads the counter, lets another connection change it, then writes."""

    def bump(db: PostgresDatabase) -> int:
        calls.append(1)
        seen = db.execute("SELECT n FROM counter WHERE id = 1").fetchone()[0]
        if rival_every_time or len(calls) == 1:
            with psycopg.connect(pg_url, autocommit=True) as rival:
                rival.execute("UPDATE counter SET n = n + 100 WHERE id = 1")
        db.execute("UPDATE counter SET n = ? WHERE id = 1", [seen + 1])
        return seen + 1

    return bump


@pytest.mark.postgres
async def test_a_write_that_loses_a_serialization_race_runs_again(
    counter: PostgresStore, pg_url: str
) -> None:
    calls: list[int] = []
    assert await counter.write(_bump_with_a_rival(pg_url, False, calls)) == 101
    assert len(calls) == 2  # the first run's update was refused, not applied over the rival's
    assert await counter.read(lambda db: db.execute("SELECT n FROM counter").fetchone()[0]) == 101


@pytest.mark.postgres
async def test_a_write_that_never_wins_its_race_is_reported_busy(
    counter: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_store, "WRITE_ATTEMPTS", 3)
    calls: list[int] = []
    with pytest.raises(StoreBusy):
        await counter.write(_bump_with_a_rival(pg_url, True, calls))
    assert len(calls) == 3
    assert await counter.read(lambda db: db.execute("SELECT n FROM counter").fetchone()[0]) == 300


@pytest.mark.postgres
async def test_a_missing_database_is_unavailable_and_the_password_is_not_said(
    pg_cluster: PostgresCluster,
) -> None:
    with pytest.raises(StoreUnavailable) as raised:
        await open_store(pg_cluster.url("no_such_database"))
    assert isinstance(raised.value.__cause__, psycopg.OperationalError)
    assert "no_such_database" in str(raised.value.__cause__)
    # What a member is told: the server is away, not that the bot must be restarted.
    assert "try again" in str(raised.value) and "restart" not in str(raised.value)
    assert PASSWORD not in str(raised.value) + str(raised.value.__cause__)


def _end_every_other_connection(url: str) -> None:
    """What a server restart or a proxy does to a store's idle connections; returns once
    those backends are gone."""
    others = "datname = current_database() AND pid <> pg_backend_pid()"
    with psycopg.connect(url, autocommit=True) as admin:
        ended = admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others}"
        ).fetchall()
        assert ended and all(row[0] for row in ended)
        count = f"SELECT COUNT(*) FROM pg_stat_activity WHERE {others}"
        while admin.execute(count).fetchone()[0]:
            time.sleep(0.01)  # until the backends are gone: a state, not a timed guess


@pytest.mark.postgres
async def test_connections_lost_while_idle_are_replaced_without_losing_a_write(
    pg_url: str,
) -> None:
    async with await PostgresStore.open(pg_url, readers=2) as store:
        await store.write(lambda db: db.execute("CREATE TABLE t (x BIGINT)"))
        await store.read(lambda db: db.execute("SELECT COUNT(*) FROM t").fetchone())
        await asyncio.to_thread(_end_every_other_connection, pg_url)

        await store.write(lambda db: db.execute("INSERT INTO t VALUES (1)"))
        assert await store.read(lambda db: db.execute("SELECT x FROM t").fetchall()) == [(1,)]


# -- group commit ----------------------------------------------------------------------------


async def _queued_behind_a_held_write(store: PostgresStore, writes: list) -> list:
    """Run ``writes`` (coroutine functions) queued together: the writer is held in a first
    write until every one of them is in its queue, so they form one batch."""
    started, release = threading.Event(), threading.Event()

    def hold(db: PostgresDatabase) -> None:
        started.set()
        release.wait(10)

    holding = asyncio.ensure_future(store.write(hold))
    await asyncio.to_thread(started.wait, 10)
    queued = [asyncio.ensure_future(write()) for write in writes]
    await asyncio.sleep(0)  # each task runs up to its write's await: all are queued
    release.set()
    await holding
    return await asyncio.gather(*queued, return_exceptions=True)


@pytest.mark.postgres
async def test_queued_writes_commit_together_and_a_refused_one_undoes_only_itself(
    pg_url: str,
) -> None:
    async with await PostgresStore.open(pg_url) as store:
        await store.write(lambda db: db.execute("CREATE TABLE t (x BIGINT CHECK (x % 4 <> 0))"))

        def insert(db: PostgresDatabase, x: int) -> int:
            # Nothing reads this statement's result: it is sent with a later one, and the
            # CHECK refuses it there; still only this write fails.
            db.execute("INSERT INTO t VALUES (?)", [x])
            return x

        def insert_and_name_the_transaction(db: PostgresDatabase, x: int) -> int:
            db.execute("INSERT INTO t VALUES (?)", [x])
            return db.execute("SELECT txid_current()").fetchone()[0]

        writes = [
            functools.partial(store.write, insert if x % 2 else insert_and_name_the_transaction, x)
            for x in range(1, 21)
        ]
        results = await _queued_behind_a_held_write(store, writes)
        refused = [x for x, r in zip(range(1, 21), results, strict=True)
                   if isinstance(r, BaseException)]
        assert refused == [4, 8, 12, 16, 20]
        assert all(isinstance(results[x - 1], psycopg.errors.CheckViolation) for x in refused)
        named = {r for x, r in zip(range(1, 21), results, strict=True) if x % 2 == 0
                 and x not in refused}
        assert len(named) == 1  # one transaction, one COMMIT, for the whole queue
        stored = await store.read(lambda db: db.execute("SELECT x FROM t ORDER BY x").fetchall())
        assert [x for (x,) in stored] == [x for x in range(1, 21) if x % 4]


@pytest.mark.postgres
async def test_a_batch_that_loses_a_serialization_race_runs_again_one_write_at_a_time(
    pg_url: str,
) -> None:
    """Run again whole, a batch would meet the other processes' writes again: all its
    writes are refused together once it has lost often enough."""
    async with await PostgresStore.open(pg_url) as store:
        await store.write(lambda db: db.executescript(
            "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT);"
            "INSERT INTO counter SELECT i, 0 FROM generate_series(1, 5) i;"))
        calls: list[int] = []

        def bump(db: PostgresDatabase, row: int) -> int:
            calls.append(row)
            seen = db.execute("SELECT n FROM counter WHERE id = ?", [row]).fetchone()[0]
            if row == 3 and calls.count(3) == 1:  # a rival commits under the batch, once
                with psycopg.connect(pg_url, autocommit=True) as rival:
                    rival.execute("UPDATE counter SET n = n + 100 WHERE id = 3")
            db.execute("UPDATE counter SET n = ? WHERE id = ?", [seen + 1, row])
            return seen + 1

        commits = store.commits
        results = await _queued_behind_a_held_write(
            store, [functools.partial(store.write, bump, row) for row in range(1, 6)]
        )
        assert results == [1, 1, 101, 1, 1]
        # Every write ran again, those before the one that lost included, each alone.
        assert calls.count(1) == 2 and calls[-5:] == [1, 2, 3, 4, 5]
        assert store.commits - commits == 1 + 5  # the holding write's, then one a write
        assert store.retries == 1
        rows = await store.read(lambda db: db.execute("SELECT n FROM counter ORDER BY id")
                                .fetchall())
        assert rows == [(1,), (1,), (101,), (1,), (1,)]


@pytest.mark.postgres
async def test_a_statement_looked_at_after_later_ones_keeps_its_own_result(pg_url: str) -> None:
    def run(db: PostgresDatabase) -> tuple:
        db.execute("CREATE TABLE t (x BIGINT)")
        inserted = db.execute("INSERT INTO t VALUES (1), (2), (3)")
        selected = db.execute("SELECT x FROM t ORDER BY x")
        updated = db.execute("UPDATE t SET x = x + 10 WHERE x > 1")
        last = db.execute("SELECT COUNT(*) FROM t WHERE x > 10").fetchone()
        return inserted.rowcount, selected.fetchone(), selected.fetchall(), updated.rowcount, last

    async with await PostgresStore.open(pg_url) as store:
        assert await store.write(run) == (3, (1,), [(2,), (3,)], 2, (2,))


@pytest.mark.postgres
async def test_a_batch_that_deadlocks_runs_again_one_write_at_a_time(
    pg_cluster: PostgresCluster,
) -> None:
    """Two writes of one batch lock 1 then 2; a rival holding 2 asks for 1 in between."""
    with pg_cluster.database("deadlock") as url:
        with psycopg.connect(url, autocommit=True) as admin:  # the store's check comes fast
            admin.execute("ALTER DATABASE deadlock SET deadlock_timeout = '20ms'")
        rival = psycopg.connect(url)
        rival.execute("SET deadlock_timeout = '10s'")  # so the store's session is the victim
        rival.execute("SELECT pg_advisory_xact_lock(2)")
        holding_1, rival_waits = threading.Event(), threading.Event()

        def rival_asks_for_1() -> None:
            holding_1.wait(10)
            rival.execute("SELECT pg_advisory_xact_lock(1)")
            rival.commit()

        def lock(db: PostgresDatabase, key: int) -> int:
            db.execute("SELECT pg_advisory_xact_lock(?)", [key]).fetchone()
            if key == 1 and not holding_1.is_set():
                holding_1.set()
                rival_waits.wait(10)
            return db.execute("SELECT txid_current()").fetchone()[0]

        def until_the_rival_waits() -> None:
            with psycopg.connect(url, autocommit=True) as watcher:
                waiting = ("SELECT COUNT(*) FROM pg_locks"
                           " WHERE locktype = 'advisory' AND NOT granted")
                while not watcher.execute(waiting).fetchone()[0]:
                    time.sleep(0.005)  # until the rival's request is queued: a state
            rival_waits.set()

        store = await PostgresStore.open(url, migrations=PgMigrations("none", []))
        try:
            racing = [asyncio.ensure_future(asyncio.to_thread(rival_asks_for_1)),
                      asyncio.ensure_future(asyncio.to_thread(until_the_rival_waits))]
            transactions = await _queued_behind_a_held_write(
                store, [functools.partial(store.write, lock, key) for key in (1, 2)]
            )
            await asyncio.gather(*racing)
            assert all(isinstance(t, int) for t in transactions), transactions
            assert transactions[0] != transactions[1]  # after the deadlock, one at a time
            assert store.retries == 1
        finally:
            await store.close()
            rival.close()
