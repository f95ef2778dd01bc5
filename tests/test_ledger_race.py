"""Reserves racing for one balance, from asyncio tasks and from two processes on one database
(a SQLite file, or PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from paddock.errors import InsufficientCredits
from paddock.ledger import Ledger
from paddock.store import Store, is_postgres_url
from paddock.store.postgres import PostgresStore
from tests.ledger_child import GUILD, RACER

ROOT = Path(__file__).resolve().parent.parent
BALANCE = 1000
COST = 7
AFFORDABLE = BALANCE // COST  # 142 of the 200 attempts


async def funded_ledger(
    location: Path | str, max_batch: int = 256
) -> tuple[Store | PostgresStore, Ledger]:
    if is_postgres_url(location):
        # Eight writer threads (the default is one), each committing a batch of what is
        # queued: their transactions race inside this process too.
        store: Store | PostgresStore = await PostgresStore.open(str(location), writers=8)
    else:
        store = await Store.open(location, max_batch=max_batch)
    ledger = Ledger(store)
    await ledger.grant(GUILD, RACER, BALANCE, actor_id=1, reason="race", role_ids=())
    return store, ledger


async def assert_exactly_affordable_held(ledger: Ledger) -> None:
    balance = await ledger.balance(GUILD, RACER, role_ids=())
    assert (balance.total, balance.held) == (BALANCE, AFFORDABLE * COST)
    assert balance.available == BALANCE - AFFORDABLE * COST >= 0
    holds = await ledger.holds(GUILD, state="pending")
    assert len(holds) == AFFORDABLE
    assert (await ledger.check()).problems == ()


@pytest.mark.parametrize(
    "max_batch",
    [1, 256, pytest.param(None, marks=pytest.mark.postgres)],
    ids=["one-per-commit", "group-commit", "postgres"],
)
async def test_200_tasks_racing_get_exactly_what_the_balance_allows(
    tmp_path: Path, max_batch: int | None, request: pytest.FixtureRequest
) -> None:
    if max_batch is None:  # PostgreSQL: 8 writers' SERIALIZABLE batches at once
        location: Path | str = request.getfixturevalue("pg_url")
    else:
        location = tmp_path / "race.db"
    store, ledger = await funded_ledger(location, max_batch or 1)
    try:
        results = await asyncio.gather(
            *(ledger.reserve(f"job-{i}", GUILD, RACER, COST, role_ids=()) for i in range(200)),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, InsufficientCredits)]
        held = [r for r in results if not isinstance(r, BaseException)]
        assert (len(held), len(refused)) == (AFFORDABLE, 200 - AFFORDABLE)
        await assert_exactly_affordable_held(ledger)
        # Settling the winners and retrying the losers changes nothing: no lost update.
        await asyncio.gather(*(ledger.settle(r.job_id, COST) for r in held))
        balance = await ledger.balance(GUILD, RACER, role_ids=())
        assert (balance.total, balance.held) == (BALANCE - AFFORDABLE * COST, 0)
    finally:
        await store.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_two_processes_racing_on_one_database_get_exactly_what_it_allows(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    path: Path | str = tmp_path / "race.db"
    if backend == "postgres":
        path = request.getfixturevalue("pg_url")
    store, ledger = await funded_ledger(path)
    go = tmp_path / "go"
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.ledger_child",
            "race",
            str(path),
            str(go),
            name,
            "100",
            str(COST),
            "1",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for name in ("left", "right")
    ]
    try:
        for child in children:  # both have the file open and wait for the go file
            assert child.stdout is not None
            assert await asyncio.wait_for(child.stdout.readline(), 60) == b"ready\n"
        go.touch()
        outputs = [await asyncio.wait_for(child.communicate(), 60) for child in children]
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    try:
        assert [child.returncode for child in children] == [0, 0]
        counts = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
        assert sum(c["held"] for c in counts) == AFFORDABLE
        assert sum(c["refused"] for c in counts) == 200 - AFFORDABLE
        assert all(c["other"] == 0 for c in counts)
        await assert_exactly_affordable_held(ledger)
    finally:
        await store.close()
