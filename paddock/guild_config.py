"""A server's bot settings that are not about credits: where ``/video`` may run, and which
role counts as moderators.

Every change is recorded in ``config_changes`` (append-only) with the moderator, the time,
their reason and the value before and after, so the moderators' audit log can show config
changes next to the ledger's journal (:func:`newest_first` merges the two by time).

``video_channels`` empty means ``/video`` is allowed in every channel; otherwise only in
the listed ones. No moderator role means only members with Manage Server moderate; that
rule lives with the Discord glue (``cogs/_checks.py``), this module only stores the role.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from paddock.audit import Entry
from paddock.budget import parse_timestamp, timestamp, utc, utcnow
from paddock.ledger import Clock
from paddock.settings_changes import CHANNEL as SETTINGS_CHANNEL
from paddock.settings_changes import MODERATOR_ROLE, VIDEO_CHANNELS, announce
from paddock.settings_changes import parse as parse_change
from paddock.store import Store
from paddock.store.notifications import Subscription

ConfigValue = tuple[int, ...] | int | None


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One change of a server setting, as the audit log shows it.

    ``setting`` is ``"video_channels"`` (``before``/``after``: sorted channel ids, empty
    meaning everywhere) or ``"moderator_role"`` (a role id or ``None``). ``id`` is
    ``None`` when the change would have changed nothing, and so was not recorded.
    """

    id: int | None
    at: datetime
    guild_id: int
    setting: str
    before: ConfigValue
    after: ConfigValue
    actor_id: int
    reason: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def added(self) -> tuple[int, ...]:
        """For ``video_channels``: the channel ids this change allowed."""
        return tuple(sorted(set(_ids(self.after)) - set(_ids(self.before))))

    @property
    def removed(self) -> tuple[int, ...]:
        """For ``video_channels``: the channel ids this change stopped allowing."""
        return tuple(sorted(set(_ids(self.before)) - set(_ids(self.after))))


def _ids(value: ConfigValue) -> tuple[int, ...]:
    return value if isinstance(value, tuple) else ()


