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
    load_providers,
)
from paddock.preflight import preflight, summary
from paddock.runner import Runner, RunnerSettings
from paddock.services import Services
from paddock.store import DEFAULT_PATH

log = logging.getLogger("paddock")

COGS_DIR = Path(__file__).resolve().parent / "cogs"


class SettingsError(ValueError):
    """The environment cannot start the bot; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    """Everything the bot needs from its environment."""

    discord_token: str
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    dev_guild_id: int | None = None
    guild_ready_timeout: float = 2.0
    database_path: Path = DEFAULT_PATH
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    default_provider: str | None = None  # None: none (from_env turns the demo on instead)
    prices: PriceTable = field(default_factory=PriceTable)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)

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
        if default is not None and default not in (*providers, DEMO_PROVIDER):
            raise SettingsError(
                f"HH_PROVIDER must be one of {', '.join(providers)}, {DEMO_PROVIDER}; "
                f"not {default!r}"
            )
        if default not in (None, DEMO_PROVIDER, *keyed):
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
        )
        self.settings = settings
        self.services = services
        from cogs._delivery import DiscordDelivery

        self.delivery = DiscordDelivery(self)
        self.runner = Runner(services.jobs, services.hh, self.delivery, settings.runner)

    async def setup_hook(self) -> None:
        for path in sorted(COGS_DIR.glob("*.py")):
            if not path.name.startswith("_"):
                await self.load_extension(f"cogs.{path.stem}")
        await self.sync_commands()
        await self.runner.start()

    async def close(self) -> None:
        """Stop taking jobs, let the runner put its work down (it is all in the
        database), then disconnect."""
        await self.runner.stop()
        await super().close()

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
    discord.utils.setup_logging(level=logging.INFO)
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
