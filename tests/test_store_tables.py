"""The smaller tables' SQL on both backends: refused keys (an upsert), Extend's records
(insert once), the health probe's row (an upsert) and the /metrics totals (sums)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hh_api import ProviderConfig, Secret
from paddock.extensions import Extension, Extensions
from paddock.health import _touch_probe
from paddock.ledger import Ledger
from paddock.metrics import read_totals
from paddock.refused_keys import RefusedKeys
from paddock.store import open_store
from tests.ledger_support import ALICE, GUILD, MOD, Clock

NOON = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


async def test_a_refusal_is_replaced_and_dropped_with_its_key(db_location: Path | str) -> None:
    async with await open_store(db_location) as store:
        refused = RefusedKeys(store, clock=lambda: NOON)
        await refused.remember("joypix", Secret("old-key"), "401 Unauthorized")
        await refused.remember("joypix", Secret("new-key"), "403 Forbidden")  # replaces
        await refused.remember("hiapi", Secret("hi-key"), "401 Unauthorized")
        configs = {
            "joypix": ProviderConfig("joypix", Secret("new-key")),
            "hiapi": ProviderConfig("hiapi", Secret("another-key")),  # the refused one is gone
        }
        kept = await refused.still_refused(configs)
        assert [(k.provider, k.reason, k.at) for k in kept] == [("joypix", "403 Forbidden", NOON)]
        rows = await store.read(lambda db: db.execute("SELECT provider FROM refused_keys")
                                .fetchall())
        assert rows == [("joypix",)]


async def test_an_extension_is_recorded_once(db_location: Path | str) -> None:
    async with await open_store(db_location) as store:
        extensions = Extensions(store, clock=lambda: NOON)
        first = Extension("job-2", "job-1", "https://cdn/a.mp4", "https://cdn/f.png", 2)
        await extensions.record(first)
        await extensions.record(Extension("job-2", "job-9", "https://x", "https://y", 3))
        assert await extensions.get("job-2") == first
        assert await extensions.get("job-1") is None


async def test_the_health_probe_keeps_one_row(db_location: Path | str) -> None:
    async with await open_store(db_location) as store:
        for at in ("2025-03-03T12:00:00.000000Z", "2025-03-03T12:00:05.000000Z"):
            await store.write(_touch_probe, at)
        rows = await store.read(lambda db: db.execute("SELECT id, at FROM health_probe")
                                .fetchall())
        assert rows == [(1, "2025-03-03T12:00:05.000000Z")]


async def test_the_metrics_totals_are_whole_numbers(db_location: Path | str) -> None:
    async with await open_store(db_location) as store:
        ledger = Ledger(store, clock=Clock())
        await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, reason="test", role_ids=())
        for job, cost in (("job-1", 10), ("job-2", 20), ("job-3", 5)):
            await ledger.reserve(job, GUILD, ALICE, cost, role_ids=())
        await ledger.settle("job-1", 7)
        await ledger.refund("job-2")
        totals = await store.read(read_totals)
        assert (totals.reserved, totals.settled, totals.refunded, totals.held) == (35, 7, 23, 5)
        assert all(type(n) is int for n in (totals.reserved, totals.settled, totals.held))


async def test_text_sorts_and_compares_by_bytes_on_both(db_location: Path | str) -> None:
    """SQLite compares text byte by byte; so does the PostgreSQL schema (COLLATE "C"), even
    in a database whose own locale sorts 'b' before 'B' (the tests' is English, by ICU)."""
    async with await open_store(db_location) as store:
        refused = RefusedKeys(store, clock=lambda: NOON)
        for provider in ("b", "B", "a-c", "ab"):
            await refused.remember(provider, Secret(provider), "401 Unauthorized")

        def read(db) -> tuple[list, int]:
            order = db.execute("SELECT provider FROM refused_keys ORDER BY provider").fetchall()
            below = db.execute("SELECT COUNT(*) FROM refused_keys WHERE provider < 'a'")
            return [row[0] for row in order], below.fetchone()[0]

        assert await store.read(read) == (["B", "a-c", "ab", "b"], 1)
