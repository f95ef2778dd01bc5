"""The bot's Discord-free parts, built together before the bot and closed after it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from hh_api import (
    DEMO_PROVIDER,
    DemoBackend,
    DemoSettings,
    HappyHorse,
    PollPolicy,
    PriceTable,
    ProviderConfig,
)
from paddock.budget import utcnow
from paddock.delivery import MediaWorkers
from paddock.extensions import Extensions
from paddock.guild_config import GuildConfig
from paddock.jobs import JobStore
from paddock.ledger import Clock, Ledger
from paddock.store import Store, open_store


@dataclass(frozen=True)
class Services:
    """The store, the ledger, the job store, the server config and the provider client,
    sharing one clock; and the bounded workers for media (probe, re-encode, pictures)."""

    store: Store
    ledger: Ledger
    jobs: JobStore
    hh: HappyHorse
    config: GuildConfig
    media: MediaWorkers
    extensions: Extensions

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        database: Path | str,
        providers: Mapping[str, ProviderConfig],
        *,
        prices: PriceTable | None = None,
        poll: PollPolicy | None = None,
        demo: DemoSettings | None = None,
        clock: Clock = utcnow,
        busy_timeout: float = 5.0,
    ) -> AsyncIterator[Services]:
        """Open the database and the provider client. When "demo" is among `providers`,
        the demo backend (`demo` says how it behaves) runs until the services close, and
        the client's "demo" entry points at it."""
        store = await open_store(database, busy_timeout=busy_timeout)
        try:
            async with contextlib.AsyncExitStack() as stack:
                media = MediaWorkers()
                stack.callback(media.close)
                if DEMO_PROVIDER in providers:
                    backend = DemoBackend(demo or DemoSettings())
                    await stack.enter_async_context(backend)
                    providers = {
                        name: backend.provider_config() if name == DEMO_PROVIDER else config
                        for name, config in providers.items()
                    }
                options = {"poll": poll} if poll is not None else {}
                hh = HappyHorse(providers, prices=prices or PriceTable(), **options)
                await stack.enter_async_context(hh)
                config = GuildConfig(store, clock=clock)
                await config.follow_changes()  # other processes' changes (PostgreSQL)
                yield cls(
                    store=store,
                    ledger=Ledger(store, clock=clock),
                    jobs=JobStore(store, clock=clock),
                    hh=hh,
                    config=config,
                    media=media,
                    extensions=Extensions(store, clock=clock),
                )
        finally:
            await store.close()
