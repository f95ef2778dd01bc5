"""/video text, /video image, /video reference, and the buttons on a finished video."""

from __future__ import annotations

import logging
import random
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from cogs import _limits
from cogs._checks import acknowledge_privately, is_moderator
from cogs._render import progress_embed, reserving_embed
from hh_api import SEED_MAX, HappyHorseError, Mode, VideoRequest
from paddock.errors import InsufficientCredits, PaddockError
from paddock.jobs import Job
from paddock.orders import Order, OrderRefused, Picture, prepare
from paddock.routing import AUTO
from paddock.runner import Progress, job_fields

if TYPE_CHECKING:
    from bot import Paddock

log = logging.getLogger(__name__)

Resolution = Literal["720p", "1080p"]
Prompt = app_commands.Range[str, 1, 2500]
Duration = app_commands.Range[int, 3, 15]
Seed = app_commands.Range[int, 0, SEED_MAX]
TOKEN_LIFE = timedelta(minutes=15)
REFRESH_AT_ONCE = 50  # attachment links per refresh-urls request
DEFAULT_RESOLUTION = "720p"  # the cheaper one, whatever the provider's own default
# in interaction.extras while a public "thinking" answer is up: its message id (or None)
PLACEHOLDER = "paddock_placeholder"

DESCRIBE = dict(
    prompt="What the video shows: scene, action, camera, light, mood",
    resolution="720p (cheaper) or 1080p",
    aspect_ratio="Shape of the video; the list shows what the provider offers",
    duration="Length in seconds, 3-15 (cost grows with it)",
    seed="Same seed + same settings = a repeatable result",
    provider="Which provider renders it; auto: the cheapest one working now",
)


