"""Shared fixtures. The fake Discord's live in tests/fakes/discord/fixtures.py; the two
store backends' (and the PostgreSQL summary line) in tests/postgres_fixtures.py."""

from __future__ import annotations

import os
import sys

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


# Where the environment forbids bytecode files (PYTHONDONTWRITEBYTECODE, as many container
# images set), every Python the suite starts (``bot.py``, ``--check``, the race's children:
# about 150) would compile the project's 77 modules again, 0.2 s of CPU each, and every
# in-process bot its cogs (discord.py executes an extension's file anew on each load).
# Their ``__pycache__`` folders are ignored by git and Docker; Python checks each file's
# source before it uses one.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
