"""pytest fixtures and runners: the fake Discord, the bot in-process, the bot as a
subprocess (``python bot.py``). ``tests/conftest.py`` makes the fixtures available.

Fixtures:

- ``fake_discord``: a started :class:`FakeDiscord` on a random port.
- ``paddock_settings``: the ``bot.Settings`` the ``paddock`` fixture uses (override it).
- ``paddock``: the real ``bot.Paddock``, running in the test's event loop against
  ``fake_discord``, ready and with its commands registered in the fake server.
- ``probe_bot``: a bare bot whose commands run the test's coroutine (``probe.py``), for
  checking a Discord behaviour without the product around it.

Runners for tests that need more control (another bot class, a restart, a subprocess):
:func:`running_bot` and :func:`bot_process`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import discord
import pytest
import yarl

from tests.fakes.discord.probe import ProbeBot
from tests.fakes.discord.server import FakeDiscord
from tests.fakes.waiting import WAIT_LIMIT
from tests.migrated import migrated_database

if TYPE_CHECKING:
    from bot import Paddock, Settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[3]
ClientT = TypeVar("ClientT", bound=discord.Client)


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord, bot: ClientT, *, timeout: float = WAIT_LIMIT
) -> AsyncIterator[ClientT]:
    """Run a discord.py client against ``fake`` in this event loop, ready on entry and
    closed on exit. discord.py's REST base and gateway are pointed at the fake for the
    duration and restored afterwards."""
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        async with bot:
            running = asyncio.create_task(bot.start(fake.token), name="bot under test")
            ready = asyncio.create_task(bot.wait_until_ready())
            done, _ = await asyncio.wait(
                {running, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if running in done:
                ready.cancel()
                running.result()
                raise RuntimeError("the bot stopped before it was ready")
            if ready not in done:
                ready.cancel()
                raise TimeoutError(f"the bot was not ready within {timeout}s")
            try:
                yield bot
            finally:
                await bot.close()
                await running
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


@dataclass
class BotProcess:
    """A ``python bot.py`` started by :func:`bot_process`; ``output`` is its log so far."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    grown: asyncio.Condition = field(default_factory=asyncio.Condition, repr=False)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def wait_for_output(
        self, text: str, timeout: float = WAIT_LIMIT, *, count: int = 1
    ) -> None:
        """Return once ``text`` is in the output (a log line the bot has printed), at
        least ``count`` times."""
        async with asyncio.timeout(timeout), self.grown:
            await self.grown.wait_for(lambda: self.output.count(text) >= count)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        """Send ``sig`` (SIGKILL to simulate a crash) and wait for the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode


@contextlib.asynccontextmanager
async def bot_process(
    fake: FakeDiscord,
    *,
    env: dict[str, str] | None = None,
    wait: bool = True,
    timeout: float = WAIT_LIMIT,
    script: str = "bot.py",
    shard: tuple[int, int] | None = None,
) -> AsyncIterator[BotProcess]:
    """Start ``python bot.py`` (or ``script``, a path from the repository's root) in the
    repository with the environment pointing at ``fake`` (plus ``env``); with ``wait``,
    return once it is connected and has registered its commands. Stopped (SIGTERM, then
    SIGKILL) on exit. ``shard=(shard_id, count)`` waits for that shard's session (a bot
    running one shard of several, ``DISCORD_SHARD_IDS``).

    A restart is two of these in a row: the second waits for a new session, not the
    killed bot's (``await first.stop(signal.SIGKILL)`` simulates a crash)."""
    previous = fake.gateway.current()
    if shard is not None:
        previous = ([s for s in fake.gateway.live_sessions() if s.shard == shard] or [None])[-1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        script,
        cwd=ROOT,
        env={**os.environ, **fake.env(), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    handle = BotProcess(process)

    async def collect() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            handle.lines.append(line.decode(errors="replace"))
            async with handle.grown:
                handle.grown.notify_all()

    reader = asyncio.create_task(collect())
    try:
        if wait:
            connected = asyncio.create_task(
                fake.wait_for_bot(timeout=timeout, replacing=previous, shard=shard))
            exited = asyncio.create_task(process.wait())
            done, _ = await asyncio.wait({connected, exited}, return_when=asyncio.FIRST_COMPLETED)
            if exited in done:
                connected.cancel()
                await reader
                raise RuntimeError(f"{script} exited with {process.returncode}:\n{handle.output}")
            exited.cancel()
            connected.result()
        yield handle
    finally:
        await handle.stop()
        await reader
        log.debug("bot.py output:\n%s", handle.output)


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A fake Discord with one server (#general, #videos), started on a random port."""
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def paddock_settings(
    fake_discord: FakeDiscord, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Settings:
    """Settings for a Paddock talking to ``fake_discord``, with its database in
    ``tmp_path`` (or, for a test marked ``both_backends``, also on PostgreSQL); override this
    fixture to add more (provider keys) as needed."""
    from bot import Settings

    return Settings(
        discord_token=fake_discord.token,
        discord_api_base=fake_discord.api_base,
        discord_gateway_url=fake_discord.gateway_url,
        dev_guild_id=fake_discord.guild.id,
        guild_ready_timeout=0.01,
        database_path=migrated_database(tmp_path / "paddock.db"),
        database_url=request.getfixturevalue("pg_url") if backend == "postgres" else None,
    )


@pytest.fixture
async def paddock(fake_discord: FakeDiscord, paddock_settings: Settings) -> AsyncIterator[Paddock]:
    """The real Paddock bot, in-process, connected to ``fake_discord`` and ready, with its
    services (database, ledger, provider client) built from ``paddock_settings``."""
    from bot import Paddock
    from paddock.services import Services

    settings = paddock_settings
    async with (
        Services.open(settings.database, settings.providers, prices=settings.prices,
                      demo=settings.demo) as services,
        running_bot(fake_discord, Paddock.build(settings, services)) as bot,
    ):
        yield bot


@pytest.fixture
async def probe_bot(fake_discord: FakeDiscord) -> AsyncIterator[ProbeBot]:
    """A bare bot whose commands run ``probe_bot.behaviour`` (see ``probe.py``)."""
    async with running_bot(fake_discord, ProbeBot(fake_discord.guild.id)) as bot:
        yield bot
