"""Paddock, the Discord bot: the Bot subclass, and ``python bot.py``.

Settings come from the environment and ``.env``, read by :mod:`paddock.settings` (for a
start and for ``--check`` alike). With ``DISCORD_SHARD_COUNT`` the bot is a
:class:`ShardedPaddock` running the shards ``DISCORD_SHARD_IDS`` names; otherwise a
:class:`Paddock` with one connection. ``DISCORD_API_BASE`` and
``DISCORD_GATEWAY_URL`` route discord.py through a REST proxy and a gateway proxy (or, in
tests, the fake Discord); unset, the bot talks to Discord itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands
from dotenv import load_dotenv

from cogs._first_answers import FirstAnswers
from paddock.errors import StoreBusy, StoreUnavailable
from paddock.health import HealthCheck
from paddock.http_server import SideDoor
from paddock.loop_lag import LoopLagMonitor
from paddock.metrics import PaddockMetrics
from paddock.preflight import preflight, summary
from paddock.refused_keys import RefusedKeys
from paddock.render_history import RenderHistory
from paddock.routing import Health, Router
from paddock.runner import Runner
from paddock.services import Services
from paddock.settings import (
    LOG_LEVELS,
    Problem,
    Settings,
    SettingsError,
    database_blocker,
    database_unusable,
    describe_shards,
)

log = logging.getLogger("paddock")

COGS_DIR = Path(__file__).resolve().parent / "cogs"
DISCORD_CONNECTIONS = 64  # HTTP connections to Discord at once
# Only the servers, their channels and roles: commands and buttons arrive whatever the
# intents, and every message the bot reads it fetches. With the default intents each job
# card the bot posts or edits would come back as a MESSAGE_CREATE/UPDATE to parse.
INTENTS = discord.Intents(guilds=True)
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Discord lets a bot IDENTIFY max_concurrency shards per 5 s: one per bucket, a shard's
# bucket being shard_id % max_concurrency (GET /gateway/bot says max_concurrency).
IDENTIFY_WINDOW = 5.0


def setup_logging(env: Mapping[str, str]) -> None:
    """One line per event on stderr at ``PADDOCK_LOG_LEVEL`` (INFO when unset or invalid:
    ``Settings.from_env`` then refuses an invalid one with a clear line).

    discord.py never logs below INFO: its DEBUG lines carry raw gateway events and
    webhook URLs, which hold members' interaction tokens.
    """
    level = env.get("PADDOCK_LOG_LEVEL", "").strip().upper()
    level = level if level in LOG_LEVELS else "INFO"
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    if level == "DEBUG":
        logging.getLogger("discord").setLevel(logging.INFO)


def route_discord(settings: Settings) -> None:
    """Point discord.py's REST client (and its webhook/interaction adapter, which shares
    ``Route``) and its gateway at the configured proxies; leave Discord's own otherwise."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class PaddockTree(app_commands.CommandTree["Paddock"]):
    """The command tree; its ``on_error`` is the last line for unexpected failures."""

    async def on_error(
        self, interaction: discord.Interaction[Paddock], error: app_commands.AppCommandError
    ) -> None:
        command = interaction.command.qualified_name if interaction.command else "?"
        log.error("/%s failed", command, exc_info=error)
        text = "Something went wrong on our side; the error is logged. Please try again."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the member that /%s failed", command, exc_info=True)


