"""Paddock, the Discord bot: settings, the Bot subclass, and ``python bot.py``.

Settings come from the environment and ``.env``. ``DISCORD_API_BASE`` and
``DISCORD_GATEWAY_URL`` route discord.py through a REST proxy and a gateway proxy (or, in
tests, the fake Discord); unset, the bot talks to Discord itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands
from dotenv import load_dotenv

from hh_api import (
    DEMO_PROVIDER,
    ConfigurationError,
    DemoSettings,
    PollPolicy,
    PriceTable,
    ProviderConfig,
    Secret,
    load_providers,
)
from paddock.health import HealthCheck
from paddock.http_server import SideDoor
from paddock.loop_lag import LoopLagMonitor
from paddock.metrics import PaddockMetrics
from paddock.preflight import preflight, summary
from paddock.refused_keys import RefusedKeys
from paddock.render_history import RenderHistory
from paddock.routing import AUTO, Health, Router
from paddock.runner import Runner, RunnerSettings
from paddock.services import Services
from paddock.store import DEFAULT_PATH

log = logging.getLogger("paddock")

COGS_DIR = Path(__file__).resolve().parent / "cogs"
DISCORD_CONNECTIONS = 64  # HTTP connections to Discord at once
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class SettingsError(ValueError):
    """The environment cannot start the bot; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    """Everything the bot needs from its environment."""

    discord_token: str = field(repr=False)  # never in a repr, a log line or an error
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    dev_guild_id: int | None = None
    guild_ready_timeout: float = 2.0
    database_path: Path = DEFAULT_PATH
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    default_provider: str | None = None  # None: none (from_env turns the demo on instead);
    # "auto": each job goes to the cheapest provider working now (paddock.routing)
    prices: PriceTable = field(default_factory=PriceTable)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)
    http_port: int | None = None  # None: no side door (health, metrics, callbacks)
    http_host: str = "127.0.0.1"
    public_url: str | None = None  # the side door's public https base URL
    hiapi_webhook_secret: Secret | None = None
    log_level: str = "INFO"  # checked here; main() applies it first, via setup_logging()

    @property
    def hiapi_callback_url(self) -> str | None:
        """Where HiAPI should post its callbacks, when the side door is public."""
        return f"{self.public_url}/callbacks/hiapi" if self.public_url else None

    @property
    def usable_providers(self) -> list[str]:
        """Providers with a key, and the demo when it is on (it needs none), the default
        first."""
        names = [
            name for name, config in self.providers.items()
            if config.api_key or name == DEMO_PROVIDER
        ]
        if self.default_provider in names:
            names.remove(self.default_provider)
            names.insert(0, self.default_provider)
        return names

    @property
    def routable_providers(self) -> list[str]:
        """The providers ``auto`` chooses among: those with a key (never the demo)."""
        return [name for name, config in self.providers.items()
                if config.api_key and name != DEMO_PROVIDER]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read ``DISCORD_TOKEN`` (required), ``DISCORD_API_BASE``,
        ``DISCORD_GATEWAY_URL``, ``DEV_GUILD_ID``, ``DISCORD_GUILD_READY_TIMEOUT``,
        ``DATABASE_PATH``, ``HH_PROVIDER``, the provider keys and their settings, and
        ``DEMO_RENDER_SECONDS`` and ``DEMO_FAIL_RATE``.

        The free demo provider is on when ``HH_PROVIDER`` is ``demo`` or no provider has
        a key; it is then the default."""
        token = env.get("DISCORD_TOKEN", "").strip()
        if not token:
            raise SettingsError("DISCORD_TOKEN is not set; put it in the environment or .env")
        guild = env.get("DEV_GUILD_ID", "").strip()
        if guild and not guild.isdigit():
            raise SettingsError(f"DEV_GUILD_ID must be a server id (digits), not {guild!r}")
        timeout = env.get("DISCORD_GUILD_READY_TIMEOUT", "").strip()
        try:
            ready_timeout = float(timeout) if timeout else 2.0
        except ValueError:
            message = f"DISCORD_GUILD_READY_TIMEOUT must be seconds, not {timeout!r}"
            raise SettingsError(message) from None
        try:
            providers = load_providers(env)
            prices = PriceTable.from_env(env)
            demo = DemoSettings.from_env(env)
        except ConfigurationError as error:
            raise SettingsError(str(error)) from None
        keyed = [name for name, config in providers.items() if config.api_key]
        default = env.get("HH_PROVIDER", "").strip().lower() or None
        if default is not None and default not in (*providers, DEMO_PROVIDER, AUTO):
            raise SettingsError(
                f"HH_PROVIDER must be one of {', '.join(providers)}, {DEMO_PROVIDER}, {AUTO}; "
                f"not {default!r}"
            )
        if default == AUTO and not keyed:
            raise SettingsError(
                "HH_PROVIDER is auto, but no provider has a key: set at least one "
                "NAME_API_KEY (two or more for failover)"
            )
        if default not in (None, DEMO_PROVIDER, AUTO, *keyed):
            raise SettingsError(
                f"HH_PROVIDER is {default}, but {default.upper()}_API_KEY is not set"
            )
        if default is None and not keyed:
            log.info("no provider key is set, so videos come from the free demo provider "
                     "(a sample clip; credits are charged at real prices)")
            default = DEMO_PROVIDER
        if default == DEMO_PROVIDER:
            providers[DEMO_PROVIDER] = ProviderConfig(DEMO_PROVIDER)
        return cls(
            **_side_door_settings(env, hiapi_keyed="hiapi" in keyed),
            log_level=_log_level(env),
            runner=_runner_settings(env),
            discord_token=token,
            discord_api_base=env.get("DISCORD_API_BASE", "").strip().rstrip("/") or None,
            discord_gateway_url=env.get("DISCORD_GATEWAY_URL", "").strip() or None,
            dev_guild_id=int(guild) if guild else None,
            guild_ready_timeout=ready_timeout,
            database_path=Path(env.get("DATABASE_PATH", "").strip() or DEFAULT_PATH),
            providers=providers,
            default_provider=default or keyed[0],
            prices=prices,
            demo=demo,
        )


def _runner_settings(env: Mapping[str, str]) -> RunnerSettings:
    """``PADDOCK_PROVIDER_CONCURRENCY``, ``PADDOCK_JOB_TIMEOUT_MINUTES``,
    ``PADDOCK_POLL_SECONDS`` (first status check; it then grows to 15 s)."""

    def number(name: str, default: float, low: float) -> float:
        text = env.get(name, "").strip()
        try:
            value = float(text) if text else default
        except ValueError:
            value = low - 1
        if value < low:
            raise SettingsError(f"{name} must be a number of at least {low:g}, not {text!r}")
        return value

    poll = number("PADDOCK_POLL_SECONDS", 2.0, 0.001)
    return RunnerSettings(
        provider_slots=int(number("PADDOCK_PROVIDER_CONCURRENCY", 8, 1)),
        job_timeout=timedelta(minutes=number("PADDOCK_JOB_TIMEOUT_MINUTES", 30, 1)),
        poll=PollPolicy(initial=poll, maximum=max(15.0, poll)),
    )


def _side_door_settings(env: Mapping[str, str], *, hiapi_keyed: bool) -> dict[str, object]:
    """``PADDOCK_HTTP_PORT``, ``PADDOCK_HTTP_HOST``, ``PADDOCK_PUBLIC_URL``,
    ``HIAPI_WEBHOOK_SECRET``."""
    port_text = env.get("PADDOCK_HTTP_PORT", "").strip()
    if port_text and not (port_text.isdigit() and int(port_text) <= 65535):
        raise SettingsError(f"PADDOCK_HTTP_PORT must be a port number (0-65535), not {port_text!r}")
    port = int(port_text) if port_text else None
    public_url = env.get("PADDOCK_PUBLIC_URL", "").strip().rstrip("/") or None
    secret = env.get("HIAPI_WEBHOOK_SECRET", "").strip()
    if public_url is not None:
        if not public_url.startswith("https://") or len(public_url) <= len("https://"):
            raise SettingsError(
                "PADDOCK_PUBLIC_URL must be the side door's public https:// address "
                "(HiAPI sends callbacks over HTTPS only)"
            )
        if port is None:
            raise SettingsError(
                "PADDOCK_PUBLIC_URL is set but PADDOCK_HTTP_PORT is not: "
                "nothing would receive HiAPI's callbacks"
            )
        if hiapi_keyed and not secret:
            raise SettingsError(
                "PADDOCK_PUBLIC_URL is set, so HiAPI will send callbacks: "
                "set HIAPI_WEBHOOK_SECRET to the secret HiAPI signs them with"
            )
    return {
        "http_port": port,
        "http_host": env.get("PADDOCK_HTTP_HOST", "").strip() or "127.0.0.1",
        "public_url": public_url,
        "hiapi_webhook_secret": Secret(secret) if secret else None,
    }


def _log_level(env: Mapping[str, str]) -> str:
    """``PADDOCK_LOG_LEVEL``: DEBUG, INFO (the default), WARNING or ERROR."""
    level = env.get("PADDOCK_LOG_LEVEL", "").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise SettingsError(f"PADDOCK_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                            f"not {level!r}")
    return level


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
    before the bot and handed in; cogs reach them as ``bot.services``.
    """

    def __init__(self, settings: Settings, services: Services) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=discord.Intents.default(),
            tree_cls=PaddockTree,
            guild_ready_timeout=settings.guild_ready_timeout,
            # discord.py's default pool is unbounded, so a burst of commands opens a new
            # (TLS) connection per answer; a bounded pool reuses warm ones. Video uploads
            # are capped well below it (cogs/_delivery.py), so answers always get one.
            connector=aiohttp.TCPConnector(limit=DISCORD_CONNECTIONS),
            # No message cache: nothing reads it, and every edit of a job card comes back
            # as a MESSAGE_UPDATE that discord.py would look up in it, one by one.
            max_messages=None,
        )
        self.settings = settings
        self.services = services
        from cogs._delivery import DiscordDelivery

        self.delivery = DiscordDelivery(self)
        self.router = Router(services.hh, Health(), settings.routable_providers)
        self.runner = Runner(services.jobs, services.hh, self.delivery, settings.runner,
                             callback_url=settings.hiapi_callback_url,
                             history=RenderHistory(services.store),
                             member_slots=services.ledger.member_slots, router=self.router,
                             refused_keys=RefusedKeys(services.store))
        self.metrics = PaddockMetrics(services.store, self.runner)
        services.hh.on_call = self.metrics.record_call
        self.loop_lag = LoopLagMonitor(self.metrics.registry)
        self.side_door: SideDoor | None = None

    async def setup_hook(self) -> None:
        for path in sorted(COGS_DIR.glob("*.py")):
            if not path.name.startswith("_"):
                await self.load_extension(f"cogs.{path.stem}")
        self.loop_lag.start()
        await self.sync_commands()
        await self.runner.start()
        if self.settings.http_port is not None:
            health = HealthCheck(gateway_connected=self.gateway_connected,
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
                raise SettingsError(
                    f"the side door cannot listen on {self.settings.http_host}:"
                    f"{self.settings.http_port} ({why}); check "
                    f"PADDOCK_HTTP_HOST and PADDOCK_HTTP_PORT"
                ) from None

    async def close(self) -> None:
        """Close the side door, stop taking jobs, let the runner put its work down (it is
        all in the database), then disconnect."""
        if self.side_door is not None:
            await self.side_door.stop()
        await self.runner.stop()
        await self.loop_lag.stop()
        await super().close()

    def gateway_connected(self) -> bool:
        """Whether the session with Discord's gateway is up (for ``/healthz``)."""
        return (self.is_ready() and not self.is_closed() and self.ws is not None
                and self.ws.open)

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
        log.info("ready as %s in %d server(s)", self.user, len(self.guilds))


async def run(settings: Settings) -> None:
    route_discord(settings)
    async with (
        Services.open(settings.database_path, settings.providers, prices=settings.prices,
                      demo=settings.demo) as services,
        Paddock(settings, services) as bot,
    ):
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
    findings = asyncio.run(preflight(env, parse=Settings.from_env, packages=packages))
    for finding in findings:
        print(finding.line())
    print(summary(findings))
    return 1 if any(finding.problem for finding in findings) else 0


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
    try:
        settings = Settings.from_env(os.environ)
        asyncio.run(run(settings))
    except SettingsError as error:
        sys.exit(f"paddock: {error}")
    except discord.LoginFailure:
        sys.exit("paddock: Discord rejected DISCORD_TOKEN (401 Unauthorized); check the token")
    except discord.PrivilegedIntentsRequired as error:
        sys.exit(f"paddock: enable the privileged intents in the Developer Portal ({error})")
    except KeyboardInterrupt:
        log.info("stopped")


if __name__ == "__main__":
    main()
