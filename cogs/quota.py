"""/quota: what moderators change (credits, allowances, the pool, limits, /video channels,
the moderator role, blocks) and the audit log. Every answer is private and says what
changed, from what to what.

Discord hides ``/quota`` from members without Manage Server (default permissions); each
command checks again at run time, so the moderator role works and a member who sees the
command through a permission override is still refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from cogs._checks import (
    NeedsManageServer,
    answering,
    refuse_bots,
    require_moderator,
    send_private,
)
from cogs.credits import PERIOD_WORDS, POLICY_WORDS, credits, role_ids, signed, when
from paddock.audit import Entry
from paddock.budget import FundingPolicy, Limits, Period
from paddock.errors import InsufficientCredits
from paddock.guild_config import MODERATOR_ROLE, ConfigChange, ConfigValue, newest_first

if TYPE_CHECKING:
    from bot import Paddock
    from paddock.ledger import Ledger

MAX_CREDITS = 1_000_000
LOG_PAGE = 15
LOG_LINE = 270  # 15 lines stay inside an embed description's 4096 characters
LOG_REASON = 80  # reasons may be 200 long; the log shows their start

Reason = Range[str, 1, 200]
PeriodName = Literal["daily", "weekly", "monthly", "none"]

POLICY_NAMES = {
    FundingPolicy.PERSONAL: "personal",
    FundingPolicy.POOL: "pool",
    FundingPolicy.PERSONAL_THEN_POOL: "personal then pool",
}
LIMIT_NAMES = {
    "max_job_cost": "per-job cost",
    "member_spend": "member spend per period",
    "member_spend_period": "member spend period",
    "daily_ceiling": "server daily ceiling",
    "member_jobs": "jobs at once per member",
    "server_jobs": "jobs at once per server",
}
REASON_DESCRIPTION = "Why (kept in the audit log)"


def because(reason: str | None) -> str:
    return f" (reason: {reason})" if reason else ""


def allowance_text(amount: int, period: Period) -> str:
    return f"{amount} {PERIOD_WORDS[period]}" if amount else "none"


def limit_text(name: str, value: object) -> str:
    """One limit's value as moderators read it (``None``: no limit)."""
    if name == "member_spend_period":
        return Period(value).value
    return "no limit" if value is None else str(value)


def limit_changes(changed: dict[str, tuple[object, object] | list[object]]) -> str:
    """``per-job cost: no limit → 50; jobs at once per member: 2 → 1``."""
    return "; ".join(
        f"{LIMIT_NAMES[name]}: {limit_text(name, before)} → {limit_text(name, after)}"
        for name, (before, after) in changed.items()
    )


def limits_summary(limits: Limits) -> str:
    """Every limit on its own line; the member spend limit with its period."""
    lines = []
    for name in LIMIT_NAMES:
        if name == "member_spend_period":
            continue
        line = f"- {LIMIT_NAMES[name]}: {limit_text(name, getattr(limits, name))}"
        if name == "member_spend":
            line += f" ({limit_text('member_spend_period', limits.member_spend_period)})"
        lines.append(line)
    return "\n".join(lines)


def limits_in_short(detail: dict[str, object]) -> str:
    """The limits a journal entry set, e.g. ``per-job cost 40; member spend 100 weekly``."""
    period = detail.get("member_spend_period", "daily")
    parts = [
        f"{LIMIT_NAMES[name]} {value}" + (f" ({period})" if name == "member_spend" else "")
        for name in LIMIT_NAMES
        if (value := detail.get(name)) is not None and name != "member_spend_period"
    ]
    return "; ".join(parts) or "no limits"


def channels_text(channel_ids: ConfigValue | frozenset[int]) -> str:
    """``/video`` channels as moderators read them (no channel listed: every channel)."""
    if not isinstance(channel_ids, tuple | frozenset) or not channel_ids:
        return "every channel"
    return "only " + ", ".join(f"<#{channel}>" for channel in sorted(channel_ids))