class VideoCog(commands.Cog, name="Video"):
    """Members make videos; a runner takes them to the provider and back."""

    video = app_commands.Group(name="video", description="Make a short video with HappyHorse",
                               guild_only=True)

    def __init__(self, bot: Paddock) -> None:
        self.bot = bot
        self.answering = bot.first_answers

    async def cog_load(self) -> None:
        self.rehearse_first_answer()

    def rehearse_first_answer(self) -> None:
        """Build a job card once per provider before any member asks: what a first call
        costs (compiling the Markdown escapes, the price table's lookups) is paid at
        start, not by the first member after it."""
        services = self.bot.services
        for name in self.bot.settings.usable_providers:
            if Mode.TEXT not in services.hh.provider(name).offers:
                continue
            try:
                order = prepare(services.hh, name, Mode.TEXT, "A *horse* in the [snow]",
                                resolution=DEFAULT_RESOLUTION)
            except OrderRefused as refusal:  # its defaults refused: members hear why
                log.debug("no rehearsal of a %s card: %s", name, refusal)
                continue
            reserving_embed(order.request, job_id=uuid.uuid4().hex, user_id=1,
                            held=order.credits, price=order.credits, routed=False,
                            provider_title=services.hh.provider(name).title).to_dict()

    # -- commands ---------------------------------------------------------------------------

    @video.command(name="text")
    @app_commands.describe(**DESCRIBE)
    async def text(
        self,
        interaction: discord.Interaction[Paddock],
        prompt: Prompt,
        resolution: Resolution | None = None,
        aspect_ratio: str | None = None,
        duration: Duration | None = None,
        seed: Seed | None = None,
        provider: str | None = None,
    ) -> None:
        """Make a video from a description."""
        await self.order(interaction, Mode.TEXT, prompt, [], provider=provider,
                         resolution=resolution, aspect_ratio=aspect_ratio, duration=duration,
                         seed=seed)

    @video.command(name="image")
    @app_commands.describe(image="The picture to animate (it becomes the first frame)",
                           **{k: v for k, v in DESCRIBE.items() if k != "aspect_ratio"})
    async def image(
        self,
        interaction: discord.Interaction[Paddock],
        prompt: Prompt,
        image: discord.Attachment,
        resolution: Resolution | None = None,
        duration: Duration | None = None,
        seed: Seed | None = None,
        provider: str | None = None,
    ) -> None:
        """Animate one picture."""
        await self.order(interaction, Mode.IMAGE, prompt, [("image", image)], provider=provider,
                         resolution=resolution, duration=duration, seed=seed)

    @video.command(name="reference")
    @app_commands.describe(
        image1="A picture of the character or style to keep; name it [Image 1] in the prompt",
        image2="Another reference picture ([Image 2])", image3="[Image 3]",
        image4="[Image 4]", image5="[Image 5]", image6="[Image 6]", image7="[Image 7]",
        image8="[Image 8]", image9="[Image 9]",
        negative_prompt="What to keep out of the video (PixelDojo only)",
        **DESCRIBE,
    )
    async def reference(
        self,
        interaction: discord.Interaction[Paddock],
        prompt: Prompt,
        image1: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        image7: discord.Attachment | None = None,
        image8: discord.Attachment | None = None,
        image9: discord.Attachment | None = None,
        resolution: Resolution | None = None,
        aspect_ratio: str | None = None,
        duration: Duration | None = None,
        seed: Seed | None = None,
        negative_prompt: app_commands.Range[str, 1, 1000] | None = None,
        provider: str | None = None,
    ) -> None:
        """Make a video that keeps the character or style of 1-9 pictures."""
        given = [image1, image2, image3, image4, image5, image6, image7, image8, image9]
        attached = [(f"image{n}", a) for n, a in enumerate(given, start=1) if a is not None]
        if len(attached) != max(n for n, a in enumerate(given, start=1) if a is not None):
            await _refuse(interaction, "Fill the picture options in order (image1, image2, …) "
                                       "so [Image N] in the prompt points at the right one.")
            return
        await self.order(interaction, Mode.REFERENCE, prompt, attached, provider=provider,
                         resolution=resolution, aspect_ratio=aspect_ratio, duration=duration,
                         seed=seed, negative_prompt=negative_prompt)

    @text.autocomplete("provider")
    @image.autocomplete("provider")
    @reference.autocomplete("provider")
    async def provider_choices(
        self, interaction: discord.Interaction[Paddock], current: str
    ) -> list[app_commands.Choice[str]]:
        hh = self.bot.services.hh
        settings = self.bot.settings
        mode = _mode_of(interaction)
        names = [
            name for name in settings.usable_providers
            if mode is None or mode in hh.provider(name).offers
        ]
        choices = [
            app_commands.Choice(name=f"{hh.provider(n).title}" + (
                " (default)" if n == settings.default_provider else ""), value=n)
            for n in names
            if current.lower() in n or current.lower() in hh.provider(n).title.lower()
        ]
        routable = [n for n in settings.routable_providers
                    if mode is None or mode in hh.provider(n).offers]
        if len(routable) >= 2 and current.lower() in AUTO:
            label = "Auto: the cheapest provider working now" + (
                " (default)" if settings.default_provider == AUTO else "")
            choices.insert(0, app_commands.Choice(name=label, value=AUTO))
        return choices[:25]

    @text.autocomplete("aspect_ratio")
    @reference.autocomplete("aspect_ratio")
    async def aspect_ratio_choices(
        self, interaction: discord.Interaction[Paddock], current: str
    ) -> list[app_commands.Choice[str]]:
        provider = interaction.namespace.provider or self.bot.settings.default_provider
        mode = _mode_of(interaction)
        if provider is None or mode is None:
            return []
        names = self.bot.settings.routable_providers if provider == AUTO else [provider]
        ratios: list[str] = []  # auto: what any provider offers (auto picks one that can)
        for name in names:
            try:
                offer = self.bot.services.hh.capabilities(name, mode)
            except HappyHorseError:  # an unknown provider typed in, or a mode it lacks
                continue
            ratios += [r for r in offer.aspect_ratios or () if r not in ratios]
        return [app_commands.Choice(name=r, value=r) for r in ratios
                if r.startswith(current.strip())][:25]

    # -- the one path every new job takes -------------------------------------------------

    async def order(
        self,
        interaction: discord.Interaction[Paddock],
        mode: Mode,
        prompt: str,
        attachments: list[tuple[str, discord.Attachment]],
        *,
        provider: str | None,
        **options: object,
    ) -> None:
        pictures = [
            Picture(option=name, filename=a.filename, url=a.url, content_type=a.content_type,
                    size=a.size, width=a.width, height=a.height)
            for name, a in attachments
        ]
        await self.start_job(interaction, mode, prompt, pictures, provider=provider, **options)

    async def start_job(
        self,
        interaction: discord.Interaction[Paddock],
        mode: Mode,
        prompt: str,
        pictures: list[Picture],
        *,
        provider: str | None,
        job_id: str | None = None,
        **options: object,
    ) -> None:
        """Check what memory can, answer at once with the job card (built from memory),
        reserve, fill the card in, hand the job to the runner; or refuse ephemerally
        (removing the public card or placeholder if one was shown). `job_id`: the new
        job's id when it was chosen before (Extend records it first)."""
        with self.answering.opened():
            ready = await self._answer_first(interaction, mode, prompt, pictures,
                                             provider=provider, job_id=job_id, **options)
        if ready is None:
            return
        order, route, job_id = ready
        # In a burst, the members still waiting for a first answer go before this
        # reservation (a write) and the card's edit: their answers are due within 3 s.
        await self.answering.drained()
        await self._reserve(interaction, mode, order, route, job_id)

    async def _answer_first(
        self,
        interaction: discord.Interaction[Paddock],
        mode: Mode,
        prompt: str,
        pictures: list[Picture],
        *,
        provider: str | None,
        job_id: str | None,
        **options: object,
    ) -> tuple[Order, list[dict[str, object]] | None, str] | None:
        """What memory alone can check and show: a refusal, or the job card (unless a
        Re-roll, Remix or Extend answered before). None when refused."""
        bot = self.bot
        services = bot.services
        assert interaction.guild_id is not None and interaction.channel_id is not None
        bot.delivery.remember_upload_limit(interaction.guild_id, interaction.filesize_limit)
        allowed = await services.config.allowed_channels(interaction.guild_id)  # in memory
        if allowed and interaction.channel_id not in allowed:
            where = ", ".join(f"<#{c}>" for c in sorted(allowed))
            await _refuse(interaction, f"Videos aren't made in this channel. Use {where}.")
            return None
        name = (provider or bot.settings.default_provider or "").strip().lower() or None
        if name is None or (name == AUTO and not bot.settings.routable_providers):
            await _refuse(interaction, "No video provider is set up on this bot yet. "
                                       "Ask the bot's owner to add a provider key.")
            return None
        if name != AUTO and name not in bot.settings.usable_providers:
            offered = ", ".join(bot.settings.usable_providers)
            await _refuse(interaction, f"{_limits.echo(name, 40)} is not a provider this bot "
                                       f"can use; choose one of: {offered}.")
            return None
        if not bot.runner.accepting:
            await _refuse(interaction, "The bot is restarting; try again in a minute.")
            return None
        if options.get("resolution") is None:
            options["resolution"] = DEFAULT_RESOLUTION
        route: list[dict[str, object]] | None = None
        try:
            if name == AUTO:
                order, route = self.routed_order(mode, prompt, pictures, **options)
            else:
                order = prepare(services.hh, name, mode, prompt, pictures, **options)  # type: ignore[arg-type]
        except OrderRefused as refusal:
            # It may repeat what the member typed (a value, a file name): escaped, once.
            await _refuse(interaction, _limits.escape(str(refusal)))
            return None
        job_id = job_id or uuid.uuid4().hex
        if not interaction.response.is_done():  # (a Re-roll, Remix, Extend answered before)
            await _show_card_first(interaction, order, route, job_id)
        return order, route, job_id

    async def _reserve(
        self,
        interaction: discord.Interaction[Paddock],
        mode: Mode,
        order: Order,
        route: list[dict[str, object]] | None,
        job_id: str,
    ) -> None:
        """Reserve the credits and accept the job, fill the card in, hand the job to the
        runner; or refuse ephemerally, removing the card."""
        bot = self.bot
        services = bot.services
        assert interaction.guild_id is not None and interaction.channel_id is not None
        card_id = interaction.extras.get(PLACEHOLDER)
        try:
            accepted = await services.jobs.accept(
                guild_id=interaction.guild_id,
                user_id=interaction.user.id,
                request=order.request.to_dict(),
                estimated_credits=order.credits,
                route=route,
                channel_id=interaction.channel_id,
                role_ids=_role_ids(interaction),
                provider=order.provider,
                interaction_token=interaction.token,
                token_expires_at=interaction.created_at + TOKEN_LIFE,
                idempotency_key=f"interaction:{interaction.id}",
                timeout=bot.runner.settings.job_timeout,
                progress_message_id=card_id,
                job_id=job_id,
            )
        except InsufficientCredits as refusal:
            if await services.ledger.never_funded(interaction.guild_id):
                await _refuse(interaction, first_credits(refusal, interaction.user))
                return
            await _refuse(interaction, f"{refusal} Try 720p or a shorter video, wait for "
                                       "your next refill (/credits balance), or ask a moderator.")
            return
        except OrderRefused as refusal:
            await _refuse(interaction, _limits.escape(str(refusal)))
            return
        except PaddockError as refusal:  # the ledger's words, nothing the member typed
            await _refuse(interaction, str(refusal))
            return
        job = accepted.job
        left = accepted.reservation.personal_available + (
            accepted.reservation.pool_available if accepted.reservation.from_pool else 0)
        position = bot.runner.enqueue(job)
        log.info("%s accepted in guild=%s channel=%s: %s mode, %d credits, place in line %s",
                 job_fields(job), job.guild_id, job.channel_id, mode.value, order.credits,
                 position)
        embed = progress_embed(
            job, Progress("queued", position=position),
            provider_title=services.hh.provider(order.provider).title, credits_left=left,
        )
        _limits.check_message(embeds=[embed])
        if PLACEHOLDER not in interaction.extras:  # answered privately first (Extend)
            card = await interaction.followup.send(embed=embed, wait=True)
            await services.jobs.set_progress_message(job.id, card.id)
            return
        interaction.extras.pop(PLACEHOLDER, None)  # it is the job card from here on
        card = await interaction.edit_original_response(embed=embed)
        if card_id is None:  # Discord did not say which message the placeholder is
            await services.jobs.set_progress_message(job.id, card.id)


    def routed_order(
        self, mode: Mode, prompt: str, pictures: list[Picture], **options: object
    ) -> tuple[Order, list[dict[str, object]]]:
        """provider: auto: every provider that can make it; the job holds the highest price
        and starts at the best one working now. Raises OrderRefused."""
        router = self.bot.router
        plan = router.plan(mode, prompt, pictures, **options)
        first = router.first_usable(plan)
        if first is None:
            back = router.soonest_back(plan)
            when = f" in about {back:.0f} seconds" if back else " later"
            raise OrderRefused("Every provider that can make this video is resting after "
                               f"errors. Nothing was charged; try again{when}.")
        order = Order(first.provider, VideoRequest.from_dict(first.request),
                      max(r.credits for r in plan), tuple(pictures))
        return order, [r.to_dict() for r in plan]


