"""/jobs list and /jobs cancel: a member's own jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs import _limits
from cogs._checks import acknowledge_privately
from hh_api import VideoRequest
from paddock.errors import InvalidTransition, JobNotFound
from paddock.jobs import Job, JobState

if TYPE_CHECKING:
    from bot import Paddock

STATE_WORDS = {
    JobState.ACCEPTED: "queued",
    JobState.SUBMITTED: "sent to the provider",
    JobState.RUNNING: "rendering",
    JobState.SUCCEEDED: "done, being posted",
    JobState.FAILED: "failed, being posted",
    JobState.DELIVERED: "done",
    JobState.CANCELLED: "cancelled",
}


def _line(job: Job) -> str:
    request = VideoRequest.from_dict(job.request)
    prompt = _limits.member_text(" ".join(request.prompt.split()), 60)
    state = STATE_WORDS[job.state]
    if job.undelivered:
        state = "undelivered, credits returned"
    elif job.state is JobState.DELIVERED and job.error:
        state = "failed"
    when = discord.utils.format_dt(job.created_at, "R")
    credits = job.charged_credits if job.charged_credits is not None else job.estimated_credits
    return f"`{job.id[:8]}` {when} · **{state}** · {credits} credits · {prompt}"


class JobsCog(commands.Cog, name="Jobs"):
    """A member's view of their own jobs."""

    jobs = app_commands.Group(name="jobs", description="Your video jobs", guild_only=True)

    def __init__(self, bot: Paddock) -> None:
        self.bot = bot

    @jobs.command(name="list")
    async def list_jobs(self, interaction: discord.Interaction[Paddock]) -> None:
        """Your latest jobs and where each one stands."""
        assert interaction.guild_id is not None
        await acknowledge_privately(interaction)
        jobs = await self.bot.services.jobs.list_for_member(
            interaction.guild_id, interaction.user.id, limit=10
        )
        if not jobs:
            await _answer(interaction, "You have no jobs yet. Start one with /video text, "
                                       "/video image or /video reference.")
            return
        embed = discord.Embed(title="Your latest jobs",
                              description="\n".join(_line(job) for job in jobs))
        embed.set_footer(text="Cancel a queued job with /jobs cancel")
        await interaction.followup.send(embed=_limits.checked(embed), ephemeral=True)

    @jobs.command(name="cancel")
    @app_commands.describe(job="The queued job to cancel (its id, or pick from the list)")
    async def cancel(self, interaction: discord.Interaction[Paddock], job: str) -> None:
        """Cancel a job that has not reached the provider yet; its credits come back."""
        await acknowledge_privately(interaction)
        found = await self._own_job(interaction, job.strip())
        if found is None:
            await _answer(interaction, f"You have no job {_limits.echo(job, 40)}: a job id is "
                                       "32 letters and digits (the first 8 will do). "
                                       "/jobs list shows yours.")
            return
        try:
            cancelled = await self.bot.runner.cancel(found.id)
        except InvalidTransition:
            await _answer(interaction,
                          f"Job `{found.id[:8]}` is {STATE_WORDS[found.state]} and can no longer "
                          "be cancelled: the provider already has it. Its credits are only "
                          "charged if the video arrives.")
            return
        await self.bot.delivery.cancelled(cancelled)
        await _answer(interaction, f"Cancelled job `{cancelled.id[:8]}`; "
                                   f"{cancelled.estimated_credits} credits are back in your "
                                   "balance.")

    @cancel.autocomplete("job")
    async def cancellable(
        self, interaction: discord.Interaction[Paddock], current: str
    ) -> list[app_commands.Choice[str]]:
        assert interaction.guild_id is not None
        jobs = await self.bot.services.jobs.list_for_member(
            interaction.guild_id, interaction.user.id, limit=25
        )
        return [
            app_commands.Choice(name=_choice_name(job), value=job.id)
            for job in jobs
            if job.state is JobState.ACCEPTED and job.submit_attempted_at is None
            and job.id.startswith(current.strip())
        ][:25]

    async def _own_job(self, interaction: discord.Interaction[Paddock], text: str) -> Job | None:
        assert interaction.guild_id is not None
        try:
            job = await self.bot.services.jobs.get(text)
        except JobNotFound:
            mine = await self.bot.services.jobs.list_for_member(
                interaction.guild_id, interaction.user.id, limit=50)
            matches = [j for j in mine if len(text) >= 4 and j.id.startswith(text)]
            return matches[0] if len(matches) == 1 else None
        if (job.guild_id, job.user_id) != (interaction.guild_id, interaction.user.id):
            return None
        return job


async def _answer(interaction: discord.Interaction[Paddock], text: str) -> None:
    _limits.check_message(text)
    await interaction.followup.send(text, ephemeral=True)


def _choice_name(job: Job) -> str:
    prompt = VideoRequest.from_dict(job.request).prompt
    return f"{job.id[:8]} · {prompt}"[:100]


async def setup(bot: Paddock) -> None:
    await bot.add_cog(JobsCog(bot))
