"""Follow-ups from the chat: Animate with HappyHorse and Use as reference (a message's
Apps menu), and Extend on a finished video."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

import discord
from discord import app_commands
from discord.ext import commands

from cogs.video import VideoCog, _refuse
from hh_api import Mode
from paddock.followups import provider_for

if TYPE_CHECKING:
    from bot import Paddock

log = logging.getLogger(__name__)

REFERENCE_PICTURES_MAX = 9  # what /video reference takes
DURATION_WORDS = "3-15 seconds; blank for the provider's default"


def _pictures_of(message: discord.Message) -> list[discord.Attachment]:
    """The message's attachments that are pictures, in the order they were posted."""
    return [a for a in message.attachments
            if (a.content_type or "").startswith("image/") or a.width is not None]


def parse_duration(text: str) -> int | None:
    """The modal's duration field: None (blank), else whole seconds 3-15; ValueError."""
    text = text.strip().removesuffix("s").strip()
    if not text:
        return None
    seconds = int(text)  # ValueError for words
    if not 3 <= seconds <= 15:
        raise ValueError(seconds)
    return seconds


class PictureModal(discord.ui.Modal):
    """Prompt and duration for a video made from the pictures of a message."""

    prompt: discord.ui.TextInput = discord.ui.TextInput(
        label="Prompt", style=discord.TextStyle.paragraph, max_length=2500,
        placeholder="What happens in the video: action, camera, light, mood")
    duration: discord.ui.TextInput = discord.ui.TextInput(
        label="Duration (seconds)", required=False, max_length=3, placeholder=DURATION_WORDS)

    def __init__(self, cog: VideoCog, mode: Mode, pictures: list[discord.Attachment]) -> None:
        title = "Animate with HappyHorse" if mode is Mode.IMAGE else "Use as reference"
        super().__init__(title=title)
        self.cog = cog
        self.mode = mode
        self.pictures = pictures

    async def on_submit(self, interaction: discord.Interaction[Paddock]) -> None:
        try:
            duration = parse_duration(self.duration.value)
        except ValueError:
            await _refuse(interaction, "The duration is a whole number of seconds from 3 to "
                                       "15 (or blank for the provider's default).")
            return
        bot = self.cog.bot
        provider = provider_for(bot.services.hh, bot.settings.usable_providers, self.mode,
                                bot.settings.default_provider, duration=duration)
        if provider is None:
            await _refuse(interaction, "No provider this bot can use makes this kind of "
                                       "video. Ask the bot's owner to add a provider key.")
            return
        attached = [(f"image{n}" if self.mode is Mode.REFERENCE else "image", picture)
                    for n, picture in enumerate(self.pictures, start=1)]
        await self.cog.order(interaction, self.mode, self.prompt.value, attached,
                             provider=provider, duration=duration)


class FollowupsCog(commands.Cog, name="Follow-ups"):
    """Videos made from what is already in the chat."""

    def __init__(self, bot: Paddock) -> None:
        self.bot = bot
        self.menus = [
            app_commands.ContextMenu(name="Animate with HappyHorse", callback=self.animate),
            app_commands.ContextMenu(name="Use as reference", callback=self.use_as_reference),
        ]
        for menu in self.menus:
            menu.guild_only = True

    async def cog_load(self) -> None:
        for menu in self.menus:
            self.bot.tree.add_command(menu)

    async def cog_unload(self) -> None:
        for menu in self.menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)

    async def animate(self, interaction: discord.Interaction[Paddock],
                      message: discord.Message) -> None:
        """Make a video that starts from this message's picture."""
        pictures = _pictures_of(message)
        if not pictures:
            await _refuse(interaction, "That message has no picture to animate. Use it on a "
                                       "message with an image attached.")
            return
        await interaction.response.send_modal(
            PictureModal(self._video(), Mode.IMAGE, pictures[:1]))

    async def use_as_reference(self, interaction: discord.Interaction[Paddock],
                               message: discord.Message) -> None:
        """Make a video that keeps the character or style of this message's pictures."""
        pictures = _pictures_of(message)
        if not pictures:
            await _refuse(interaction, "That message has no picture to use as a reference. "
                                       "Use it on a message with images attached.")
            return
        await interaction.response.send_modal(
            PictureModal(self._video(), Mode.REFERENCE, pictures[:REFERENCE_PICTURES_MAX]))

    def _video(self) -> VideoCog:
        # Not isinstance: loading the extension runs cogs/video.py again, as a new module.
        cog = self.bot.get_cog("Video")
        assert cog is not None
        return cast(VideoCog, cog)


async def setup(bot: Paddock) -> None:
    await bot.add_cog(FollowupsCog(bot))