def role_text(role_id: ConfigValue) -> str:
    return f"<@&{role_id}>" if isinstance(role_id, int) else "none"


def describe_for_moderators(item: Entry | ConfigChange) -> str:
    """One line of ``/quota log``: when, who, what, to whom, why, and the balance after."""
    if isinstance(item, ConfigChange):
        actor = f"<@{item.actor_id}>"
        if item.setting == MODERATOR_ROLE:
            before, after = role_text(item.before), role_text(item.after)
            what = f"{actor} changed the moderator role: {before} → {after}"
        else:
            before, after = channels_text(item.before), channels_text(item.after)
            what = f"{actor} changed where /video runs: {before} → {after}"
        return _line(item.at, what, item.reason, None)
    entry = item
    actor = f"<@{entry.actor_id}>" if entry.actor_id else ""
    member = f"<@{entry.user_id}>" if entry.user_id else ""
    job = f"job `{entry.job_id}` of {member}"
    pool = " (server pool)" if entry.account == "pool" else ""
    detail = entry.detail or {}
    kind = entry.kind
    if kind == "refill":
        what = f"{member} allowance refilled {signed(entry.change)}"
    elif kind == "hold":
        what = f"{job} held {entry.held_change}{pool}"
    elif kind == "settle":
        what = f"{job} charged {-entry.change}{pool}"
    elif kind == "refund":
        what = f"{job} refunded {-entry.held_change}{pool}"
    elif kind == "grant" and entry.change < 0:
        what = f"{actor} took back {-entry.change} from {member}"
    elif kind == "grant":
        what = f"{actor} granted {signed(entry.change)} to {member}"
    elif kind == "set":
        what = f"{actor} set the balance of {member} ({signed(entry.change)})"
    elif kind == "reset":
        what = f"{actor} reset {member} to their allowance ({signed(entry.change)})"
    elif kind == "fund":
        what = f"{actor} changed the server pool by {signed(entry.change)}"
    elif kind in ("block", "unblock"):
        what = f"{actor} {kind}ed {member}"
    elif kind == "allowance":
        whose = f"of {role_text(detail.get('role_id'))}" if detail.get("role_id") else "(server)"
        amount = allowance_text(detail.get("allowance", 0), Period(detail.get("period", "none")))
        what = f"{actor} set the allowance {whose} to {amount}"
    elif kind == "allowance_cleared":
        what = f"{actor} removed the allowance of {role_text(detail.get('role_id'))}"
    elif kind == "policy":
        policy = POLICY_NAMES[FundingPolicy(detail.get("policy", "personal"))]
        what = f"{actor} set the funding policy to {policy}"
    elif kind == "limits" and detail.get("changed"):
        what = f"{actor} changed {limit_changes(detail['changed'])}"
    elif kind == "limits":  # no from and to recorded (older entries), or nothing changed
        what = f"{actor} set the limits: {limits_in_short(detail)}"
    else:
        what = f"{actor or member} {kind} {signed(entry.change)}".strip()
    after = entry.available if entry.account == "member" else None
    return _line(entry.at, what, entry.reason, after)


