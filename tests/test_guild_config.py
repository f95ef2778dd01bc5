"""GuildConfig: /video channels, the moderator role, and the record of their changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from paddock.guild_config import GuildConfig, newest_first
from paddock.ledger import Ledger
from paddock.store import Store, open_store
from tests.postgres_fixtures import integrity_error

GUILD, OTHER_GUILD = 1001, 1002
MOD, OTHER_MOD = 7, 8
VIDEOS, ART, GENERAL = 301, 302, 303
MODS_ROLE = 401


class Clock:
    """A settable clock, one second further on each reading."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
async def store(db_location: Path | str):
    store = await open_store(db_location)
    yield store
    await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config(store: Store, clock: Clock) -> GuildConfig:
    return GuildConfig(store, clock=clock)


async def test_every_channel_is_allowed_until_one_is_listed(config: GuildConfig) -> None:
    assert await config.allowed_channels(GUILD) == frozenset()
    assert await config.is_channel_allowed(GUILD, GENERAL)

    change = await config.allow_channel(GUILD, VIDEOS, actor_id=MOD, reason="keep #general calm")

    assert (change.before, change.after, change.added, change.removed) == (
        (),
        (VIDEOS,),
        (VIDEOS,),
        (),
    )
    assert change.changed and change.id is not None
    assert await config.allowed_channels(GUILD) == {VIDEOS}
    assert await config.is_channel_allowed(GUILD, VIDEOS)
    assert not await config.is_channel_allowed(GUILD, GENERAL)
    assert await config.is_channel_allowed(OTHER_GUILD, GENERAL)  # other servers untouched


async def test_allow_disallow_and_set_change_the_list(config: GuildConfig) -> None:
    await config.allow_channel(GUILD, VIDEOS, actor_id=MOD)
    await config.allow_channel(GUILD, ART, actor_id=MOD)
    assert await config.allowed_channels(GUILD) == {VIDEOS, ART}

    removed = await config.disallow_channel(GUILD, VIDEOS, actor_id=MOD)
    assert (removed.before, removed.after, removed.removed) == ((VIDEOS, ART), (ART,), (VIDEOS,))

    replaced = await config.set_allowed_channels(GUILD, [GENERAL, VIDEOS], actor_id=MOD)
    assert (replaced.before, replaced.after) == ((ART,), (VIDEOS, GENERAL))
    assert await config.allowed_channels(GUILD) == {VIDEOS, GENERAL}

    last = await config.set_allowed_channels(GUILD, [GENERAL], actor_id=MOD)
    emptied = await config.disallow_channel(GUILD, GENERAL, actor_id=MOD)
    assert last.after == (GENERAL,) and emptied.after == ()
    assert await config.is_channel_allowed(GUILD, ART)  # nothing listed: everywhere again


async def test_a_change_that_changes_nothing_is_not_recorded(config: GuildConfig) -> None:
    await config.allow_channel(GUILD, VIDEOS, actor_id=MOD)

    again = await config.allow_channel(GUILD, VIDEOS, actor_id=MOD)
    absent = await config.disallow_channel(GUILD, ART, actor_id=MOD)
    same_role = await config.set_moderator_role(GUILD, None, actor_id=MOD)

    assert [again.changed, absent.changed, same_role.changed] == [False, False, False]
    assert [again.id, absent.id, same_role.id] == [None, None, None]
    assert again.after == absent.after == (VIDEOS,)
    assert len(await config.changes(GUILD)) == 1


async def test_moderator_role_is_set_replaced_and_cleared(config: GuildConfig) -> None:
    assert await config.moderator_role(GUILD) is None

    first = await config.set_moderator_role(GUILD, MODS_ROLE, actor_id=MOD, reason="new team")
    second = await config.set_moderator_role(GUILD, MODS_ROLE + 1, actor_id=OTHER_MOD)
    assert await config.moderator_role(GUILD) == MODS_ROLE + 1
    cleared = await config.set_moderator_role(GUILD, None, actor_id=MOD, reason="disbanded")

    assert (first.before, first.after) == (None, MODS_ROLE)
    assert (second.before, second.after) == (MODS_ROLE, MODS_ROLE + 1)
    assert (cleared.before, cleared.after) == (MODS_ROLE + 1, None)
    assert await config.moderator_role(GUILD) is None
    assert await config.moderator_role(OTHER_GUILD) is None