class GuildConfig:
    """Per-server ``/video`` channels and moderator role, on a :class:`Store`.

    Each write is one ``BEGIN IMMEDIATE`` transaction that reads the current value,
    writes the new one and records the change; reads use the store's read-only
    connections. ``clock`` returns the current time (UTC), like the ledger's.

    Both settings are kept in memory once read (every ``/video`` asks for the channels),
    and replaced by this object's own writes when they commit. With several processes on
    one database, :meth:`follow_changes` makes every other process's change (announced
    by its write, :mod:`paddock.settings_changes`) drop this process's copy.
    """

    def __init__(self, store: Store, *, clock: Clock = utcnow) -> None:
        self.store = store
        self._clock = clock
        self._channels: dict[int, frozenset[int]] = {}
        self._roles: dict[int, int | None] = {}
        # The version at which every server's settings were read (:meth:`preload`): while
        # it is the current one, a server missing from the two dicts has none.
        self._complete: int | None = None
        # Bumped by every write and every announced change, so a read (or a write's
        # result) from before one is never cached after it.
        self._version = 0
        self._news: Subscription | None = None

    async def follow_changes(self) -> None:
        """Drop a server's cached settings whenever any process changes them, and every
        cached setting when announcements may have been missed (listener reconnected)."""
        if self._news is None:
            self._news = await self.store.listen(
                SETTINGS_CHANNEL, self._changed_elsewhere, self.forget_all)

    async def preload(self) -> None:
        """Read every server's settings in one go, so that even the first ``/video`` of a
        server after a start answers from memory (a server without any has none)."""
        version = self._version
        channels, roles = await self.store.read(_all_settings)
        if not self._may_cache(version):
            return
        for guild_id, ids in channels.items():
            self._channels.setdefault(guild_id, ids)
        for guild_id, role_id in roles.items():
            self._roles.setdefault(guild_id, role_id)
        self._complete = version

    def forget_all(self) -> None:
        """Drop every cached setting; reads in flight are not cached either."""
        self._version += 1
        self._channels.clear()
        self._roles.clear()

    def _changed_elsewhere(self, payload: str) -> None:
        change = parse_change(payload)
        if change is None:
            return
        guild_id, what = change
        if what in (VIDEO_CHANNELS, MODERATOR_ROLE):
            self._version += 1
            self._channels.pop(guild_id, None)
            self._roles.pop(guild_id, None)

    def _may_cache(self, version: int) -> bool:
        """Whether a value read since `version` may be kept: nothing changed meanwhile,
        and a change from now on would be heard."""
        return version == self._version and (self._news is None or self._news.live)

    def _known_unset(self) -> bool:
        """Whether a server missing from memory has no settings: every server's were read
        (:meth:`preload`) and nothing changed since."""
        return self._complete is not None and self._may_cache(self._complete)

    def now(self) -> datetime:
        return utc(self._clock())

    # /video channels

    async def allowed_channels(self, guild_id: int) -> frozenset[int]:
        """The channels where ``/video`` may run; empty means every channel."""
        cached = self._channels.get(guild_id)
        if cached is not None:
            return cached
        if self._known_unset():
            return frozenset()
        version = self._version
        channels = frozenset(await self.store.read(_video_channels, guild_id))
        if self._may_cache(version):
            self._channels[guild_id] = channels
        return channels

    async def is_channel_allowed(self, guild_id: int, channel_id: int) -> bool:
        """Whether ``/video`` may run in this channel (always, when none are listed)."""
        allowed = await self.allowed_channels(guild_id)
        return not allowed or channel_id in allowed

    async def set_allowed_channels(
        self,
        guild_id: int,
        channel_ids: Iterable[int],
        *,
        actor_id: int,
        reason: str | None = None,
    ) -> ConfigChange:
        """Allow ``/video`` in exactly these channels (none: everywhere)."""
        wanted = _channel_ids(channel_ids)
        return await self._change_channels(guild_id, lambda _: wanted, actor_id, reason)

    async def allow_channel(
        self, guild_id: int, channel_id: int, *, actor_id: int, reason: str | None = None
    ) -> ConfigChange:
        """Add one channel to the list (the first one limits ``/video`` to it)."""
        (added,) = _channel_ids([channel_id])
        return await self._change_channels(
            guild_id, lambda current: current | {added}, actor_id, reason
        )

    async def disallow_channel(
        self, guild_id: int, channel_id: int, *, actor_id: int, reason: str | None = None
    ) -> ConfigChange:
        """Take one channel off the list. Removing the last one allows every channel."""
        return await self._change_channels(
            guild_id, lambda current: current - {channel_id}, actor_id, reason
        )

    async def _change_channels(
        self,
        guild_id: int,
        update: Callable[[frozenset[int]], frozenset[int]],
        actor_id: int,
        reason: str | None,
    ) -> ConfigChange:
        def run(db: Database, now: datetime) -> ConfigChange:
            before = frozenset(_video_channels(db, guild_id))
            after = update(before)
            if after != before:
                db.execute("DELETE FROM video_channels WHERE guild_id = ?", [guild_id])
                for channel in sorted(after):
                    db.execute(
                        "INSERT INTO video_channels (guild_id, channel_id) VALUES (?, ?)",
                        [guild_id, channel],
                    )
                announce(db, guild_id, VIDEO_CHANNELS)
            return _record(
                db,
                now,
                guild_id,
                VIDEO_CHANNELS,
                tuple(sorted(before)),
                tuple(sorted(after)),
                actor_id,
                reason,
            )

        self._version += 1
        self._channels.pop(guild_id, None)
        version = self._version
        change = await self.store.write(run, self.now())
        if self._may_cache(version):
            self._channels[guild_id] = frozenset(_ids(change.after))
        self._version += 1
        return change

    # moderator role

    async def moderator_role(self, guild_id: int) -> int | None:
        """The role whose members moderate this server, besides Manage Server."""
        if guild_id in self._roles:
            return self._roles[guild_id]
        if self._known_unset():
            return None
        version = self._version
        role = await self.store.read(_moderator_role, guild_id)
        if self._may_cache(version):
            self._roles[guild_id] = role
        return role

    async def set_moderator_role(
        self,
        guild_id: int,
        role_id: int | None,
        *,
        actor_id: int,
        reason: str | None = None,
    ) -> ConfigChange:
        """Make ``role_id`` the moderator role, or with ``None``, have none."""
        if role_id is not None and (isinstance(role_id, bool) or not isinstance(role_id, int)):
            raise TypeError(f"a role id is an int, not {role_id!r}")

        def run(db: Database, now: datetime) -> ConfigChange:
            before = _moderator_role(db, guild_id)
            if role_id != before:
                db.execute(
                    """
                    INSERT INTO guild_config (guild_id, moderator_role_id) VALUES (?, ?)
                    ON CONFLICT (guild_id)
                    DO UPDATE SET moderator_role_id = excluded.moderator_role_id
                    """,
                    [guild_id, role_id],
                )
                announce(db, guild_id, MODERATOR_ROLE)
            return _record(db, now, guild_id, MODERATOR_ROLE, before, role_id, actor_id, reason)

        self._version += 1
        self._roles.pop(guild_id, None)
        version = self._version
        change = await self.store.write(run, self.now())
        if self._may_cache(version):
            self._roles[guild_id] = role_id
        self._version += 1
        return change

    # history

    async def changes(
        self, guild_id: int, limit: int = 50, *, before: int | None = None
    ) -> list[ConfigChange]:
        """The server's recorded config changes, newest first (page with ``before=id``)."""

        def run(db: Database) -> list[ConfigChange]:
            where, args = "guild_id = ?", [guild_id]
            if before is not None:
                where += " AND id < ?"
                args.append(before)
            rows = db.execute(
                "SELECT id, at, guild_id, setting, before, after, actor_id, reason"
                f" FROM config_changes WHERE {where} ORDER BY id DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
            return [_change_from_row(row) for row in rows]

        return await self.store.read(run)


def newest_first(
    entries: Iterable[Entry], changes: Iterable[ConfigChange], limit: int
) -> list[Entry | ConfigChange]:
    """The ledger's entries and config changes as one audit log, newest first.

    Pass at least ``limit`` of the newest of each and the result is exactly the newest
    ``limit`` of both together. At the same instant a config change counts as newer than
    the ledger's entries, and each source keeps its own order (by id).
    """
    keyed: list[tuple[datetime, int, int, Entry | ConfigChange]] = [
        (entry.at, 0, entry.id, entry) for entry in entries
    ]
    keyed += [(change.at, 1, change.id or 0, change) for change in changes]
    keyed.sort(key=lambda item: item[:3], reverse=True)
    return [item[3] for item in keyed[:limit]]


def _channel_ids(channel_ids: Iterable[int]) -> frozenset[int]:
    ids = frozenset(channel_ids)
    for channel_id in ids:
        if isinstance(channel_id, bool) or not isinstance(channel_id, int) or channel_id <= 0:
            raise ValueError(f"a channel id is a positive int, not {channel_id!r}")
    return ids


def _video_channels(db: Database, guild_id: int) -> list[int]:
    rows = db.execute(
        "SELECT channel_id FROM video_channels WHERE guild_id = ? ORDER BY channel_id",
        [guild_id],
    ).fetchall()
    return [row[0] for row in rows]


def _all_settings(db: Database) -> tuple[dict[int, frozenset[int]], dict[int, int | None]]:
    """Every server's /video channels and moderator role, in one read transaction."""
    channels: dict[int, set[int]] = {}
    for guild_id, channel_id in db.execute(
        "SELECT guild_id, channel_id FROM video_channels"
    ).fetchall():
        channels.setdefault(guild_id, set()).add(channel_id)
    roles = dict(db.execute("SELECT guild_id, moderator_role_id FROM guild_config").fetchall())
    return {g: frozenset(ids) for g, ids in channels.items()}, roles


def _moderator_role(db: Database, guild_id: int) -> int | None:
    row = db.execute(
        "SELECT moderator_role_id FROM guild_config WHERE guild_id = ?", [guild_id]
    ).fetchone()
    return None if row is None else row[0]


def _record(
    db: Database,
    now: datetime,
    guild_id: int,
    setting: str,
    before: ConfigValue,
    after: ConfigValue,
    actor_id: int,
    reason: str | None,
) -> ConfigChange:
    """Record the change (unless nothing changed) and return it."""
    reason = reason or None
    change_id = None
    if before != after:
        cursor = db.execute(
            """
            INSERT INTO config_changes (at, guild_id, setting, before, after, actor_id, reason)
            VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id
            """,
            [timestamp(now), guild_id, setting, _dump(before), _dump(after), actor_id, reason],
        )
        change_id = cursor.fetchone()[0]
    return ConfigChange(change_id, utc(now), guild_id, setting, before, after, actor_id, reason)


def _dump(value: ConfigValue) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _load(setting: str, text: str) -> ConfigValue:
    value: Any = json.loads(text)
    if setting == VIDEO_CHANNELS:
        return tuple(value)
    return value


def _change_from_row(row: Sequence[Any]) -> ConfigChange:
    setting = row[3]
    return ConfigChange(
        id=row[0],
        at=parse_timestamp(row[1]),  # type: ignore[arg-type]
        guild_id=row[2],
        setting=setting,
        before=_load(setting, row[4]),
        after=_load(setting, row[5]),
        actor_id=row[6],
        reason=row[7],
    )
