"""Notifications across processes: two stores on one PostgreSQL database stand for two bot
processes. A settings change made through one reaches the other's cache at COMMIT; a read
in flight during the change leaves no stale copy; a listener whose connection the server
drops reconnects and starts its caches afresh. On SQLite the same calls exist and hear
nothing from outside."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from paddock.guild_config import GuildConfig
from paddock.settings_changes import CHANNEL
from paddock.store import Store, open_store
from paddock.store.notifications import APPLICATION_NAME
from paddock.store.postgres import PostgresDatabase, PostgresStore
from tests.fakes.waiting import WAIT_LIMIT

GUILD, OTHER_GUILD = 1001, 1002
MOD = 7
VIDEOS, ART = 301, 302


class Heard:
    """What one subscriber of a channel received, to wait on."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.missed = 0
        self._changed = asyncio.Event()

    def notify(self, payload: str) -> None:
        self.payloads.append(payload)
        self._changed.set()

    def miss(self) -> None:
        self.missed += 1
        self._changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), WAIT_LIMIT)


async def listener_backends(url: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        rows = await (await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s ORDER BY pid",
            [APPLICATION_NAME])).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
async def stores(pg_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database: two processes' worth."""
    first = await PostgresStore.open(pg_url)
    second = await PostgresStore.open(pg_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def following(store: Any) -> GuildConfig:
    config = GuildConfig(store)
    await config.follow_changes()
    return config


async def test_a_channel_allowed_through_one_process_is_allowed_by_the_other_at_once(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = stores
    here, there = await following(first), await following(second)
    heard_there = Heard()
    await second.listen(CHANNEL, heard_there.notify)
    assert await there.allowed_channels(GUILD) == frozenset()  # cached from now on
    assert await there.moderator_role(GUILD) is None

    await here.allow_channel(GUILD, VIDEOS, actor_id=MOD)
    await heard_there.until(lambda: f"{GUILD} video_channels" in heard_there.payloads)

    assert await there.allowed_channels(GUILD) == {VIDEOS}
    assert not await there.is_channel_allowed(GUILD, ART)

    await here.set_moderator_role(GUILD, 55, actor_id=MOD)
    await heard_there.until(lambda: f"{GUILD} moderator_role" in heard_there.payloads)
    assert await there.moderator_role(GUILD) == 55


async def test_a_change_that_changes_nothing_or_rolls_back_announces_nothing(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = stores
    heard = Heard()
    await second.listen(CHANNEL, heard.notify)
    here = GuildConfig(first)

    def announce_then_fail(db: PostgresDatabase) -> None:
        db.notify(CHANNEL, f"{OTHER_GUILD} video_channels")
        raise ValueError("refused after announcing")

    with pytest.raises(ValueError):
        await first.write(announce_then_fail)
    await here.disallow_channel(GUILD, ART, actor_id=MOD)  # not listed: nothing changes
    await here.allow_channel(GUILD, VIDEOS, actor_id=MOD)
    await heard.until(lambda: bool(heard.payloads))

    # Notifications arrive in commit order: had either earlier write announced, its
    # payload would come first.
    assert heard.payloads == [f"{GUILD} video_channels"]


async def test_a_limits_change_is_announced_for_the_runners_member_cap(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    from paddock.ledger import Ledger

    first, second = stores
    heard = Heard()
    await second.listen(CHANNEL, heard.notify)

    await Ledger(first).update_limits(GUILD, actor_id=MOD, member_slots=5)
    await heard.until(lambda: bool(heard.payloads))

    assert heard.payloads == [f"{GUILD} limits"]


class HeldReads:
    """A store whose reads return only when the test lets them: a read that took its
    snapshot before another process's change and comes back after its announcement."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.held = asyncio.Event()
        self.let_go = asyncio.Event()

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        value = await self.store.read(fn, *args)
        self.held.set()
        await self.let_go.wait()
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def test_a_read_in_flight_during_a_change_elsewhere_is_not_cached(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = stores
    here = await following(first)
    slow = HeldReads(second)
    there = await following(slow)
    heard_there = Heard()
    await second.listen(CHANNEL, heard_there.notify)

    in_flight = asyncio.create_task(there.allowed_channels(GUILD))
    await asyncio.wait_for(slow.held.wait(), WAIT_LIMIT)  # read: no channel listed yet
    await here.allow_channel(GUILD, VIDEOS, actor_id=MOD)
    await heard_there.until(lambda: bool(heard_there.payloads))
    slow.let_go.set()

    assert await in_flight == frozenset()  # it started before the change: fair
    assert await there.allowed_channels(GUILD) == {VIDEOS}  # but it was not kept


async def test_a_dropped_listener_reconnects_and_drops_every_cached_setting(
    pg_url: str, stores: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = stores
    there = await following(second)
    heard_there = Heard()
    await second.listen(CHANNEL, heard_there.notify, heard_there.miss)
    assert await there.allowed_channels(GUILD) == frozenset()
    assert await there.allowed_channels(OTHER_GUILD) == frozenset()
    # A change whose announcement never reaches the second process (as if sent while
    # its listener was away).
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO video_channels (guild_id, channel_id) VALUES (%s, %s), (%s, %s)",
            [GUILD, VIDEOS, OTHER_GUILD, ART])
        old_pid = second.listener.backend_pid
        assert old_pid is not None
        await conn.execute("SELECT pg_terminate_backend(%s)", [old_pid])

    await heard_there.until(lambda: heard_there.missed == 2)  # lost, then back

    assert second.listener.reconnects == 1 and second.listener.connected
    assert second.listener.backend_pid not in (None, old_pid)
    assert await there.allowed_channels(GUILD) == {VIDEOS}
    assert await there.allowed_channels(OTHER_GUILD) == {ART}
    # And it hears the next change as before.
    await GuildConfig(first).allow_channel(GUILD, ART, actor_id=MOD)
    await heard_there.until(lambda: bool(heard_there.payloads))
    assert await there.allowed_channels(GUILD) == {VIDEOS, ART}


async def test_one_listening_connection_per_process_closed_with_the_store(
    pg_url: str, stores: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = stores
    for store in stores:
        await following(store)
        await following(store)
        await store.listen("paddock_wakes", lambda payload: None)

    backends = await listener_backends(pg_url)
    assert sorted(backends) == sorted([first.listener.backend_pid, second.listener.backend_pid])

    await first.close()
    await second.close()
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        for pid in backends:  # the server ends them once the client said goodbye
            await asyncio.wait_for(_backend_gone(conn, pid), WAIT_LIMIT)


async def _backend_gone(conn: psycopg.AsyncConnection[Any], pid: int) -> None:
    while await (await conn.execute(  # noqa: ASYNC110 -- the server's state: polled
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])).fetchone():
        await asyncio.sleep(0.02)


async def test_on_sqlite_the_same_calls_exist_and_hear_nothing_from_outside(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path / "paddock.db")
    try:
        assert isinstance(store, Store)
        heard = Heard()
        subscription = await store.listen(CHANNEL, heard.notify, heard.miss)
        config = await following(store)
        await config.allow_channel(GUILD, VIDEOS, actor_id=MOD)  # db.notify is harmless
        assert subscription.live
        assert await config.allowed_channels(GUILD) == {VIDEOS}
        assert heard.payloads == [] and heard.missed == 0
    finally:
        await store.close()
