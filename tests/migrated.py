"""An empty SQLite database with every migration applied, built once per test process and
copied for each test that needs a database: migrating a new file costs about 0.15 s (most
of it sqlite-utils splitting the migrations' SQL), a copy well under a millisecond, and
hundreds of tests start from one. The migrations themselves, from a missing file, are
tested in ``tests/test_store.py``."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from paddock.store import Store

_built: Path | None = None
_building = threading.Lock()


def migrated_database(path: Path) -> Path:
    """Put an empty, fully migrated Paddock database at ``path`` and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template(), path)
    return path


def _template() -> Path:
    global _built
    with _building:
        if _built is None:
            folder = Path(tempfile.mkdtemp(prefix="paddock-migrated-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            template = folder / "paddock.db"
            # Callers may be inside a running event loop (a test) or not (a fixture, a
            # Hypothesis machine): build on a thread with a loop of its own.
            with ThreadPoolExecutor(1) as builder:
                builder.submit(asyncio.run, _migrate(template)).result()
            leftovers = sorted(p.name for p in folder.iterdir() if p != template)
            assert not leftovers, f"closing the template store left {leftovers}"
            _built = template
        return _built


async def _migrate(path: Path) -> None:
    store = await Store.open(path)
    await store.close()
