"""Fixtures that run the store's tests on both backends, and the line that says how many ran
on PostgreSQL.

``db_location`` is parametrised: a SQLite file path, or the URL of an emptied, migrated
PostgreSQL database on a throwaway server that each test process starts once
(:mod:`tests.pg_cluster`). Open it with :func:`paddock.store.open_store`,
as bot.py does; reopening the same location is a restart. PostgreSQL cases carry the
``postgres`` marker (``-m "not postgres"`` leaves them out). When no server can be
started they are skipped with the reason, and the summary always ends with one
``PostgreSQL: ...`` line, so a run that silently skipped them cannot look green.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.migrated import migrated_database
from tests.pg_cluster import ClusterUnavailable, PostgresCluster

POSTGRES = "postgres"
BOTH_BACKENDS = "both_backends"
_VERSION_PROPERTY = "postgres_server"
_DATABASE = "paddock_tests"
_NOT_STARTED = "PostgreSQL not started: "
_skip_line = 0  # where pg_cluster skipped, in this test process


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{POSTGRES}: runs against a throwaway PostgreSQL server (tests/pg_cluster.py)"
    )
    config.addinivalue_line(
        "markers", f"{BOTH_BACKENDS}: the whole bot runs the test twice, on SQLite and on "
        "PostgreSQL (the store of the `paddock_settings` fixture)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``both_backends`` that uses ``paddock_settings`` runs once per
    store: the ``backend`` fixture's value is parametrised."""
    if (metafunc.definition.get_closest_marker(BOTH_BACKENDS)
            and "backend" in metafunc.fixturenames):
        metafunc.parametrize(
            "backend", ["sqlite", pytest.param(POSTGRES, marks=pytest.mark.postgres)]
        )


@pytest.fixture
def backend() -> str:
    """The store the whole bot runs on: SQLite unless the test is marked ``both_backends``."""
    return "sqlite"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "pg_cluster" in getattr(item, "fixturenames", ()) and POSTGRES not in item.keywords:
            item.add_marker(POSTGRES)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """This test process's PostgreSQL server, started at its first PostgreSQL test."""
    try:
        cluster = PostgresCluster.start()
    except ClusterUnavailable as why:
        global _skip_line
        _skip_line = sys._getframe().f_lineno + 1
        pytest.skip(f"{_NOT_STARTED}{why}")
    try:
        yield cluster
    finally:
        cluster.stop()


class SharedDatabase:
    """The migrated database this test process's PostgreSQL tests share, one at a time."""

    def __init__(self, url: str) -> None:
        from paddock.store.pg_migrations import MIGRATIONS

        self.url = url
        with psycopg.connect(url) as conn:
            MIGRATIONS.apply(conn)
            self.tables = self._tables(conn)
            sequences = [row[0] for row in conn.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
                " AND sequencename NOT LIKE '\\_paddock%' ORDER BY sequencename")]
        # Replica mode skips the append-only triggers, for this cleaning only.
        self._empty = "SET LOCAL session_replication_role = replica;" + "".join(
            f"DELETE FROM {table};" for table in sorted(self.tables)
        ) + "".join(f"ALTER SEQUENCE {sequence} RESTART;" for sequence in sequences)

    @staticmethod
    def _tables(conn: psycopg.Connection) -> set[str]:
        return {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename != '_paddock_migrations'")}

    def empty(self) -> None:
        """Every table empty, every id counter reset, tables a test made dropped.

        About 15 ms, where a fresh copy of a template database takes about 400 ms; the
        tests of one process run one at a time, so nothing else uses it meanwhile.
        """
        with psycopg.connect(self.url, autocommit=True) as conn, conn.transaction():
            for table in sorted(self._tables(conn) - self.tables):
                conn.execute(f'DROP TABLE "{table}" CASCADE')
            conn.execute(self._empty)


@pytest.fixture(scope="session")
def pg_database(pg_cluster: PostgresCluster) -> SharedDatabase:
    # Sorted as English is (ICU), like most servers' databases and unlike SQLite's bytes:
    # the schema's COLLATE "C" must make both sort and compare text the same way.
    return SharedDatabase(pg_cluster.create_database(_DATABASE, icu_locale="en-US"))


@pytest.fixture
def pg_url(
    pg_cluster: PostgresCluster, pg_database: SharedDatabase, request: pytest.FixtureRequest
) -> str:
    """The URL of a migrated database with every table empty and every id counter reset."""
    request.node.user_properties.append((_VERSION_PROPERTY, pg_cluster.version.split()[0]))
    pg_database.empty()
    return pg_database.url


@pytest.fixture(params=["sqlite", pytest.param(POSTGRES, marks=pytest.mark.postgres)])
def db_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where the store lives: a SQLite file, or a PostgreSQL URL (each test its own)."""
    if request.param == POSTGRES:
        return request.getfixturevalue("pg_url")
    return migrated_database(tmp_path / "paddock.db")


def integrity_error(store: object) -> type[Exception]:
    """What the store's database raises when a constraint or trigger refuses a change."""
    if getattr(store, "dialect", "sqlite") == "postgresql":
        return psycopg.errors.IntegrityError
    return sqlite3.IntegrityError


def read_only_error(store: object) -> tuple[type[Exception], str]:
    """What the store's database raises when a read tries to write, and the words it says."""
    if getattr(store, "dialect", "sqlite") == "postgresql":
        return psycopg.errors.ReadOnlySqlTransaction, "read-only transaction"
    return sqlite3.OperationalError, "readonly"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None]:
    """Every skip for want of a server, reported at one place: ``-ra`` folds them into one
    line (pytest would name each test's own line)."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if reason.removeprefix("Skipped: ").startswith(_NOT_STARTED):
            report.longrepr = (__file__, _skip_line, reason)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line, always: how many tests ran on which PostgreSQL, or why none did."""
    ran: set[str] = set()
    skipped: set[str] = set()
    versions: set[str] = set()
    reasons: set[str] = set()
    for reports in terminalreporter.stats.values():
        for report in reports:
            if not isinstance(report, pytest.TestReport) or POSTGRES not in report.keywords:
                continue
            versions.update(v for k, v in report.user_properties if k == _VERSION_PROPERTY)
            if report.when == "call" or report.failed:  # a failed setup ran, and failed
                ran.add(report.nodeid)
            elif report.skipped:
                skipped.add(report.nodeid)
                if isinstance(report.longrepr, tuple):
                    reasons.add(str(report.longrepr[2]).removeprefix("Skipped: "))
    skipped -= ran
    if not ran and not skipped:
        line = "PostgreSQL: no PostgreSQL tests were selected"
    elif not ran:
        why = "; ".join(sorted(r.removeprefix(_NOT_STARTED) for r in reasons))
        line = f"PostgreSQL: not started ({why}): {len(skipped)} tests skipped"
    else:
        on = ", ".join(sorted(versions)) or "an unknown version"
        line = f"PostgreSQL: {len(ran)} tests ran on PostgreSQL {on}"
        if skipped:
            line += f"; {len(skipped)} skipped ({'; '.join(sorted(reasons))})"
    terminalreporter.write_line(line)