# -- buttons on a finished video -------------------------------------------------------------


BUTTON_ID = r"paddock:(?P<action>reroll|remix|delete):(?P<job>[0-9a-f]{32})"


class _JobButton(discord.ui.DynamicItem[discord.ui.Button], template=BUTTON_ID):
    """The three buttons; the job id is in the custom_id, the settings in the database."""

    def __init__(self, action: str, job_id: str) -> None:
        labels = {"reroll": ("Re-roll", discord.ButtonStyle.primary, "🎲"),
                  "remix": ("Remix", discord.ButtonStyle.secondary, "✏️"),
                  "delete": ("Delete", discord.ButtonStyle.danger, "🗑️")}
        label, style, emoji = labels[action]
        super().__init__(discord.ui.Button(
            label=label, style=style, emoji=emoji, custom_id=f"paddock:{action}:{job_id}"))
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Paddock], item: discord.ui.Button, match,
    ) -> _JobButton:
        return cls(match["action"], match["job"])

    async def callback(self, interaction: discord.Interaction[Paddock]) -> None:
        bot = interaction.client
        # Answer before the database: the action is in the custom_id. A Remix opens a
        # modal, which must be the first answer and shows the job's prompt, so it reads
        # the job first.
        if self.action == "reroll":
            await _acknowledge(interaction)
        elif self.action == "delete":
            await acknowledge_privately(interaction)
        try:
            job = await bot.services.jobs.get(self.job_id)
        except PaddockError:
            await _refuse(interaction, "That job is no longer known to the bot.")
            return
        cog = bot.get_cog("Video")
        assert isinstance(cog, VideoCog)
        request = VideoRequest.from_dict(job.request)
        if self.action == "delete":
            if interaction.user.id != job.user_id and not await is_moderator(interaction):
                await _refuse(interaction, "Only the member who asked for this video or a "
                                           "moderator can delete it.")
                return
            assert interaction.message is not None
            await interaction.message.delete()
            await interaction.followup.send("Deleted.", ephemeral=True)
        elif self.action == "reroll":
            offer = bot.services.hh.capabilities(job.provider or "", request.mode)
            seed = random.randint(0, SEED_MAX) if offer.seed_range else None
            pictures = await _fresh_pictures(interaction, job)
            if pictures is None:
                return
            await cog.start_job(interaction, request.mode, request.prompt, pictures,
                                **_settings(request, job, seed=seed))
        else:
            await interaction.response.send_modal(RemixModal(cog, job))