def _line(at: datetime, what: str, reason: str | None, available: int | None) -> str:
    if reason and len(reason) > LOG_REASON:
        reason = reason[: LOG_REASON - 1] + "…"
    text = f"{when(at)} · {what}{because(reason)}"
    if available is not None:
        text += f" → {available} available"
    return text if len(text) <= LOG_LINE else text[: LOG_LINE - 1] + "…"


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Quota(
    commands.GroupCog,
    group_name="quota",
    group_description="Moderators: credits, allowances, limits and where /video runs",
):
    moderators = app_commands.Group(name="moderators", description="Who moderates Paddock here")

    def __init__(self, bot: Paddock) -> None:
        self.bot = bot
        super().__init__()

    @property
    def ledger(self) -> Ledger:
        return self.bot.services.ledger

    @staticmethod
    def guild(interaction: discord.Interaction[Paddock]) -> int:
        assert interaction.guild_id is not None  # guild_only
        return interaction.guild_id

    # -- members' credits ------------------------------------------------------------

    @app_commands.command(name="grant")
    @app_commands.describe(
        member="Who gets the credits",
        amount="Credits to give on top of their allowance; negative takes credits back",
        reason=REASON_DESCRIPTION,
    )
    async def grant(
        self,
        interaction: discord.Interaction[Paddock],
        member: discord.Member,
        amount: Range[int, -MAX_CREDITS, MAX_CREDITS],
        reason: Reason | None = None,
    ) -> None:
        """Give a member credits, or take them back with a negative amount."""
        async with answering(interaction):
            await require_moderator(interaction)
            refuse_bots(member)
            guild_id, roles = self.guild(interaction), role_ids(member)
            try:
                after = await self.ledger.grant(
                    guild_id,
                    member.id,
                    amount,
                    actor_id=interaction.user.id,
                    reason=reason or "",
                    role_ids=roles,
                )
            except InsufficientCredits as error:
                await send_private(
                    interaction,
                    f"Can't take back {credits(-amount)} from {member.mention}: they have "
                    f"{error.available} available. Nothing changed.",
                )
                return
            if amount > 0:
                done = f"Granted {credits(amount)} to {member.mention}"
            else:
                done = f"Took back {credits(-amount)} from {member.mention}"
            before = after.available - amount  # a grant moves nothing else, refills included
            await send_private(
                interaction,
                f"{done}: {before} → {after.available} available{because(reason)}.",
            )

    @app_commands.command(name="set")
    @app_commands.describe(
        member="Whose balance to set",
        amount="Their new balance, allowance and granted credits together",
        reason=REASON_DESCRIPTION,
    )
    async def set_balance(
        self,
        interaction: discord.Interaction[Paddock],
        member: discord.Member,
        amount: Range[int, 0, MAX_CREDITS],
        reason: Reason | None = None,
    ) -> None:
        """Set a member's balance to an exact number of credits."""
        async with answering(interaction):
            await require_moderator(interaction)
            refuse_bots(member)
            guild_id, roles = self.guild(interaction), role_ids(member)
            before = await self.ledger.balance(guild_id, member.id, role_ids=roles)
            after = await self.ledger.set_balance(
                guild_id,
                member.id,
                amount,
                actor_id=interaction.user.id,
                reason=reason or "",
                role_ids=roles,
            )
            held = f" ({after.held} held by running jobs)" if after.held else ""
            await send_private(
                interaction,
                f"Set the balance of {member.mention} to {credits(amount)}: "
                f"{before.available} → {after.available} available{held}{because(reason)}.",
            )

    @app_commands.command(name="reset")
    @app_commands.describe(member="Whose balance to reset", reason=REASON_DESCRIPTION)
    async def reset(
        self,
        interaction: discord.Interaction[Paddock],
        member: discord.Member,
        reason: Reason | None = None,
    ) -> None:
        """Reset a member to exactly their allowance, dropping granted credits."""
        async with answering(interaction):
            await require_moderator(interaction)
            refuse_bots(member)
            guild_id, roles = self.guild(interaction), role_ids(member)
            before = await self.ledger.balance(guild_id, member.id, role_ids=roles)
            after = await self.ledger.reset_to_allowance(
                guild_id,
                member.id,
                actor_id=interaction.user.id,
                reason=reason or "",
                role_ids=roles,
            )
            await send_private(
                interaction,
                f"Reset {member.mention} to their allowance of {after.allowance_level}: "
                f"{before.available} → {after.available} available, granted credits "
                f"{before.granted} → {after.granted}{because(reason)}.",
            )

    @app_commands.command(name="block")
    @app_commands.describe(member="Who may no longer make videos", reason=REASON_DESCRIPTION)
    async def block(
        self,
        interaction: discord.Interaction[Paddock],
        member: discord.Member,
        reason: Reason | None = None,
    ) -> None:
        """Stop a member from making videos here (running jobs finish)."""
        async with answering(interaction):
            await require_moderator(interaction)
            refuse_bots(member)
            guild_id = self.guild(interaction)
            if (await self.ledger.balance(guild_id, member.id, role_ids=role_ids(member))).blocked:
                await send_private(
                    interaction, f"{member.mention} is already blocked; nothing changed."
                )
                return
            await self.ledger.block(
                guild_id, member.id, actor_id=interaction.user.id, reason=reason or ""
            )
            await send_private(
                interaction,
                f"Blocked {member.mention}: not blocked → blocked{because(reason)}. They can't "
                "start videos here; jobs already running finish. Undo with /quota unblock.",
            )

    @app_commands.command(name="unblock")
    @app_commands.describe(member="Who may make videos again", reason=REASON_DESCRIPTION)
    async def unblock(
        self,
        interaction: discord.Interaction[Paddock],
        member: discord.Member,
        reason: Reason | None = None,
    ) -> None:
        """Let a blocked member make videos again."""
        async with answering(interaction):
            await require_moderator(interaction)
            refuse_bots(member)
            guild_id = self.guild(interaction)
            if not (
                await self.ledger.balance(guild_id, member.id, role_ids=role_ids(member))
            ).blocked:
                await send_private(interaction, f"{member.mention} isn't blocked; nothing changed.")
                return
            await self.ledger.unblock(
                guild_id, member.id, actor_id=interaction.user.id, reason=reason or ""
            )
            await send_private(
                interaction,
                f"Unblocked {member.mention}: blocked → not blocked{because(reason)}. "
                "They can make videos again.",
            )

    # -- the server's budget ---------------------------------------------------------

    @app_commands.command(name="allowance")
    @app_commands.describe(
        amount="Credits each member gets per period (0 for none)",
        period="How often it refills (UTC); none: given once, never refilled",
        role="Only for members with this role (a member with several gets the highest)",
        reason=REASON_DESCRIPTION,
    )
    async def allowance(
        self,
        interaction: discord.Interaction[Paddock],
        amount: Range[int, 0, MAX_CREDITS],
        period: PeriodName,
        role: discord.Role | None = None,
        reason: Reason | None = None,
    ) -> None:
        """Set the allowance every member, or a role's members, get each period."""
        async with answering(interaction):
            await require_moderator(interaction)
            guild_id, new_period = self.guild(interaction), Period(period)
            if role is not None and role.is_default():
                await send_private(
                    interaction,
                    "@everyone is every member: leave role out to set the server's allowance.",
                )
                return
            settings = await self.ledger.settings(guild_id)
            if role is None:
                whose = "Server allowance"
                before = allowance_text(settings.allowance, settings.period)
            else:
                whose = f"Allowance of {role.mention}"
                override = next((r for r in settings.role_allowances if r.role_id == role.id), None)
                before = (
                    "server default"
                    if override is None
                    else allowance_text(override.allowance, override.period)
                )
            await self.ledger.set_allowance(
                guild_id,
                amount,
                new_period,
                role_id=None if role is None else role.id,
                actor_id=interaction.user.id,
                reason=reason or "",
            )
            await send_private(
                interaction,
                f"{whose}: {before} → {allowance_text(amount, new_period)}{because(reason)}. "
                "Members get it at their next refill.",
            )

    @app_commands.command(name="allowance-clear")
    @app_commands.describe(role="The role whose own allowance to remove", reason=REASON_DESCRIPTION)
    async def allowance_clear(
        self,
        interaction: discord.Interaction[Paddock],
        role: discord.Role,
        reason: Reason | None = None,
    ) -> None:
        """Remove a role's own allowance; its members get the server's again."""
        async with answering(interaction):
            await require_moderator(interaction)
            guild_id = self.guild(interaction)
            settings = await self.ledger.settings(guild_id)
            override = next((r for r in settings.role_allowances if r.role_id == role.id), None)
            cleared = await self.ledger.clear_role_allowance(
                guild_id, role.id, actor_id=interaction.user.id, reason=reason or ""
            )
            if not cleared or override is None:
                await send_private(
                    interaction, f"{role.mention} has no allowance of its own; nothing changed."
                )
                return
            server = allowance_text(settings.allowance, settings.period)
            await send_private(
                interaction,
                f"Allowance of {role.mention}: "
                f"{allowance_text(override.allowance, override.period)} → server default "
                f"({server}){because(reason)}. Members get it at their next refill.",
            )

    @app_commands.command(name="pool")
    @app_commands.describe(
        amount="Credits to add to the server pool; negative takes them out",
        reason=REASON_DESCRIPTION,
    )
    async def pool(
        self,
        interaction: discord.Interaction[Paddock],
        amount: Range[int, -MAX_CREDITS, MAX_CREDITS],
        reason: Reason | None = None,
    ) -> None:
        """Add credits to the shared server pool, or take them out."""
        async with answering(interaction):
            await require_moderator(interaction)
            guild_id = self.guild(interaction)
            before = await self.ledger.pool_balance(guild_id)
            try:
                after = await self.ledger.fund_pool(
                    guild_id, amount, actor_id=interaction.user.id, reason=reason or ""
                )
            except InsufficientCredits as error:
                await send_private(
                    interaction,
                    f"Can't take {credits(-amount)} out of the server pool: it has "
                    f"{error.available} available. Nothing changed.",
                )
                return
            if amount > 0:
                done = f"Added {credits(amount)} to the server pool"
            else:
                done = f"Took {credits(-amount)} out of the server pool"
            text = f"{done}: {before.available} → {after.available} available{because(reason)}."
            if (await self.ledger.settings(guild_id)).policy is FundingPolicy.PERSONAL:
                text += (
                    " The funding policy is personal, so videos don't use the pool yet; "
                    "change it with /quota policy."
                )
            await send_private(interaction, text)

    @app_commands.command(name="policy")
    @app_commands.describe(policy="Where videos are paid from", reason=REASON_DESCRIPTION)
    @app_commands.choices(
        policy=[Choice(name=name, value=policy.value) for policy, name in POLICY_NAMES.items()]
    )
    async def policy(
        self,
        interaction: discord.Interaction[Paddock],
        policy: Choice[str],
        reason: Reason | None = None,
    ) -> None:
        """Choose where videos are paid from: personal credits, the pool, or both."""
        async with answering(interaction):
            await require_moderator(interaction)
            guild_id, new = self.guild(interaction), FundingPolicy(policy.value)
            old = (await self.ledger.settings(guild_id)).policy
            if old is new:
                await send_private(
                    interaction,
                    f"The funding policy is already {POLICY_NAMES[new]}; nothing changed.",
                )
                return
            await self.ledger.set_policy(
                guild_id, new, actor_id=interaction.user.id, reason=reason or ""
            )
            text = (
                f"Funding policy: {POLICY_NAMES[old]} → {POLICY_NAMES[new]}{because(reason)}. "
                f"{POLICY_WORDS[new]}"
            )
            if new is not FundingPolicy.PERSONAL:
                pool = await self.ledger.pool_balance(guild_id)
                text += f" The server pool has {credits(pool.available)} available"
                text += "; add some with /quota pool." if pool.available == 0 else "."
            await send_private(interaction, text)

    @app_commands.command(name="limits")
    @app_commands.describe(
        job_cost="Most credits one video may cost",
        member_spend="Most credits one member may spend per period",
        member_spend_period="The period of the member spend limit",
        daily_ceiling="Most credits the whole server may spend per UTC day",
        member_jobs="Most videos one member may have running at once",
        server_jobs="Most videos the server may have running at once",
        remove="A limit to lift (back to no limit)",
        reason=REASON_DESCRIPTION,
    )
    @app_commands.choices(
        remove=[
            *(
                Choice(name=name, value=field)
                for field, name in LIMIT_NAMES.items()
                if field != "member_spend_period"
            ),
            Choice(name="all limits", value="all"),
        ]
    )
    async def limits(
        self,
        interaction: discord.Interaction[Paddock],
        job_cost: Range[int, 0, MAX_CREDITS] | None = None,
        member_spend: Range[int, 0, MAX_CREDITS] | None = None,
        member_spend_period: Literal["daily", "weekly", "monthly"] | None = None,
        daily_ceiling: Range[int, 0, MAX_CREDITS] | None = None,
        member_jobs: Range[int, 0, 100] | None = None,
        server_jobs: Range[int, 0, 1000] | None = None,
        remove: Choice[str] | None = None,
        reason: Reason | None = None,
    ) -> None:
        """Set the server's limits; options left out keep their values."""
        async with answering(interaction):
            await require_moderator(interaction)
            guild_id = self.guild(interaction)
            given = {
                "max_job_cost": job_cost,
                "member_spend": member_spend,
                "daily_ceiling": daily_ceiling,
                "member_jobs": member_jobs,
                "server_jobs": server_jobs,
            }
            changes: dict[str, object] = {k: v for k, v in given.items() if v is not None}
            if member_spend_period is not None:
                changes["member_spend_period"] = Period(member_spend_period)
            if remove is not None:
                lifted = list(given) if remove.value == "all" else [remove.value]
                clash = [LIMIT_NAMES[name] for name in lifted if name in changes]
                if clash:
                    await send_private(
                        interaction,
                        f"You both set and removed the {', '.join(clash)}; do one or the "
                        "other. Nothing changed.",
                    )
                    return
                changes.update(dict.fromkeys(lifted))
            update = await self.ledger.update_limits(
                guild_id,
                actor_id=interaction.user.id,
                reason=reason or "",
                **changes,  # type: ignore[arg-type]
            )
            if not update.changed:
                await send_private(
                    interaction,
                    "No limit changed. Leave an option out to keep its value; use remove "
                    f"to lift a limit. The limits are:\n{limits_summary(update.after)}",
                )
                return
            changed = {
                name: (getattr(update.before, name), getattr(update.after, name))
                for name in update.changed
            }
            await send_private(
                interaction,
                f"Changed {limit_changes(changed)}{because(reason)}.\n"
                f"The limits are now:\n{limits_summary(update.after)}",
            )

    # -- server config ---------------------------------------------------------------

    @app_commands.command(name="channels")
    @app_commands.describe(
        action="allow: add a channel; disallow: take one off; list: show them; "
        "everywhere: allow every channel",
        video_channel="The channel to allow or disallow",
        reason=REASON_DESCRIPTION,
    )
    async def channels(
        self,
        interaction: discord.Interaction[Paddock],
        action: Literal["list", "allow", "disallow", "everywhere"],
        video_channel: discord.TextChannel | None = None,
        reason: Reason | None = None,
    ) -> None:
        """Choose the channels where /video may run (none listed: everywhere)."""
        async with answering(interaction):
            await require_moderator(interaction)
            guild_id, actor = self.guild(interaction), interaction.user.id
            config = self.bot.services.config
            if action == "list":
                allowed = await config.allowed_channels(guild_id)
                await send_private(interaction, f"/video runs in {channels_text(allowed)}.")
                return
            if action in ("allow", "disallow") and video_channel is None:
                await send_private(
                    interaction, f"Pick the channel to {action} with the video_channel option."
                )
                return
            if action == "allow":
                assert video_channel is not None
                change = await config.allow_channel(
                    guild_id, video_channel.id, actor_id=actor, reason=reason
                )
            elif action == "disallow":
                assert video_channel is not None
                change = await config.disallow_channel(
                    guild_id, video_channel.id, actor_id=actor, reason=reason
                )
            else:
                change = await config.set_allowed_channels(
                    guild_id, (), actor_id=actor, reason=reason
                )
            if not change.changed:
                if action == "disallow" and not change.before:
                    text = (
                        "/video runs in every channel, so there is nothing to disallow. To "
                        "limit it, allow the channels where it may run with action allow."
                    )
                else:
                    text = f"Nothing changed: /video runs in {channels_text(change.after)}."
                await send_private(interaction, text)
                return
            text = (
                f"/video channels: {channels_text(change.before)} → "
                f"{channels_text(change.after)}{because(reason)}."
            )
            if action == "disallow" and not change.after:
                text += " No channel is listed any more, so /video runs everywhere again."
            await send_private(interaction, text)

    @moderators.command(name="role")
    @app_commands.describe(
        role="The role whose members may use /quota; leave out to remove it",
        reason=REASON_DESCRIPTION,
    )
    async def moderator_role(
        self,
        interaction: discord.Interaction[Paddock],
        role: discord.Role | None = None,
        reason: Reason | None = None,
    ) -> None:
        """Set or remove the role whose members moderate Paddock here."""
        async with answering(interaction):
            member = interaction.user
            if not (isinstance(member, discord.Member) and member.guild_permissions.manage_guild):
                raise NeedsManageServer("change the moderator role")
            if role is not None and role.is_default():
                await send_private(
                    interaction,
                    "@everyone can't be the moderator role: every member would moderate.",
                )
                return
            change = await self.bot.services.config.set_moderator_role(
                self.guild(interaction),
                None if role is None else role.id,
                actor_id=member.id,
                reason=reason,
            )
            if not change.changed:
                await send_private(
                    interaction,
                    f"The moderator role is already {role_text(change.after)}; nothing changed.",
                )
                return
            text = (
                f"Moderator role: {role_text(change.before)} → "
                f"{role_text(change.after)}{because(reason)}."
            )
            if role is None:
                text += " Only members with Manage Server moderate now."
            else:
                text += (
                    " Its members can use /quota without Manage Server. Discord still hides "
                    "/quota from them until you allow the role in Server Settings → "
                    "Integrations → Paddock."
                )
            await send_private(interaction, text)

    # -- the audit log ---------------------------------------------------------------

    @app_commands.command(name="log")
    @app_commands.describe(
        member="Only entries about this member", page="Which page, newest first (15 a page)"
    )
    async def log(
        self,
        interaction: discord.Interaction[Paddock],
        member: discord.Member | None = None,
        page: Range[int, 1, 100] = 1,
    ) -> None:
        """Show the audit log: who changed what, when and why, newest first."""
        async with answering(interaction):
            await require_moderator(interaction)
            guild_id, wanted = self.guild(interaction), page * LOG_PAGE + 1
            entries = await self.ledger.audit_log(
                guild_id, None if member is None else member.id, limit=wanted
            )
            changes = (
                []
                if member is not None
                else await self.bot.services.config.changes(guild_id, wanted)
            )
            merged = newest_first(entries, changes, wanted)
            shown = merged[(page - 1) * LOG_PAGE : page * LOG_PAGE]
            about = "" if member is None else f" about {member.mention}"
            if not shown:
                text = (
                    f"The audit log has nothing{about} yet."
                    if page == 1
                    else f"There is no page {page}."
                )
                await send_private(interaction, text)
                return
            embed = discord.Embed(
                title="Audit log" if member is None else f"Audit log: {member.display_name}",
                description="\n".join(describe_for_moderators(item) for item in shown),
                colour=discord.Colour.dark_gold(),
            )
            footer = f"Page {page}, newest first."
            if len(merged) > page * LOG_PAGE:
                footer += f" Older entries: /quota log page:{page + 1}"
            embed.set_footer(text=footer)
            await send_private(interaction, embed=embed)


async def setup(bot: Paddock) -> None:
    await bot.add_cog(Quota(bot))