class Paddock(commands.Bot):
    """The bot: loads every cog in ``cogs/`` and syncs its slash commands on start.

    The Discord-free services (store, ledger, jobs, provider client) are built
    before the bot and handed in; cogs reach them as ``bot.services``. Build it with
    :meth:`build`, which gives a :class:`ShardedPaddock` when the settings shard.
    """

    @classmethod
    def build(cls, settings: Settings, services: Services) -> Paddock:
        """The bot these settings call for: sharded (``DISCORD_SHARD_COUNT``) or not."""
        return (ShardedPaddock if settings.sharded else Paddock)(settings, services)

    def __init__(self, settings: Settings, services: Services) -> None:
        sharding: dict[str, object] = {}
        if isinstance(self, commands.AutoShardedBot):
            sharding = {"shard_count": settings.shard_count,
                        "shard_ids": list(settings.shard_ids) if settings.shard_ids else None}
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=INTENTS,
            tree_cls=PaddockTree,
            guild_ready_timeout=settings.guild_ready_timeout,
            # discord.py's default pool is unbounded, so a burst of commands opens a new
            # (TLS) connection per answer; a bounded pool reuses warm ones. Video uploads
            # are capped well below it (cogs/_delivery.py), so answers always get one.
            connector=aiohttp.TCPConnector(limit=DISCORD_CONNECTIONS),
            # No message cache: nothing reads it, and every edit of a job card comes back
            # as a MESSAGE_UPDATE that discord.py would look up in it, one by one.
            max_messages=None,
            **sharding,  # type: ignore[arg-type]
        )
        self.settings = settings
        self.services = services
        from cogs._delivery import DiscordDelivery

        self.delivery = DiscordDelivery(self)
        # Commands waiting for their first answer (due within 3 s) go before the work
        # that can wait: reservations, card edits, the runner's sends and status checks.
        self.first_answers = FirstAnswers()
        self.router = Router(services.hh, Health(), settings.routable_providers)
        self.runner = Runner(services.jobs, services.hh, self.delivery, settings.runner,
                             callback_url=settings.hiapi_callback_url,
                             history=RenderHistory(services.store),
                             member_slots=services.ledger.member_slots, router=self.router,
                             refused_keys=RefusedKeys(services.store),
                             give_way=self.first_answers.drained)
        self.metrics = PaddockMetrics(services.store, self.runner)
        services.hh.on_call = self.metrics.record_call
        self.loop_lag = LoopLagMonitor(self.metrics.registry)
        self.side_door: SideDoor | None = None
        self.metrics.watch_gateway(self.shard_latencies)

    async def setup_hook(self) -> None:
        await self.services.config.preload()  # the first /video answers from memory too
        for path in sorted(COGS_DIR.glob("*.py")):
            if not path.name.startswith("_"):
                await self.load_extension(f"cogs.{path.stem}")
        self.loop_lag.start()
        await self.sync_commands()
        await self.runner.start()
        if self.settings.http_port is not None:
            health = HealthCheck(gateway_problem=self.gateway_problem,
                                 store=self.services.store, runner=self.runner)
            self.side_door = SideDoor(
                health=health, metrics=self.metrics, wake=self.runner.wake,
                hiapi_secret=self.settings.hiapi_webhook_secret,
                host=self.settings.http_host, port=self.settings.http_port,
            )
            try:
                await self.side_door.start()
            except OSError as error:
                why = os.strerror(error.errno) if error.errno else str(error)
                raise SettingsError([Problem(
                    "PADDOCK_HTTP_PORT",
                    f"is {self.settings.http_port}, but the side door cannot listen on "
                    f"{self.settings.http_host}:{self.settings.http_port} ({why}); check "
                    f"PADDOCK_HTTP_HOST and PADDOCK_HTTP_PORT",
                )]) from None

    async def close(self) -> None:
        """Close the side door, stop taking jobs, let the runner put its work down (it is
        all in the database), then disconnect."""
        if self.side_door is not None:
            await self.side_door.stop()
        await self.runner.stop()
        await self.loop_lag.stop()
        await super().close()

    def gateway_problem(self) -> str | None:
        """What is wrong with the connection to Discord, for ``/healthz``; None when the
        session is up and ready."""
        connected = (self.is_ready() and not self.is_closed() and self.ws is not None
                     and self.ws.open)
        return None if connected else "not connected to Discord"

    def shard_latencies(self) -> list[tuple[int, float]]:
        """Seconds between a heartbeat and its acknowledgement, per shard of this process
        (shard 0: the one connection)."""
        return [(0, self.latency)]

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        """Register the commands: instantly in ``DEV_GUILD_ID`` if set, else globally."""
        if self.settings.dev_guild_id is not None:
            guild = discord.Object(id=self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to server %s", len(synced), guild.id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d commands globally", len(synced))
        return synced

    async def on_ready(self) -> None:
        log.info("ready as %s in %d server(s); %s", self.user, len(self.guilds),
                 describe_shards(self.settings))


