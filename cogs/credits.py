"""/credits: a member's own balance and history, answered privately."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs import _limits
from cogs._checks import (
    NotModerator,
    acknowledge_privately,
    answering,
    is_moderator,
    refuse_bots,
    send_private,
)
from paddock.audit import Entry
from paddock.budget import FundingPolicy, Period, next_refill

if TYPE_CHECKING:
    from bot import Paddock
    from paddock.accounts import Balance

CREDITS_COLOUR = discord.Colour(0x2E8B57)
HISTORY_PAGE = 15

PERIOD_WORDS = {
    Period.DAILY: "per day",
    Period.WEEKLY: "per week",
    Period.MONTHLY: "per month",
    Period.NONE: "once, never refilled",
}
POLICY_WORDS = {
    FundingPolicy.PERSONAL: "Videos are paid from each member's own credits.",
    FundingPolicy.POOL: "Videos are paid from the server pool.",
    FundingPolicy.PERSONAL_THEN_POOL: (
        "Videos are paid from the member's own credits first, then from the server pool."
    ),
}


def role_ids(member: discord.Member | discord.User) -> list[int]:
    """The member's roles, for role allowances (a plain user has none)."""
    return [role.id for role in getattr(member, "roles", ())]


def credits(amount: int) -> str:
    return f"{amount} credit" if amount in (1, -1) else f"{amount} credits"


def signed(amount: int) -> str:
    return f"+{amount}" if amount > 0 else str(amount)


def when(moment: datetime) -> str:
    return discord.utils.format_dt(moment, "f")


def balance_embed(
    title: str,
    balance: Balance,
    now: datetime,
    policy: FundingPolicy,
    pool: Balance | None,
) -> discord.Embed:
    """What ``/credits balance`` shows: the figures a member needs before a video."""
    embed = discord.Embed(title=title, colour=CREDITS_COLOUR)
    embed.description = f"**{credits(balance.available)}** available to spend."
    if balance.blocked:
        embed.description += "\nBlocked from making videos on this server by a moderator."
    embed.add_field(name="Held by running jobs", value=str(balance.held))
    embed.add_field(name="Granted credits", value=f"{balance.granted} (kept until spent)")
    if balance.allowance_level:
        allowance = (
            f"{balance.allowance_level} {PERIOD_WORDS[balance.period]}, {balance.allowance} left"
        )
    else:
        allowance = "None"
    embed.add_field(name="Allowance", value=allowance)
    refill = next_refill(balance.period, now)
    if refill is None:
        embed.add_field(name="Next refill", value="Never")
    else:
        relative = discord.utils.format_dt(refill, "R")
        embed.add_field(name="Next refill", value=f"{when(refill)} ({relative})")
    if pool is not None:
        embed.add_field(name="Server pool", value=f"{pool.available} available", inline=False)
    embed.set_footer(text=POLICY_WORDS[policy])
    return embed


def describe_for_member(entry: Entry) -> str:
    """One line of ``/credits history``, in the member's own words."""
    job = f" for job `{entry.job_id}`" if entry.job_id else ""
    pool = " (server pool)" if entry.account == "pool" else ""
    why = f" ({_limits.member_text(entry.reason, 200)})" if entry.reason else ""
    if entry.kind == "refill":
        text = f"Allowance refilled: {signed(entry.change)}"
    elif entry.kind == "hold":
        text = f"Held {entry.held_change}{job}{pool}"
    elif entry.kind == "settle":
        returned = -entry.held_change + entry.change
        text = f"Charged {-entry.change}{job}{pool}"
        if returned:
            text += f", {returned} returned"
    elif entry.kind == "refund":
        text = f"Returned {-entry.held_change}{job}{pool}, nothing charged"
    elif entry.kind == "return":
        text = f"Charge of {entry.change}{job} returned{pool}{why}"
    elif entry.kind == "grant" and entry.change < 0:
        text = f"{-entry.change} taken back by a moderator{why}"
    elif entry.kind == "grant":
        text = f"{entry.change} granted by a moderator{why}"
    elif entry.kind == "set":
        text = f"Balance set by a moderator ({signed(entry.change)}){why}"
    elif entry.kind == "reset":
        text = f"Reset to your allowance by a moderator ({signed(entry.change)}){why}"
    elif entry.kind == "block":
        text = f"Blocked from making videos{why}"
    elif entry.kind == "unblock":
        text = f"Unblocked{why}"
    else:
        text = f"{entry.kind} {signed(entry.change)}{why}"
    after = "" if entry.available is None or entry.account == "pool" else f" → {entry.available}"
    return f"{when(entry.at)} · {text}{after}"


@app_commands.guild_only()
class Credits(commands.GroupCog, group_name="credits", group_description="Your credits"):
    def __init__(self, bot: Paddock) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="balance")
    @app_commands.describe(member="Whose credits to show (others' only for moderators)")
    async def balance(
        self, interaction: discord.Interaction[Paddock], member: discord.Member | None = None
    ) -> None:
        """Show your credits: available, held, allowance and next refill."""
        async with answering(interaction, acknowledge=False):
            target = member or interaction.user
            # the moderator role is held in memory: both checks answer at once
            if target.id != interaction.user.id and not await is_moderator(interaction):
                raise NotModerator("see another member's credits")
            refuse_bots(target)
            await acknowledge_privately(interaction)
            assert interaction.guild_id is not None
            ledger = self.bot.services.ledger
            # one transaction on a reader (the writer only for a new account or a refill)
            shown = await ledger.statement(
                interaction.guild_id, target.id, role_ids=role_ids(target)
            )
            own = target.id == interaction.user.id
            name = _limits.member_text(target.display_name, 100)
            title = "Your credits" if own else f"Credits of {name}"
            embed = balance_embed(title, shown.balance, ledger.now(), shown.policy, shown.pool)
            await send_private(interaction, embed=embed)

    @app_commands.command(name="history")
    @app_commands.describe(page="Which page, newest first (15 entries a page)")
    async def history(
        self, interaction: discord.Interaction[Paddock], page: app_commands.Range[int, 1, 100] = 1
    ) -> None:
        """Show your recent spending, refills and grants, newest first."""
        async with answering(interaction):
            assert interaction.guild_id is not None
            entries = await self.bot.services.ledger.history(
                interaction.guild_id, interaction.user.id, limit=page * HISTORY_PAGE + 1
            )
            shown = entries[(page - 1) * HISTORY_PAGE : page * HISTORY_PAGE]
            if not shown:
                text = "No credit history yet." if page == 1 else f"There is no page {page}."
                await send_private(interaction, text)
                return
            embed = discord.Embed(
                title="Your credit history",
                description="\n".join(describe_for_member(e) for e in shown),
                colour=CREDITS_COLOUR,
            )
            footer = f"Page {page}, newest first."
            if len(entries) > page * HISTORY_PAGE:
                footer += f" Older entries: /credits history page:{page + 1}"
            embed.set_footer(text=footer)
            await send_private(interaction, embed=embed)


async def setup(bot: Paddock) -> None:
    await bot.add_cog(Credits(bot))