class RemixModal(discord.ui.Modal, title="Remix this video"):
    """Change the prompt; everything else stays as it was."""

    prompt: discord.ui.TextInput = discord.ui.TextInput(
        label="Prompt", style=discord.TextStyle.paragraph, max_length=2500)

    def __init__(self, cog: VideoCog, job: Job) -> None:
        super().__init__(custom_id=f"paddock:remix-form:{job.id}")
        self.cog = cog
        self.job = job
        self.prompt.default = VideoRequest.from_dict(job.request).prompt[:2500]

    async def on_submit(self, interaction: discord.Interaction[Paddock]) -> None:
        await _acknowledge(interaction)
        request = VideoRequest.from_dict(self.job.request)
        pictures = await _fresh_pictures(interaction, self.job)
        if pictures is None:
            return
        await self.cog.start_job(interaction, request.mode, self.prompt.value,
                                 pictures, **_settings(request, self.job))


def result_view(job: Job, *, link: str | None = None, extend: bool = False) -> discord.ui.View:
    """Re-roll, Remix, Delete, and Extend where a provider can continue it
    (cogs/followups.py answers it); and the provider's full-quality link where a link
    button's 512-character URL can hold it (longer links stay in the message's text)."""
    view = discord.ui.View(timeout=None)
    for action in ("reroll", "remix", "delete"):
        view.add_item(_JobButton(action, job.id))
    if extend:
        view.add_item(discord.ui.Button(label="Extend", emoji="⏩",
                                        style=discord.ButtonStyle.secondary,
                                        custom_id=f"paddock:extend:{job.id}"))
    if link is not None and _limits.link_fits_button(link):
        view.add_item(discord.ui.Button(label="Full quality", url=link, emoji="⬇️"))
    return view


