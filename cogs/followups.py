"""Follow-ups from the chat: Animate with HappyHorse and Use as reference (a message's
Apps menu), and the Extend button on a finished video."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, cast

import discord
from discord import app_commands
from discord.ext import commands

from cogs.video import VideoCog, _refuse
from hh_api import DownloadError, Mode, NotAVideoError, VideoRequest
from paddock.delivery import NotAVideo
from paddock.errors import JobNotFound, PaddockError
from paddock.extensions import Extension
from paddock.followups import provider_for
from paddock.jobs import Job
from paddock.orders import Picture
from paddock.runner import job_fields

if TYPE_CHECKING:
    from bot import Paddock

log = logging.getLogger(__name__)

REFERENCE_PICTURES_MAX = 9  # what /video reference takes
DURATION_WORDS = "3-15 seconds; blank for the provider's default"
EXTEND_ID = r"paddock:extend:(?P<job>[0-9a-f]{32})"
POSTED_VIDEO_MAX = 512 * 1024 * 1024  # the largest posted video read for its last frame


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
                                bot.settings.default_provider)
        if provider is None:
            await _refuse(interaction, "No provider this bot can use makes this kind of "
                                       "video. Ask the bot's owner to add a provider key.")
            return
        attached = [(f"image{n}" if self.mode is Mode.REFERENCE else "image", picture)
                    for n, picture in enumerate(self.pictures, start=1)]
        await self.cog.order(interaction, self.mode, self.prompt.value, attached,
                             provider=provider, duration=duration)


class ExtendButton(discord.ui.DynamicItem[discord.ui.Button], template=EXTEND_ID):
    """Extend under a finished video (shown by `cogs.video.result_view`); the job id is
    in the custom_id, so it answers after a restart too."""

    def __init__(self, job_id: str) -> None:
        super().__init__(discord.ui.Button(label="Extend", emoji="⏩",
                                           custom_id=f"paddock:extend:{job_id}"))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Paddock], item: discord.ui.Button, match,
    ) -> ExtendButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction[Paddock]) -> None:
        bot = interaction.client
        try:
            job = await bot.services.jobs.get(self.job_id)
        except PaddockError:
            await _refuse(interaction, "That job is no longer known to the bot.")
            return
        video = _posted_video(interaction.message)
        if video is None:
            await _refuse(interaction, "This video was posted as a link, not a file, so the "
                                       "bot can't take its last frame. Extend works on "
                                       "videos posted in the channel.")
            return
        provider = provider_for(bot.services.hh, bot.settings.usable_providers, Mode.IMAGE,
                                job.provider)
        if provider is None:
            await _refuse(interaction, "No provider this bot can use makes a video from a "
                                       "picture any more, so videos can't be extended.")
            return
        earlier = await bot.services.extensions.get(job.id)
        parts = (earlier.parts if earlier is not None else 1) + 1
        cog = bot.get_cog("Video")
        assert cog is not None
        await interaction.response.send_modal(
            ExtendModal(cast(VideoCog, cog), job, video.url, provider, parts))


class ExtendModal(discord.ui.Modal, title="Extend this video"):
    """The continuation's prompt (the original's to start with) and its duration."""

    prompt: discord.ui.TextInput = discord.ui.TextInput(
        label="What happens next", style=discord.TextStyle.paragraph, max_length=2500)
    duration: discord.ui.TextInput = discord.ui.TextInput(
        label="Duration of the continuation (seconds)", required=False, max_length=3,
        placeholder="3-15 seconds")

    def __init__(self, cog: VideoCog, job: Job, video_url: str, provider: str,
                 parts: int) -> None:
        super().__init__(custom_id=f"paddock:extend-form:{job.id}")
        self.cog = cog
        self.job = job
        self.video_url = video_url
        self.provider = provider
        self.parts = parts
        self.request = VideoRequest.from_dict(job.request)
        self.prompt.default = self.request.prompt[:2500]
        self.duration.default = str(self.request.duration or "")

    async def on_submit(self, interaction: discord.Interaction[Paddock]) -> None:
        try:
            duration = parse_duration(self.duration.value)
        except ValueError:
            await _refuse(interaction, "The duration is a whole number of seconds from 3 "
                                       "to 15.")
            return
        # Fetching the video and posting its last frame may take longer than Discord
        # waits for an answer: a private word first; the job card follows in public, a
        # refusal in private.
        await interaction.response.send_message("Taking the video's last frame…",
                                                ephemeral=True)
        frame = await self._post_last_frame(interaction)
        if frame is None:
            return
        message, picture = frame
        bot = self.cog.bot
        job_id = uuid.uuid4().hex
        # Kept before the job exists: after a restart, the job (if any) still knows its
        # frame and what it continues, and nothing is made twice.
        await bot.services.extensions.record(Extension(
            job_id=job_id, parent_job_id=self.job.id, source_url=self.video_url,
            frame_url=picture.url, parts=self.parts))
        await self.cog.start_job(interaction, Mode.IMAGE, self.prompt.value, [picture],
                                 provider=self.provider, job_id=job_id,
                                 resolution=self.request.resolution, duration=duration)
        try:
            await bot.services.jobs.get(job_id)
        except JobNotFound:  # refused (credits, limits): the frame has no use
            with contextlib.suppress(discord.HTTPException):
                await message.delete()

    async def _post_last_frame(
        self, interaction: discord.Interaction[Paddock]
    ) -> tuple[discord.Message, Picture] | None:
        """The posted video's last frame, posted under it: a public Discord link a
        provider can fetch. None (and the member told) when that fails."""
        bot = self.cog.bot
        services = bot.services
        try:
            with tempfile.TemporaryDirectory(prefix="paddock-extend-") as folder:
                path = Path(folder) / "video.mp4"
                await services.hh.download(self.video_url, path, max_bytes=POSTED_VIDEO_MAX)
                png = await services.media.last_frame(path)
        except (DownloadError, NotAVideoError, NotAVideo) as error:
            log.warning("%s could not take the last frame of its video: %s",
                        job_fields(self.job), error)
            await _refuse(interaction, "The bot could not read that video to take its last "
                                       "frame. Nothing was charged.")
            return None
        assert interaction.message is not None
        try:
            message = await interaction.message.reply(
                "Last frame of this video: the continuation starts from it.",
                file=discord.File(io.BytesIO(png), filename="last-frame.png"),
                mention_author=False)
        except discord.HTTPException as error:
            log.warning("%s could not post its last frame (%s %s)", job_fields(self.job),
                        error.status, error.code)
            await _refuse(interaction, "Discord refused the bot's post of the video's last "
                                       "frame, so it can't be extended here. Nothing was "
                                       "charged.")
            return None
        [attached] = message.attachments
        return message, Picture(option="frame", filename=attached.filename, url=attached.url,
                                content_type=attached.content_type or "image/png",
                                size=attached.size, width=attached.width,
                                height=attached.height)


def _posted_video(message: discord.Message | None) -> discord.Attachment | None:
    """The video file attached to a finished job's post, if it was posted as a file."""
    if message is None:
        return None
    return next((a for a in message.attachments
                 if (a.content_type or "").startswith("video/")
                 or a.filename.endswith(".mp4")), None)


class FollowupsCog(commands.Cog, name="Follow-ups"):
    """Videos made from what is already in the chat."""

    def __init__(self, bot: Paddock) -> None:
        self.bot = bot
        in_servers = app_commands.AppCommandContext(guild=True)  # like /video
        self.menus = [
            app_commands.ContextMenu(name="Animate with HappyHorse", callback=self.animate,
                                     allowed_contexts=in_servers),
            app_commands.ContextMenu(name="Use as reference", callback=self.use_as_reference,
                                     allowed_contexts=in_servers),
        ]

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
    bot.add_dynamic_items(ExtendButton)
    await bot.add_cog(FollowupsCog(bot))
