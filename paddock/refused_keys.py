"""Provider keys their provider refused, kept across restarts.

A 401/403 on a submit takes the provider out of ``provider: auto`` until its key changes
(`paddock.routing.Health.key_refused`). Keeping the refusal here means a restart with the
same key does not send the next jobs to a provider that will refuse them again, and
``python bot.py --check`` tells the owner which key to replace. Only a fingerprint of the
key is stored (a salted SHA-256, cut short), never the key; a different key no longer
matches and its old refusal is dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from hh_api import ProviderConfig, Secret
from paddock.budget import parse_timestamp, timestamp, utcnow
from paddock.store import Store


def fingerprint(key: Secret) -> str:
    """Enough of a hash to tell keys apart; nothing that helps to guess one."""
    return hashlib.sha256(b"paddock refused key:" + key.reveal().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RefusedKey:
    provider: str
    reason: str
    at: datetime


def refused_in(db: Database, configs: Mapping[str, ProviderConfig]) -> list[RefusedKey]:
    """The refusals that still apply: the provider's current key is the one refused."""
    current = {name: fingerprint(config.api_key) for name, config in configs.items()
               if config.api_key}
    rows = db.execute(
        "SELECT provider, key_fingerprint, reason, at FROM refused_keys ORDER BY provider"
    ).fetchall()
    return [RefusedKey(provider, reason, parse_timestamp(at))
            for provider, key, reason, at in rows if current.get(provider) == key]


class RefusedKeys:
    """The ``refused_keys`` table."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    async def remember(self, provider: str, key: Secret, reason: str) -> None:
        at = timestamp(self.clock())

        def run(db: Database) -> None:
            db.execute(
                "INSERT INTO refused_keys (provider, key_fingerprint, reason, at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (provider) DO UPDATE SET"
                " key_fingerprint = excluded.key_fingerprint, reason = excluded.reason,"
                " at = excluded.at",
                [provider, fingerprint(key), reason, at],
            )

        await self.store.write(run)

    async def still_refused(self, configs: Mapping[str, ProviderConfig]) -> list[RefusedKey]:
        """The refusals of the keys in use now; those of keys since replaced are dropped."""

        def run(db: Database) -> list[RefusedKey]:
            kept = refused_in(db, configs)
            still = [k.provider for k in kept]
            marks = ", ".join("?" for _ in still)
            db.execute(
                "DELETE FROM refused_keys" + (f" WHERE provider NOT IN ({marks})" if still else ""),
                still,
            )
            return kept

        return await self.store.write(run)