def _settings(request: VideoRequest, job: Job, **changes: object) -> dict[str, object]:
    settings: dict[str, object] = dict(
        provider=AUTO if job.routed else job.provider, resolution=request.resolution,
        aspect_ratio=request.aspect_ratio,
        duration=request.duration, seed=request.seed,
    )
    if request.negative_prompt:
        settings["negative_prompt"] = request.negative_prompt
    settings.update(changes)
    return settings


async def _fresh_pictures(
    interaction: discord.Interaction[Paddock], job: Job
) -> list[Picture] | None:
    """The pictures of an earlier job (already checked when it was made), with fresh links:
    Discord's attachment links are signed and expire after about a day, and a provider
    given a dead one fails the job. None (and the member told) if Discord can't refresh."""
    urls = list(job.request.get("images") or [])
    if urls:
        try:
            urls = await refresh_attachment_links(interaction.client, urls)
        except discord.HTTPException as error:
            log.warning("%s could not refresh picture links (%s %s)", job_fields(job),
                        error.status, error.code)
            await _refuse(interaction, "Discord no longer gives out the pictures of that job, "
                                       "so it can't be made again. Run the command again with "
                                       "the pictures attached.")
            return None
    return [
        Picture(option=f"image{n}", filename=f"image{n}", url=url, content_type=None,
                size=0, width=None, height=None, checked=True)
        for n, url in enumerate(urls, start=1)
    ]


