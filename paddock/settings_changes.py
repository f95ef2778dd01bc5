"""The announcement that a server's cached settings changed, for every process's caches.

The write that changes the ``/video`` channels, the moderator role or the limits calls
:func:`announce` in its own transaction; on PostgreSQL every process's listener hears it
once that transaction commits (:mod:`paddock.store.notifications`) and drops what it
kept of that server. The payload is ``"<guild id> <what>"``, ``what`` one of
:data:`VIDEO_CHANNELS`, :data:`MODERATOR_ROLE` or :data:`LIMITS`.
"""

from __future__ import annotations

from typing import Any

CHANNEL = "paddock_guild_settings"
VIDEO_CHANNELS = "video_channels"
MODERATOR_ROLE = "moderator_role"
LIMITS = "limits"


def announce(db: Any, guild_id: int, what: str) -> None:
    """Inside a write: tell every process, at COMMIT, that this server's `what` changed."""
    db.notify(CHANNEL, f"{guild_id} {what}")


def parse(payload: str) -> tuple[int, str] | None:
    """The server and what changed, from a payload; None if it is not one of ours."""
    guild, _, what = payload.partition(" ")
    try:
        return int(guild), what
    except ValueError:
        return None