class ShardedPaddock(Paddock, commands.AutoShardedBot):
    """Paddock on discord.py's ``AutoShardedBot``: one session per shard of
    ``DISCORD_SHARD_IDS`` (out of ``DISCORD_SHARD_COUNT``), in this process. Other
    processes run the other shards on the same token and database."""

    def __init__(self, settings: Settings, services: Services) -> None:
        super().__init__(settings, services)
        self.shards_ready: set[int] = set()  # shards whose session is up and ready
        self.identified_at: dict[int, float] = {}  # the last IDENTIFY of each bucket
        self.identify_concurrency: int | None = None  # Discord's max_concurrency

    @property
    def own_shards(self) -> Sequence[int]:
        """The shards this process runs: ``DISCORD_SHARD_IDS``, else all of the count."""
        assert self.settings.shard_count is not None
        return self.settings.shard_ids or range(self.settings.shard_count)

    def gateway_problem(self) -> str | None:
        """None only when every shard of this process has a live, ready session."""
        down = [str(shard) for shard in self.own_shards
                if shard not in self.shards_ready or self._shard_closed(shard)]
        if not down:
            return None
        shards = "shard" if len(down) == 1 else "shards"
        return (f"not connected to Discord: {shards} {', '.join(down)} of "
                f"{self.settings.shard_count} not ready")

    def _shard_closed(self, shard_id: int) -> bool:
        shard = self.get_shard(shard_id)
        return self.is_closed() or shard is None or shard.is_closed()

    def shard_latencies(self) -> list[tuple[int, float]]:
        return self.latencies

    async def on_shard_ready(self, shard_id: int) -> None:
        self.shards_ready.add(shard_id)
        served = sum(guild.shard_id == shard_id for guild in self.guilds)
        log.info("shard %d of %s ready in %d server(s)", shard_id, self.shard_count, served)

    async def on_shard_resumed(self, shard_id: int) -> None:
        self.shards_ready.add(shard_id)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self.shards_ready.discard(shard_id)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Wait only as long as Discord requires: an IDENTIFY per 5 s per bucket
        (``shard_id % max_concurrency``), instead of discord.py's 5 s before each."""
        if self.identify_concurrency is None:
            try:
                limits = await self.fetch_session_start_limits()
                self.identify_concurrency = max(1, limits.max_concurrency)
            except discord.HTTPException:
                log.warning("could not read max_concurrency from Discord; IDENTIFY one "
                            "shard per 5 s", exc_info=True)
                self.identify_concurrency = 1
        bucket = (shard_id or 0) % self.identify_concurrency
        loop = asyncio.get_running_loop()
        last = self.identified_at.get(bucket)
        if last is not None and (wait := last + IDENTIFY_WINDOW - loop.time()) > 0:
            await asyncio.sleep(wait)
        self.identified_at[bucket] = loop.time()


async def run(settings: Settings) -> None:
    route_discord(settings)
    location = settings.database  # a PostgreSQL URL, or the SQLite file
    if isinstance(location, Path) and (why := database_blocker(location)):
        raise SettingsError([Problem("DATABASE_PATH", why)])
    async with contextlib.AsyncExitStack() as stack:
        try:
            services = await stack.enter_async_context(Services.open(
                location, settings.providers, prices=settings.prices, demo=settings.demo,
                busy_timeout=settings.sqlite_busy_timeout))
        except (OSError, sqlite3.Error, StoreUnavailable, StoreBusy) as error:
            cause = error.__cause__ if isinstance(error, StoreUnavailable) else error
            raise SettingsError([database_unusable(location, cause or error)]) from None
        bot = await stack.enter_async_context(Paddock.build(settings, services))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
        await bot.start(settings.discord_token)


def check(env: Mapping[str, str]) -> int:
    """``python bot.py --check``: print what the configuration holds, one line an item,
    without connecting to Discord or a provider; 0 when the bot can start, 1 otherwise."""
    # Every error ends up in a finding; the store's own log would repeat it as a traceback.
    logging.basicConfig(handlers=[logging.NullHandler()])
    packages = ("hh_api", "paddock", COGS_DIR.name)
    findings = asyncio.run(preflight(env, packages=packages))
    for finding in findings:
        print(finding.line())
    print(summary(findings))
    return 1 if any(finding.problem for finding in findings) else 0


# The cycle collector's first generation, in net new container objects (Python's default is
# 700). A waiting job's check leaves a few objects that live until its next check 15 s
# later: at 700 the collector scanned them every fraction of a second, moved them on, and
# passed over the whole heap (about 95 ms with a thousand jobs) twice in a minute and a half,
# 11-12% of the bot's CPU while jobs only wait. Objects that die by reference count give
# their place back, so at 50,000 a collection comes only when the heap really grows.
COLLECT_AFTER = 50_000


def main() -> None:
    """``python bot.py``: one clear line, not a traceback, when it cannot start."""
    parser = argparse.ArgumentParser(prog="bot.py", description="Paddock, the Discord bot.")
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the settings, the database and the install without connecting, then exit",
    )
    arguments = parser.parse_args()
    load_dotenv()
    if arguments.check:
        sys.exit(check(os.environ))
    setup_logging(os.environ)
    gc.set_threshold(COLLECT_AFTER, *gc.get_threshold()[1:])
    try:
        settings = Settings.from_env(os.environ)
        asyncio.run(run(settings))
    except SettingsError as error:
        sys.exit("\n".join(f"paddock: {problem}" for problem in error.problems))
    except discord.LoginFailure:
        sys.exit("paddock: Discord rejected DISCORD_TOKEN (401 Unauthorized); check the token")
    except discord.PrivilegedIntentsRequired as error:
        sys.exit(f"paddock: enable the privileged intents in the Developer Portal ({error})")
    except KeyboardInterrupt:
        log.info("stopped")


if __name__ == "__main__":
    main()
