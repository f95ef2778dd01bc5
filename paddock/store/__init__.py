"""Where Paddock keeps its state: SQLite by default (:mod:`paddock.store.sqlite`), or
PostgreSQL (:mod:`paddock.store.postgres`) when ``DATABASE_URL`` names a server.

Both stores have one interface: ``open``, ``close``, ``write(fn, *args)``,
``read(fn, *args)``, and a ``dialect`` (``"sqlite"`` or ``"postgresql"``). Callers import
from here, never from a backend module; :func:`open_store` picks the backend.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from paddock.store.sqlite import DEFAULT_PATH, Store

if TYPE_CHECKING:
    from paddock.store.postgres import PostgresStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

__all__ = [
    "DEFAULT_PATH",
    "POSTGRES_SCHEMES",
    "Store",
    "database_errors",
    "is_postgres_url",
    "open_store",
]


def database_errors() -> tuple[type[Exception], ...]:
    """What either database raises from a write or read it refused (a constraint, a
    trigger, a lost connection), for the few callers that report such errors rather than
    raise them. psycopg's are among them once a PostgreSQL store has loaded the driver: a
    SQLite bot never imports it (0.2 s at every start)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.Error,) if psycopg is None else (sqlite3.Error, psycopg.Error)


def is_postgres_url(location: str | Path) -> bool:
    """Whether ``location`` names a PostgreSQL server rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


async def open_store(
    location: str | Path, *, busy_timeout: float = 5.0
) -> Store | PostgresStore:
    """Open the store at ``location``: a ``postgresql://`` URL, else a SQLite file path
    (whose writes wait up to ``busy_timeout`` seconds for another program's write lock)."""
    if is_postgres_url(location):
        from paddock.store.postgres import PostgresStore

        return await PostgresStore.open(str(location))
    return await Store.open(location, busy_timeout=busy_timeout)