async def test_changes_record_who_when_why_newest_first(config: GuildConfig, clock: Clock) -> None:
    await config.allow_channel(GUILD, VIDEOS, actor_id=MOD, reason="one place for videos")
    await config.set_moderator_role(GUILD, MODS_ROLE, actor_id=OTHER_MOD)
    await config.allow_channel(OTHER_GUILD, ART, actor_id=MOD)

    changes = await config.changes(GUILD)

    assert [(c.setting, c.actor_id, c.reason, c.before, c.after) for c in changes] == [
        ("moderator_role", OTHER_MOD, None, None, MODS_ROLE),
        ("video_channels", MOD, "one place for videos", (), (VIDEOS,)),
    ]
    assert changes[0].at == clock.now - timedelta(seconds=1)
    assert changes[0].at > changes[1].at
    assert all(c.guild_id == GUILD for c in changes)
    older = await config.changes(GUILD, 5, before=changes[0].id)
    assert [c.id for c in older] == [changes[1].id]
    assert [c.id for c in await config.changes(GUILD, 1)] == [changes[0].id]


async def test_the_change_log_is_append_only(config: GuildConfig, store: Store) -> None:
    await config.set_moderator_role(GUILD, MODS_ROLE, actor_id=MOD)

    def tamper(db, statement: str) -> None:
        db.execute(statement)

    for statement in ("UPDATE config_changes SET actor_id = 0", "DELETE FROM config_changes"):
        with pytest.raises(integrity_error(store), match="append-only"):
            await store.write(tamper, statement)
    assert [c.actor_id for c in await config.changes(GUILD)] == [MOD]


async def test_bad_ids_are_refused_before_anything_is_written(config: GuildConfig) -> None:
    with pytest.raises(ValueError, match="channel id"):
        await config.set_allowed_channels(GUILD, [VIDEOS, -1], actor_id=MOD)
    with pytest.raises(ValueError, match="channel id"):
        await config.allow_channel(GUILD, True, actor_id=MOD)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="role id"):
        await config.set_moderator_role(GUILD, "401", actor_id=MOD)  # type: ignore[arg-type]
    assert await config.allowed_channels(GUILD) == frozenset()
    assert await config.changes(GUILD) == []


async def test_newest_first_merges_the_ledger_and_config_by_time(
    store: Store, config: GuildConfig, clock: Clock
) -> None:
    ledger = Ledger(store, clock=clock)
    await ledger.grant(GUILD, 55, 10, actor_id=MOD, reason="first", role_ids=())
    await config.allow_channel(GUILD, VIDEOS, actor_id=MOD, reason="second")
    await ledger.block(GUILD, 55, actor_id=MOD, reason="third")
    await config.set_moderator_role(GUILD, MODS_ROLE, actor_id=MOD, reason="fourth")

    entries = await ledger.audit_log(GUILD, limit=10)
    changes = await config.changes(GUILD, 10)
    merged = newest_first(entries, changes, 10)

    assert [item.reason for item in merged if item.reason] == ["fourth", "third", "second", "first"]
    assert [item.at for item in merged] == sorted((item.at for item in merged), reverse=True)
    assert len(merged) == len(entries) + len(changes)
    assert [item.reason for item in newest_first(entries, changes, 2)] == ["fourth", "third"]


def test_newest_first_puts_a_config_change_after_ledger_entries_of_the_same_instant() -> None:
    from paddock.audit import Entry
    from paddock.guild_config import ConfigChange

    at = datetime(2025, 3, 3, tzinfo=UTC)
    entry = Entry(1, at, GUILD, 55, "member", "grant", None, 5, 0, 5, MOD, None, None)
    change = ConfigChange(1, at, GUILD, "moderator_role", None, MODS_ROLE, MOD, None)

    assert newest_first([entry], [change], 5) == [change, entry]
    assert newest_first([], [], 5) == []


async def test_preloaded_settings_answer_from_memory_until_something_changes(
    store: Store, config: GuildConfig
) -> None:
    await config.allow_channel(GUILD, VIDEOS, actor_id=MOD)
    await config.set_moderator_role(GUILD, MODS_ROLE, actor_id=MOD)
    started = GuildConfig(store)  # a process starting on this database
    await started.preload()

    def behind_its_back(db) -> None:  # a row no GuildConfig wrote, so none knows of it
        db.execute("INSERT INTO video_channels (guild_id, channel_id) VALUES (?, ?)",
                   [OTHER_GUILD, ART])

    await store.write(behind_its_back)
    # every server's settings were read at the start: a server with none is not read again
    assert await started.allowed_channels(GUILD) == frozenset({VIDEOS})
    assert await started.moderator_role(GUILD) == MODS_ROLE
    assert await started.allowed_channels(OTHER_GUILD) == frozenset()
    assert await started.moderator_role(OTHER_GUILD) is None

    await started.allow_channel(GUILD, GENERAL, actor_id=MOD)  # a change: read again
    assert await started.allowed_channels(OTHER_GUILD) == frozenset({ART})
    assert await started.allowed_channels(GUILD) == frozenset({VIDEOS, GENERAL})
    started.forget_all()
    assert await started.moderator_role(GUILD) == MODS_ROLE
