"""The floor for ``bench/ack.py --bare``: discord.py alone, answering at once.

A bot with the same client settings as ``bot.py`` (intents, the bounded connection pool,
the routing to the fake) and the commands the benchmark sends, with the same options;
each command only sends its first response (a public embed for ``/video text``, an
ephemeral answer for the rest) and does nothing else: no database, no provider.
Run by ``bench/ack.py``, not by hand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Literal

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot import DISCORD_CONNECTIONS, INTENTS, Settings, route_discord  # noqa: E402

log = logging.getLogger("bare")


class Bare(commands.Bot):
    """A bot that answers every benched command at once and does nothing else."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned, help_command=None,
            intents=INTENTS, guild_ready_timeout=settings.guild_ready_timeout,
            connector=aiohttp.TCPConnector(limit=DISCORD_CONNECTIONS),
        )
        self.settings = settings
        video = app_commands.Group(name="video", description="Make a short video",
                                   guild_only=True)
        credits = app_commands.Group(name="credits", description="Your credits",
                                     guild_only=True)
        jobs = app_commands.Group(name="jobs", description="Your jobs", guild_only=True)
        quota = app_commands.Group(name="quota", description="Moderators", guild_only=True)

        @video.command(name="text")
        async def text(
            interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 2500],
            resolution: Literal["720p", "1080p"] | None = None,
            aspect_ratio: str | None = None, duration: app_commands.Range[int, 3, 15] = 5,
            seed: int | None = None, negative_prompt: str | None = None,
            provider: str | None = None,
        ) -> None:
            """Make a video from a prompt."""
            embed = discord.Embed(title="Queued", description=prompt)
            await interaction.response.send_message(embed=embed)

        @credits.command(name="balance")
        async def balance(
            interaction: discord.Interaction, member: discord.Member | None = None
        ) -> None:
            """Show your credits."""
            await interaction.response.send_message(embed=discord.Embed(title="Your credits"),
                                                    ephemeral=True)

        @jobs.command(name="list")
        async def list_jobs(interaction: discord.Interaction) -> None:
            """Your latest jobs."""
            await interaction.response.send_message("You have no jobs yet.", ephemeral=True)

        @quota.command(name="allowance")
        async def allowance(
            interaction: discord.Interaction, amount: int,
            period: Literal["daily", "weekly", "monthly", "none"],
        ) -> None:
            """Set the allowance."""
            await interaction.response.send_message("Done.", ephemeral=True)

        @quota.command(name="limits")
        async def limits(
            interaction: discord.Interaction, member_jobs: int | None = None,
            server_jobs: int | None = None,
        ) -> None:
            """Set the limits."""
            await interaction.response.send_message("Done.", ephemeral=True)

        for group in (video, credits, jobs, quota):
            self.tree.add_command(group)

    async def setup_hook(self) -> None:
        if self.settings.dev_guild_id is None:
            await self.tree.sync()
            return
        guild = discord.Object(id=self.settings.dev_guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)


async def run(settings: Settings) -> None:
    route_discord(settings)
    async with Bare(settings) as bot:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
        await bot.start(settings.discord_token)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(run(Settings.from_env(os.environ)))
