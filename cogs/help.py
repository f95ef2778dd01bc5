"""/help: how to use Paddock, answered privately."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs import _limits
from hh_api import DEMO_PROVIDER

if TYPE_CHECKING:
    from bot import Paddock

HELP_COLOUR = discord.Colour(0x8B5A2B)


def help_embed(demo_rates: tuple[str, str] | None = None) -> discord.Embed:
    """The guide members see; it names the commands as members type them. With
    `demo_rates` (credits per second at 720p and 1080p) it explains the demo provider."""
    embed = discord.Embed(
        title="How to use Paddock",
        description=(
            "Paddock turns a prompt into a short HappyHorse video and posts it here. "
            "Each video costs credits; you see the cost and your balance before it starts."
        ),
        colour=HELP_COLOUR,
    )
    embed.add_field(
        name="Make a video",
        value=(
            "`/video text` from a prompt\n"
            "`/video image` from one picture and a prompt\n"
            "`/video reference` from up to nine pictures; name them in the prompt as "
            "[Image 1], [Image 2], ...\n"
            "Right-click a message with a picture > Apps > **Animate with HappyHorse** "
            "or **Use as reference**"
        ),
        inline=False,
    )
    embed.add_field(
        name="Credits and jobs",
        value="`/credits balance`, `/credits history`, `/jobs list`, `/jobs cancel`",
        inline=False,
    )
    embed.add_field(
        name="On a finished video",
        value=("**Re-roll** for a new seed, **Remix** to change the prompt, **Delete** "
               "removes it, **Extend** continues it from its last frame."),
        inline=False,
    )
    if demo_rates is not None:
        embed.add_field(
            name="Demo provider",
            value=(
                "This bot can use the free demo provider: every video is the same short "
                "sample clip, but it queues, renders and charges like a real provider, at "
                f"the real price ({demo_rates[0]} credits/s at 720p, {demo_rates[1]} at "
                "1080p: the highest known rate). Put `#fail` in a prompt to see a failed "
                "job return its credits."
            ),
            inline=False,
        )
    embed.set_footer(text="Only you can see this message.")
    return embed


class Help(commands.Cog):
    def __init__(self, bot: Paddock) -> None:
        self.bot = bot

    @app_commands.command(name="help")
    async def help(self, interaction: discord.Interaction[Paddock]) -> None:
        """How to make videos with Paddock."""
        demo_rates = None
        if DEMO_PROVIDER in self.bot.settings.usable_providers:
            prices = self.bot.services.hh.prices
            demo_rates = (f"{prices.rate(DEMO_PROVIDER, '720p'):g}",
                          f"{prices.rate(DEMO_PROVIDER, '1080p'):g}")
        await interaction.response.send_message(embed=_limits.checked(help_embed(demo_rates)),
                                                ephemeral=True)


async def setup(bot: Paddock) -> None:
    await bot.add_cog(Help(bot))
