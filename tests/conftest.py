"""Shared fixtures. The fake Discord's live in tests/fakes/discord/fixtures.py; the two
store backends' (and the PostgreSQL summary line) in tests/postgres_fixtures.py."""

from __future__ import annotations

from tests.fakes.discord.fixtures import fake_discord, paddock, paddock_settings, probe_bot
from tests.postgres_fixtures import (
    backend,
    db_location,
    pg_cluster,
    pg_database,
    pg_url,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
    pytest_runtest_makereport,
    pytest_terminal_summary,
)

__all__ = [
    "backend",
    "db_location",
    "fake_discord",
    "paddock",
    "paddock_settings",
    "pg_cluster",
    "pg_database",
    "pg_url",
    "probe_bot",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_runtest_makereport",
    "pytest_terminal_summary",
]
