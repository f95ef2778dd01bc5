"""How jobs look in Discord: the embeds for a job's progress, its video and its failure."""

from __future__ import annotations

from datetime import datetime

import discord

from cogs import _limits
from hh_api import Mode, VideoRequest
from paddock.jobs import Job, JobState
from paddock.runner import Progress

COLOUR = {"working": 0x5865F2, "done": 0x57F287, "failed": 0xED4245}
MODE_NAMES = {Mode.TEXT: "Text to video", Mode.IMAGE: "Image to video",
              Mode.REFERENCE: "Reference to video"}


def settings_line(request: VideoRequest) -> str:
    parts = [request.resolution or "", f"{request.duration} s"]
    if request.aspect_ratio:
        parts.insert(1, request.aspect_ratio)
    if request.seed is not None:
        parts.append(f"seed {request.seed}")
    return " · ".join(p for p in parts if p)


def _quoted(prompt: str, limit: int = 1000) -> str:
    """The member's prompt as a quote: its Markdown escaped once, clipped to ``limit``."""
    return "> " + _limits.member_text(prompt, limit).replace("\n", "\n> ")


def progress_embed(
    job: Job, progress: Progress, *, provider_title: str, credits_left: int | None = None
) -> discord.Embed:
    """The job's public message while it is queued, sent or rendering."""
    if progress.phase == "queued":
        state = "Queued" + (f" (position {progress.position})" if progress.position else "")
    elif progress.phase == "submitted":
        state = f"Sent to {provider_title}, waiting for it to start"
    else:
        started = int(progress.started_at or datetime.now().timestamp())
        state = f"Rendering on {provider_title}, started <t:{started}:R>"
    cost = _cost(job.estimated_credits, job.price_at(job.provider) if job.provider else None,
                 routed=job.routed, provider_title=provider_title)
    if credits_left is not None:
        cost += f" ({credits_left} left)"
    return _working_card(VideoRequest.from_dict(job.request), state, cost,
                         user_id=job.user_id, job_id=job.id)


def reserving_embed(
    request: VideoRequest, *, job_id: str, user_id: int, held: int, price: int,
    routed: bool, provider_title: str,
) -> discord.Embed:
    """The job card as the command's first answer, built from the interaction and memory
    alone (the prompt, the settings, the price table's estimate) while the credits are
    reserved; :func:`progress_embed` replaces it."""
    cost = _cost(held, price, routed=routed, provider_title=provider_title)
    return _working_card(request, "Reserving credits…", cost, user_id=user_id, job_id=job_id)


def _cost(held: int, price: int | None, *, routed: bool, provider_title: str) -> str:
    if routed and price is not None:  # provider: auto
        return (f"{price} credits at {provider_title}, chosen "
                f"automatically ({held} held; the rest comes back)")
    return f"{held} credits"


def _working_card(
    request: VideoRequest, state: str, cost: str, *, user_id: int, job_id: str
) -> discord.Embed:
    embed = discord.Embed(
        title=f"🎬 {MODE_NAMES[request.mode]}", description=_quoted(request.prompt),
        colour=COLOUR["working"],
    )
    embed.add_field(name="Status", value=state, inline=False)
    embed.add_field(name="Settings", value=settings_line(request))
    embed.add_field(name="Cost", value=cost)
    embed.add_field(name="Requested by", value=f"<@{user_id}>")
    embed.set_footer(text=f"Job {job_id}")
    return _limits.checked(embed)


def finished_embed(job: Job, *, provider_title: str, model: str,
                   link_note: str | None = None, chain: str | None = None) -> discord.Embed:
    """What made the video: prompt, settings, provider and model, cost, time, who asked;
    for an extended clip, ``chain`` (its parts and total length).

    ``link_note`` (a sentence with the provider's link) goes in the description, whose
    4,096 characters hold a long pre-signed link where a field's 1,024 would not.
    """
    request = VideoRequest.from_dict(job.request)
    description = _quoted(request.prompt)
    if link_note:
        room = _limits.EMBED_DESCRIPTION - len(link_note) - 2
        description = _quoted(request.prompt, max(min(1000, room), 100)) + "\n\n" + link_note
    embed = discord.Embed(
        title=f"🎬 {MODE_NAMES[request.mode]}", description=description, colour=COLOUR["done"],
    )
    made_by = f"{provider_title} · `{model}`" + (" · chosen automatically" if job.routed else "")
    embed.add_field(name="Provider", value=made_by, inline=False)
    embed.add_field(name="Resolution", value=request.resolution or "default")
    embed.add_field(name="Aspect ratio", value=request.aspect_ratio or "from the picture")
    embed.add_field(name="Duration", value=f"{request.duration} s")
    if chain is not None:  # an extended clip: the parts joined, and their length
        embed.add_field(name="Extended", value=chain)
    embed.add_field(name="Seed", value=str(request.seed) if request.seed is not None else "random")
    charged = job.charged_credits or 0
    if job.routed and job.estimated_credits > charged:
        embed.add_field(name="Credits charged", value=(
            f"{charged} ({job.estimated_credits - charged} of the {job.estimated_credits} "
            f"held came back: {provider_title} was the cheapest working)"))
    else:
        embed.add_field(name="Credits charged", value=str(charged))
    if job.finished_at is not None:
        taken = (job.finished_at - job.created_at).total_seconds()
        embed.add_field(name="Time taken", value=_duration(taken))
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>")
    if request.negative_prompt:
        embed.add_field(name="Negative prompt",
                        value=_limits.member_text(request.negative_prompt, 1000), inline=False)
    embed.set_footer(text=f"Job {job.id}")
    return _limits.checked(embed)


def failed_embed(job: Job, *, provider_title: str) -> discord.Embed:
    """The provider's reason in plain words, the refund, and what to try."""
    request = VideoRequest.from_dict(job.request)
    embed = discord.Embed(
        title="Video failed", description=_quoted(request.prompt, 500), colour=COLOUR["failed"]
    )
    embed.add_field(name="What happened",
                    value=_limits.clip(job.error or "No reason was given.", 1000),
                    inline=False)
    refunded = job.estimated_credits - (job.charged_credits or 0)
    embed.add_field(name="Credits", value=f"{refunded} credits returned to you")
    embed.add_field(name="What to try", value=_advice(job.error or ""), inline=False)
    embed.set_footer(text=f"Job {job.id} · {provider_title}")
    return _limits.checked(embed)


def closed_embed(job: Job, note: str) -> discord.Embed:
    """The job message once the job is over: it points at the result."""
    request = VideoRequest.from_dict(job.request)
    done = job.state in (JobState.SUCCEEDED, JobState.DELIVERED) and not job.error
    embed = discord.Embed(
        title=f"🎬 {MODE_NAMES[request.mode]}", description=_quoted(request.prompt),
        colour=COLOUR["done" if done else "failed"],
    )
    embed.add_field(name="Status", value=_limits.clip(note, _limits.FIELD_VALUE), inline=False)
    embed.add_field(name="Settings", value=settings_line(request))
    embed.set_footer(text=f"Job {job.id}")
    return _limits.checked(embed)


def _advice(error: str) -> str:
    lowered = error.lower()
    if "policy" in lowered or "flagged" in lowered or "safety" in lowered:
        return "Reword the prompt or use other pictures, then run the command again."
    if "picture" in lowered or "image" in lowered:
        return "Check that the pictures are clear, large enough and publicly viewable."
    if "took too long" in lowered or "did not finish" in lowered:
        return "The provider is slow right now: try again later, or a shorter duration."
    return "Run the command again; if it keeps failing, try another provider."


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
