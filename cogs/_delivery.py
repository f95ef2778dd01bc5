"""Posting jobs' progress and results to Discord: the bot's side of the runner."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import discord

from cogs import _limits
from cogs._render import COLOUR, closed_embed, failed_embed, finished_embed, progress_embed
from hh_api import DownloadError, Mode, NotAVideoError, VideoTooLargeError
from paddock.delivery import FitKind, FitResult, NotAVideo
from paddock.delivery.workers import EncodeFailed
from paddock.extensions import Extension
from paddock.followups import offering
from paddock.jobs import Job, JobState
from paddock.runner import DeliveryError, Progress, VideoUnusable, job_fields

if TYPE_CHECKING:
    from bot import Paddock

log = logging.getLogger(__name__)

TOKEN_MARGIN = timedelta(seconds=30)  # don't start a followup on a token about to die
# A post made before a crash is searched for among the messages after the job finished
# (less this margin for our clock against Discord's), oldest first: one page of Discord's.
HISTORY_SCAN = 100
POST_CLOCK_MARGIN = timedelta(minutes=2)
SHEET_PICTURE_MAX = 20 * 1024 * 1024  # the largest reference picture any provider takes
FIT_SOURCE_MAX = 512 * 1024 * 1024  # the largest video downloaded to re-encode
# Downloads + uploads of finished videos; well under the bot's pool. The job card's
# closing edit waits outside (one channel's edits go one at a time).
DELIVERIES_AT_ONCE = 16


class DiscordDelivery:
    """Edits job messages and posts finished videos; implements `paddock.runner.Delivery`."""

    def __init__(self, bot: Paddock) -> None:
        self.bot = bot
        self.started_at = datetime.now(UTC)
        self.upload_limits: dict[int, int] = {}  # per server, from interactions
        self._deliveries = asyncio.Semaphore(DELIVERIES_AT_ONCE)

    def remember_upload_limit(self, guild_id: int, limit: int) -> None:
        self.upload_limits[guild_id] = limit

    def upload_limit(self, guild_id: int) -> int:
        if guild_id in self.upload_limits:
            return self.upload_limits[guild_id]
        guild = self.bot.get_guild(guild_id)
        return guild.filesize_limit if guild is not None else 10 * 1024 * 1024

    # -- the runner's calls ---------------------------------------------------------------

    async def progress(self, job: Job, progress: Progress) -> None:
        if job.channel_id is None or job.progress_message_id is None:
            return
        embed = progress_embed(job, progress, provider_title=self._title(job))
        await self._job_message(job).edit(embed=embed)

    async def deliver(
        self, job: Job, *, earlier: bool = False,
        posting: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if job.channel_id is None:
            raise DeliveryError("the job has no channel", retry=False)
        # A job finished before this process started may have been posted before a crash,
        # a job taken over from another process (`earlier`) by that process, and a post
        # whose answer was lost (a 5xx, a broken connection) may have landed.
        finished_earlier = job.finished_at is not None and job.finished_at < self.started_at
        if finished_earlier or earlier or job.delivery_attempts:
            posted = await self._already_posted(job)
            if posted is not None:
                log.info("%s result already posted (before a restart, or by an attempt "
                         "whose answer was lost)", job_fields(job))
                await self._close_job_message(job, self._closing_note(job, posted))
                return
        if job.state is JobState.SUCCEEDED:
            async with self._deliveries:
                posted = await self._deliver_video(job, posting)
            # Outside the slot: Discord takes one channel's edits one at a time, so the
            # cards of many videos finishing together would hold the slots and their posts.
            await self._close_job_message(job, self._closing_note(job, posted))
        else:
            posted = await self._post(job, posting, embed=failed_embed(
                job, provider_title=self._title(job)))
            await self._close_job_message(job, self._closing_note(job, posted))

    async def undelivered(self, job: Job, reason: str) -> None:
        """Nothing could be posted in the channel: tell the member privately (an ephemeral
        followup while the interaction's token lives, else a DM), with the video's link."""
        embed = self._undelivered_embed(job, reason)
        note = ("Not posted: " + reason + "."
                + (" Credits returned." if job.state is JobState.SUCCEEDED else ""))
        await self._close_job_message(job, note)
        if self._token_alive(job):
            assert job.interaction_token is not None and self.bot.application_id
            webhook = discord.Webhook.partial(self.bot.application_id, job.interaction_token,
                                              client=self.bot)
            webhook.type = discord.WebhookType.application  # the interaction's: may whisper
            try:
                await webhook.send(embed=embed, ephemeral=True)
                log.info("%s told privately (followup) that nothing was posted", job_fields(job))
                return
            except discord.HTTPException as error:
                log.info("%s followup refused (%s); trying a DM", job_fields(job), error.status)
        try:
            channel = await self.bot.create_dm(discord.Object(job.user_id))
            await channel.send(embed=embed)
        except discord.HTTPException as error:
            log.warning("%s could not DM the member either (%s %s)", job_fields(job),
                        error.status, error.code)
            return
        log.info("%s told by DM that nothing was posted", job_fields(job))

    async def cancelled(self, job: Job) -> None:
        """The member cancelled a queued job: say so on its message."""
        await self._close_job_message(
            job, f"Cancelled by <@{job.user_id}>; {job.estimated_credits} credits returned."
        )

    # -- posting ----------------------------------------------------------------------------

    async def _deliver_video(
        self, job: Job, posting: Callable[[], Awaitable[None]] | None
    ) -> discord.Message:
        """Fetch, fit and post the finished video; the post."""
        from cogs.video import result_view

        services = self.bot.services
        provider = services.hh.provider(job.provider or "")
        model = provider.capabilities(job.request["mode"]).model
        limit = self.upload_limit(job.guild_id)
        with tempfile.TemporaryDirectory(prefix="paddock-") as folder:
            path = Path(folder) / f"paddock-{job.id[:8]}.mp4"
            note = None
            try:
                assert job.result_url is not None
                await services.hh.download(job.result_url, path,
                                           max_bytes=max(limit, FIT_SOURCE_MAX),
                                           provider=job.provider)
            except VideoTooLargeError:
                note = self._link_note(job, limit)
                path = None
            except NotAVideoError as error:
                raise VideoUnusable(f"{provider.title} did not send a playable video "
                                    f"({error}).") from None
            except DownloadError as error:
                # The member reads the reason; the host and the OS error are for the log.
                log.warning("%s could not fetch the video: %s", job_fields(job), error.for_log())
                raise DeliveryError(f"could not fetch the video: {error}") from None
            extension = await services.extensions.get(job.id)
            chain = None
            if path is not None and extension is not None:
                path, chain = await self._join(job, extension, path)
            fit = None
            if path is not None:
                fit = await self._fit(job, path, limit)
                path = fit.path
                if path is None:
                    note = self._link_note(job, limit)
                elif fit.kind is FitKind.REENCODED:
                    note = (f"Re-encoded to fit this server's {limit / 1_048_576:.0f} MB "
                            f"upload limit. {self._full_quality(job)}")
            embed = finished_embed(job, provider_title=provider.title, model=model,
                                   link_note=note, chain=chain)
            sheet = await self._reference_sheet(job)
            if sheet is not None:
                embed.set_thumbnail(url="attachment://references.png")

            def files() -> list[discord.File]:
                # Fresh objects per attempt: discord.py closes a File once it was sent.
                made = []
                if path is not None:
                    made.append(discord.File(path, filename=path.name))
                if sheet is not None:
                    made.append(discord.File(io.BytesIO(sheet), filename="references.png"))
                return made

            link = job.result_url if note is not None else None
            # Extend continues the posted file: offered when there is one, and a provider.
            extend = path is not None and self._extendable()
            try:
                message = await self._post(job, posting, embed=embed, files=files,
                                           view=result_view(job, link=link, extend=extend))
            except _TooLarge:
                if path is None:
                    raise DeliveryError("Discord refused even the message without the video",
                                        retry=False) from None
                # Discord refused the size: post the link instead.
                path = None
                embed = finished_embed(job, provider_title=provider.title, model=model,
                                       link_note=self._link_note(job, limit), chain=chain)
                if sheet is not None:
                    embed.set_thumbnail(url="attachment://references.png")
                message = await self._post(job, posting, embed=embed, files=files,
                                           view=result_view(job, link=job.result_url))
        return message

    async def _join(self, job: Job, extension: Extension, path: Path) -> tuple[Path, str | None]:
        """The continuation at `path` joined after the clip it continues; with the chain's
        words ("3 parts · 14.9 s"). The continuation alone (and None) when the clip it
        continues is gone or unreadable: the member still gets what they paid for."""
        from cogs.video import refresh_attachment_links

        services = self.bot.services
        source = path.parent / "continued.mp4"
        try:
            [url] = await refresh_attachment_links(self.bot, [extension.source_url])
            await services.hh.download(url, source, max_bytes=FIT_SOURCE_MAX)
            joined = await services.media.join(source, path, path.parent / "joined" / path.name,
                                               label=job_fields(job))
        except (discord.HTTPException, DownloadError, NotAVideoError, NotAVideo,
                EncodeFailed) as error:
            log.warning("%s could not join the continuation to the clip it continues "
                        "(job %s): %s", job_fields(job), extension.parent_job_id, error)
            return path, None
        return joined.path, f"{extension.parts} parts · {joined.duration:.1f} s in all"

    def _extendable(self) -> bool:
        """Whether a provider this bot can use makes image-to-video (what Extend sends)."""
        hh = self.bot.services.hh
        return bool(offering(hh, self.bot.settings.usable_providers, Mode.IMAGE))

    async def _fit(self, job: Job, path: Path, limit: int) -> FitResult:
        """`path` itself when it fits `limit`, else a re-encode that does, else TOO_LARGE
        (no decent encode fits: post the link)."""
        fitted = path.parent / "fitted" / path.name  # posted under the same name
        try:
            return await self.bot.services.media.fit(path, limit, fitted,
                                                     label=job_fields(job))
        except (NotAVideo, EncodeFailed) as error:
            log.warning("%s could not fit the video to the upload limit: %s",
                        job_fields(job), error)
            return FitResult(FitKind.TOO_LARGE, None, limit, reason=str(error))

    async def _post(
        self,
        job: Job,
        posting: Callable[[], Awaitable[None]] | None,
        *,
        embed: discord.Embed,
        files: Callable[[], list[discord.File]] = list,
        view: discord.ui.View | None = None,
    ) -> discord.Message:
        """Answer on the interaction while its token lives, else reply in the channel;
        ``posting()`` (the runner's lease check) right before each try."""
        extra = {"view": view} if view is not None else {}
        mention = f"<@{job.user_id}>"
        try:
            _limits.check_message(mention, embeds=[embed], view=view)
        except _limits.MessageTooLarge as error:  # a bug of ours: say so, never loop on it
            log.error("%s built a message Discord would refuse: %s", job_fields(job), error)
            raise DeliveryError("the message was too large for Discord", retry=False) from None
        allowed = discord.AllowedMentions(users=[discord.Object(job.user_id)], roles=False,
                                          everyone=False)
        try:
            if self._token_alive(job):
                assert job.interaction_token is not None and self.bot.application_id
                webhook = discord.Webhook.partial(
                    self.bot.application_id, job.interaction_token, client=self.bot
                )
                if posting is not None:
                    await posting()
                return await webhook.send(mention, allowed_mentions=allowed, wait=True,
                                          embed=embed, files=files(), **extra)
        except _UNREACHABLE as error:
            raise _unreachable(error) from None
        except discord.HTTPException as error:
            if error.status == 413:
                raise _TooLarge() from None
            if not _lasting(error):  # a 5xx or 429: the post may yet work
                raise self._delivery_error(error) from None
            # An expired token, or the followup refused for good: the channel may still work.
            log.info("%s followup refused (%s %s); replying in the channel", job_fields(job),
                     error.status, error.code)
        channel = self.bot.get_partial_messageable(job.channel_id or 0, guild_id=job.guild_id)
        reference = None
        if job.progress_message_id is not None:
            reference = discord.MessageReference(
                message_id=job.progress_message_id, channel_id=job.channel_id,
                fail_if_not_exists=False,
            )
        if posting is not None:
            await posting()
        try:
            return await channel.send(mention, allowed_mentions=allowed, reference=reference,
                                      embed=embed, files=files(), **extra)
        except _UNREACHABLE as error:
            raise _unreachable(error) from None
        except discord.HTTPException as error:
            if error.status == 413:
                raise _TooLarge() from None
            raise self._delivery_error(error) from None

    @staticmethod
    def _token_alive(job: Job) -> bool:
        return (
            job.interaction_token is not None and job.token_expires_at is not None
            and datetime.now(UTC) + TOKEN_MARGIN < job.token_expires_at
        )

    async def _close_job_message(self, job: Job, note: str) -> None:
        if job.progress_message_id is None:
            return
        with contextlib.suppress(discord.HTTPException):
            await self._job_message(job).edit(embed=closed_embed(job, note), view=None)

    @staticmethod
    def _closing_note(job: Job, posted: discord.Message) -> str:
        """What the job card says once its result is posted (as `posted`)."""
        if job.state is not JobState.SUCCEEDED:
            return "Failed: see the reply below. Credits returned."
        # Built by hand: a message returned by the webhook knows no guild (jump_url says @me).
        return f"Done: https://discord.com/channels/{job.guild_id}/{posted.channel.id}/{posted.id}"

    async def _already_posted(self, job: Job) -> discord.Message | None:
        """This job's result message, if an earlier attempt posted it."""
        channel = self.bot.get_partial_messageable(job.channel_id or 0, guild_id=job.guild_id)
        marker = f"Job {job.id}"
        try:
            async for message in channel.history(limit=HISTORY_SCAN,
                                                 after=self._posted_after(job)):
                mine = self.bot.user is not None and message.author.id == self.bot.user.id
                if not mine or message.id == job.progress_message_id:
                    continue
                if any((e.footer.text or "").startswith(marker) for e in message.embeds):
                    return message
        except discord.HTTPException:
            log.warning("%s could not read the channel to check for a post", job_fields(job))
        return None

    @staticmethod
    def _posted_after(job: Job) -> discord.Object | None:
        """Where in its channel a job's result can first be: after its job card, and after
        the job finished. None (the latest messages) when neither is known."""
        floors = [job.progress_message_id or 0]
        if job.finished_at is not None:
            floors.append(discord.utils.time_snowflake(job.finished_at - POST_CLOCK_MARGIN))
        return discord.Object(max(floors)) if max(floors) else None

    async def _reference_sheet(self, job: Job) -> bytes | None:
        """A thumbnail sheet of the reference pictures, or None."""
        from paddock.sheet import contact_sheet

        images = job.request.get("images") or []
        if job.request.get("mode") != "reference" or not images:
            return None
        pictures = []
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for url in images:
                try:
                    async with session.get(url) as response:
                        response.raise_for_status()
                        pictures.append(await response.content.read(SHEET_PICTURE_MAX))
                except (aiohttp.ClientError, TimeoutError) as error:
                    log.info("%s reference picture unavailable for the sheet: %s",
                             job_fields(job), error)
        sheet = await self.bot.services.media.in_thread(contact_sheet, pictures)
        return sheet.getvalue() if sheet is not None else None

    # -- helpers --------------------------------------------------------------------------

    def _job_message(self, job: Job) -> discord.PartialMessage:
        channel = self.bot.get_partial_messageable(job.channel_id or 0, guild_id=job.guild_id)
        return channel.get_partial_message(job.progress_message_id or 0)

    def _title(self, job: Job) -> str:
        return self.bot.services.hh.provider(job.provider or "").title

    def _link_note(self, job: Job, limit: int) -> str:
        why = f"Larger than this channel's {limit / 1_048_576:.0f} MB upload limit."
        return f"{why} {self._full_quality(job)}"

    def _full_quality(self, job: Job) -> str:
        """The provider's own link to the video, and until when it works."""
        expires = self._link_expires(job)
        until = f" until <t:{int(expires.timestamp())}:f>" if expires is not None else ""
        return f"Full quality from the provider{until}: [download the video]({job.result_url})"

    def _link_expires(self, job: Job) -> datetime | None:
        lifetime = None
        with contextlib.suppress(Exception):
            lifetime = self.bot.services.hh.provider(job.provider or "").output_lifetime
        if lifetime is None or job.finished_at is None:
            return None
        return job.finished_at + lifetime

    def _undelivered_embed(self, job: Job, reason: str) -> discord.Embed:
        """What the member reads privately when the channel took nothing."""
        where = f"<#{job.channel_id}>"
        if job.state is JobState.SUCCEEDED:
            text = (f"Your video is ready, but it could not be posted in {where}: {reason}. "
                    f"Your {job.charged_credits or 0} credits were returned.\n\n"
                    f"{self._full_quality(job)}")
            title, colour = "Your video could not be posted", COLOUR["failed"]
        else:
            text = (f"Your video failed, and the message saying so could not be posted in "
                    f"{where}: {reason}.\n\n{_limits.clip(job.error or '', 1000)}\n\n"
                    "Your credits were returned.")
            title, colour = "Your video failed", COLOUR["failed"]
        embed = discord.Embed(title=title, description=_limits.clip(text, 4000), colour=colour)
        embed.set_footer(text=f"Job {job.id}")
        return _limits.checked(embed)

    @staticmethod
    def _delivery_error(error: discord.HTTPException) -> DeliveryError:
        """A refused post in words for the member; 4xx other than 429 is never retried."""
        if error.status == 404 or error.code == 10003:
            why = "the channel no longer exists"
        elif error.status == 403 or error.code in (50001, 50013):
            why = "the bot is not allowed to post there any more"
        else:
            why = f"Discord refused the post (HTTP {error.status}, code {error.code})"
        return DeliveryError(why, retry=not _lasting(error))


class _TooLarge(DeliveryError):
    """Discord answered 413: the file is over the channel's upload limit (the video's
    post retries with the link; anywhere else it ends delivery like any lasting refusal)."""

    def __init__(self) -> None:
        super().__init__("the file is over this channel's upload limit", retry=False)


def _lasting(error: discord.HTTPException) -> bool:
    """A refusal that trying again cannot change: any 4xx but 429."""
    return 400 <= error.status < 500 and error.status != 429


# The connection to Discord failed mid-request: nothing says the post was refused.
_UNREACHABLE = (aiohttp.ClientError, TimeoutError, OSError)


def _unreachable(error: BaseException) -> DeliveryError:
    log.warning("Discord could not be reached while posting: %r", error)
    return DeliveryError("Discord could not be reached", retry=True)