async def refresh_attachment_links(client: discord.Client, urls: list[str]) -> list[str]:
    """Fresh signed links for Discord attachment links (``POST /attachments/refresh-urls``);
    links Discord does not know come back unchanged."""
    fresh: dict[str, str] = {}
    for start in range(0, len(urls), REFRESH_AT_ONCE):
        batch = urls[start:start + REFRESH_AT_ONCE]
        route = discord.http.Route("POST", "/attachments/refresh-urls")
        answer = await client.http.request(route, json={"attachment_urls": batch})
        for entry in answer.get("refreshed_urls") or []:
            if entry.get("original") and entry.get("refreshed"):
                fresh[entry["original"]] = entry["refreshed"]
    return [fresh.get(url, url) for url in urls]


def first_credits(refusal: InsufficientCredits, member: discord.abc.User) -> str:
    """The refusal on a server where nobody has credits yet: what a moderator runs."""
    return (
        f"{refusal} Nobody on this server has credits yet: the bot starts every server at 0 "
        "so its owners choose the budget. A moderator can give every member "
        "an allowance with `/quota allowance amount:100 period:daily`, or give you credits "
        f"with `/quota grant member:@{member.name} amount:{max(refusal.cost, 100)}`."
    )


def _mode_of(interaction: discord.Interaction[Paddock]) -> Mode | None:
    command = interaction.command
    try:
        return Mode(command.name) if command is not None else None
    except ValueError:
        return None


def _role_ids(interaction: discord.Interaction[Paddock]) -> list[int]:
    user = interaction.user
    return [role.id for role in user.roles] if isinstance(user, discord.Member) else []


async def _acknowledge(interaction: discord.Interaction[Paddock]) -> None:
    """Answer at once with Discord's public "thinking" placeholder, which the job card
    replaces; a refusal removes it and answers privately (:func:`_refuse`)."""
    if not interaction.response.is_done():
        with interaction.client.first_answers.opened():
            answer = await interaction.response.defer(thinking=True)
        interaction.extras[PLACEHOLDER] = answer.message_id if answer is not None else None


async def _show_card_first(
    interaction: discord.Interaction[Paddock], order: Order,
    route: list[dict[str, object]] | None, job_id: str,
) -> None:
    """Answer with the job card, from memory alone ("Reserving credits…"): the member sees
    the job at once; the reservation edits it, or a refusal removes it (:func:`_refuse`)."""
    price = next((int(str(r["credits"])) for r in route or ()
                  if r["provider"] == order.provider), order.credits)
    embed = reserving_embed(
        order.request, job_id=job_id, user_id=interaction.user.id, held=order.credits,
        price=price, routed=route is not None,
        provider_title=interaction.client.services.hh.provider(order.provider).title,
    )
    answer = await interaction.response.send_message(embed=embed)
    interaction.extras[PLACEHOLDER] = answer.message_id if answer is not None else None


async def _refuse(interaction: discord.Interaction[Paddock], text: str) -> None:
    _limits.check_message(text)
    if PLACEHOLDER in interaction.extras:
        del interaction.extras[PLACEHOLDER]
        # A followup would replace the public placeholder, publicly: remove it first, so
        # the reason is seen by the member alone.
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as error:
            log.warning("could not remove the placeholder of a refused job (%s %s)",
                        error.status, error.code)
        await interaction.followup.send(text, ephemeral=True)
    elif interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: Paddock) -> None:
    bot.add_dynamic_items(_JobButton)
    await bot.add_cog(VideoCog(bot))


__all__ = ["VideoCog", "result_view"]
