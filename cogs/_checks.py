"""Glue the cogs share: who counts as a moderator, and answering domain errors privately.

Not a cog (the leading underscore keeps ``setup_hook`` from loading it).

Why commands catch domain errors themselves (``async with answering(interaction)``) rather
than in ``cog_app_command_error``: discord.py calls the tree's ``on_error`` after the
cog's handler for every error, and ``PaddockTree.on_error`` answers every error it sees,
so an error answered by the cog would be answered twice. Errors that are not
:class:`~paddock.errors.PaddockError` still reach the tree's ``on_error``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import discord

from cogs import _limits
from paddock.errors import PaddockError

if TYPE_CHECKING:
    from bot import Paddock

log = logging.getLogger(__name__)

QUIET = discord.AllowedMentions.none()


class NotModerator(PaddockError):
    """A member without Manage Server or the moderator role used a moderators' command."""

    def __init__(self, what: str = "use /quota") -> None:
        super().__init__(what)
        self.what = what

    def __str__(self) -> str:
        return (
            f"Only moderators can {self.what}: it needs the Manage Server permission "
            "or this server's moderator role."
        )


class NeedsManageServer(PaddockError):
    """Only Manage Server may do this (a moderator role must not widen itself)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what

    def __str__(self) -> str:
        return f"Only members with the Manage Server permission can {self.what}."


class BotHasNoCredits(PaddockError):
    """A command named a bot where it needs a member who makes videos."""

    def __init__(self, mention: str) -> None:
        super().__init__(mention)
        self.mention = mention

    def __str__(self) -> str:
        return f"{self.mention} is a bot; bots have no credits."


async def is_moderator(interaction: discord.Interaction[Paddock]) -> bool:
    """Whether the member moderates this server: Manage Server (server-wide, so a
    channel's permission overwrite does not count), or the configured moderator role."""
    member = interaction.user
    if interaction.guild_id is None or not isinstance(member, discord.Member):
        return False
    if member.guild_permissions.manage_guild:
        return True
    role_id = await interaction.client.services.config.moderator_role(interaction.guild_id)
    return role_id is not None and any(role.id == role_id for role in member.roles)


async def require_moderator(
    interaction: discord.Interaction[Paddock], what: str = "use /quota"
) -> None:
    """Raise :class:`NotModerator` unless the member moderates this server."""
    if not await is_moderator(interaction):
        log.info(
            "refused to let member %s %s on server %s",
            interaction.user.id,
            what,
            interaction.guild_id,
        )
        raise NotModerator(what)


def refuse_bots(member: discord.Member | discord.User) -> None:
    """Raise :class:`BotHasNoCredits` if ``member`` is a bot."""
    if member.bot:
        raise BotHasNoCredits(member.mention)


async def send_private(
    interaction: discord.Interaction[Paddock],
    content: str | None = None,
    *,
    embed: discord.Embed | None = None,
) -> None:
    """Answer (or, once answered, follow up) ephemerally, pinging nobody."""
    _limits.check_message(content, embeds=[embed] if embed is not None else [])
    if interaction.response.is_done():
        await interaction.followup.send(
            content, embed=embed or discord.utils.MISSING, ephemeral=True, allowed_mentions=QUIET
        )
    else:
        await interaction.response.send_message(
            content, embed=embed, ephemeral=True, allowed_mentions=QUIET
        )


async def acknowledge_privately(interaction: discord.Interaction[Paddock]) -> None:
    """Answer at once with a private "thinking" placeholder, before any database work;
    :func:`send_private` then replaces it. Until it is sent, the bot's first-answer gate
    counts it: a burst's reservations and sends wait for it as for the job cards. Once it
    is sent, the command's own work (its reads, writes and the answer that replaces the
    placeholder) waits in turn for the burst's other first answers, as a reservation does."""
    if not interaction.response.is_done():
        answers = interaction.client.first_answers
        with answers.opened():
            await interaction.response.defer(ephemeral=True, thinking=True)
        await answers.drained()


@contextlib.asynccontextmanager
async def answering(
    interaction: discord.Interaction[Paddock], *, acknowledge: bool = True
) -> AsyncIterator[None]:
    """Answer a :class:`PaddockError` raised inside with its user-safe text, ephemerally;
    let anything else through to the tree's ``on_error``. With ``acknowledge`` the member
    gets a private placeholder first (commands whose checks need only memory pass False
    and call :func:`acknowledge_privately` after them)."""
    try:
        if acknowledge:
            await acknowledge_privately(interaction)
        yield
    except PaddockError as error:
        await send_private(interaction, str(error))
