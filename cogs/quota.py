"""/quota: what moderators change (credits, allowances, the pool, limits, /video channels,
the moderator role, blocks), the audit log, and how the video providers are doing. Every
answer is private and says what changed, from what to what (the words are in
``cogs/_quota_words.py``).

Discord hides ``/quota`` from members without Manage Server (default permissions); each
command checks again at run time, so the moderator role works and a member who sees the
command through a permission override is still refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from cogs import _limits
from cogs._checks import (
    NeedsManageServer,
    answering,
    refuse_bots,
    require_moderator,
    send_private,
)
from cogs._quota_words import (
    LIMIT_NAMES,
    POLICY_NAMES,
    allowance_text,
    because,
    channels_text,
    describe_for_moderators,
    from_to,
    limit_changes,
    limits_summary,
    role_text,
)
from cogs.credits import POLICY_WORDS, credits, role_ids
from hh_api import DEMO_PROVIDER
from paddock.budget import FundingPolicy, GuildSettings, Period, RoleAllowance
from paddock.errors import InsufficientCredits, PaddockError
from paddock.guild_config import newest_first
from paddock.routing import ProviderHealth, ProviderState

if TYPE_CHECKING:
    from bot import Paddock
    from paddock.ledger import Ledger

MAX_CREDITS = 1_000_000
LOG_PAGE = 15
NEXT_REFILL = " Members get it at their next refill."

Reason = Range[str, 1, 200]
PeriodName = Literal["daily", "weekly", "monthly", "none"]
REASON_DESCRIPTION = "Why (kept in the audit log)"


class NothingChanged(PaddockError):
    """A moderator's command left everything as it was; the message says why."""


@dataclass(frozen=True)
class Moderation:
    """A moderator's command under way: the server, who acts and why, and the answer."""

    interaction: discord.Interaction[Paddock]
    reason: str  # "" when none was given

    @classmethod
    async def begin(
        cls, interaction: discord.Interaction[Paddock], reason: str | None = None
    ) -> Moderation:
        """Raises :class:`~cogs._checks.NotModerator` unless the member moderates here."""
        await require_moderator(interaction)
        return cls(interaction, reason or "")

    @property
    def guild_id(self) -> int:
        assert self.interaction.guild_id is not None  # guild_only
        return self.interaction.guild_id

    @property
    def actor_id(self) -> int:
        return self.interaction.user.id

    async def answer(
        self, content: str | None = None, *, embed: discord.Embed | None = None
    ) -> None:
        await send_private(self.interaction, content, embed=embed)


def credit_roles(member: discord.Member) -> list[int]:
    """The roles a refill of ``member`` goes by; refuses bots, which have no credits."""
    refuse_bots(member)
    return role_ids(member)


def role_allowance(settings: GuildSettings, role: discord.Role) -> RoleAllowance | None:
    return next((r for r in settings.role_allowances if r.role_id == role.id), None)


def requested_limits(
    given: dict[str, int | None], period: str | None, remove: str | None
) -> dict[str, object]:
    """The limits ``/quota limits`` was asked to change: those given, the period, and
    ``None`` for each one removed (``remove="all"``: every limit)."""
    changes: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    if period is not None:
        changes["member_spend_period"] = Period(period)
    if remove is not None:
        lifted = list(given) if remove == "all" else [remove]
        clash = [LIMIT_NAMES[name] for name in lifted if name in changes]
        if clash:
            raise NothingChanged(
                f"You both set and removed the {', '.join(clash)}; do one or the other. "
                "Nothing changed."
            )
        changes.update(dict.fromkeys(lifted))
    return changes


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
            mod = await Moderation.begin(interaction, reason)
            roles = credit_roles(member)
            try:
                after = await self.ledger.grant(
                    mod.guild_id,
                    member.id,
                    amount,
                    actor_id=mod.actor_id,
                    reason=mod.reason,
                    role_ids=roles,
                )
            except InsufficientCredits as error:
                raise NothingChanged(
                    f"Can't take back {credits(-amount)} from {member.mention}: they have "
                    f"{error.available} available. Nothing changed."
                ) from None
            if amount > 0:
                done = f"Granted {credits(amount)} to {member.mention}"
            else:
                done = f"Took back {credits(-amount)} from {member.mention}"
            before = after.available - amount  # a grant moves nothing else, refills included
            await mod.answer(from_to(done, before, f"{after.available} available", mod.reason))

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
            mod = await Moderation.begin(interaction, reason)
            roles = credit_roles(member)
            before = await self.ledger.balance(mod.guild_id, member.id, role_ids=roles)
            after = await self.ledger.set_balance(
                mod.guild_id,
                member.id,
                amount,
                actor_id=mod.actor_id,
                reason=mod.reason,
                role_ids=roles,
            )
            held = f" ({after.held} held by running jobs)" if after.held else ""
            await mod.answer(
                from_to(
                    f"Set the balance of {member.mention} to {credits(amount)}",
                    before.available,
                    f"{after.available} available{held}",
                    mod.reason,
                )
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
            mod = await Moderation.begin(interaction, reason)
            roles = credit_roles(member)
            before = await self.ledger.balance(mod.guild_id, member.id, role_ids=roles)
            after = await self.ledger.reset_to_allowance(
                mod.guild_id, member.id, actor_id=mod.actor_id, reason=mod.reason, role_ids=roles
            )
            await mod.answer(
                from_to(
                    f"Reset {member.mention} to their allowance of {after.allowance_level}",
                    before.available,
                    f"{after.available} available, granted credits {before.granted} → "
                    f"{after.granted}",
                    mod.reason,
                )
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
            mod = await Moderation.begin(interaction, reason)
            roles = credit_roles(member)
            if (await self.ledger.balance(mod.guild_id, member.id, role_ids=roles)).blocked:
                raise NothingChanged(f"{member.mention} is already blocked; nothing changed.")
            await self.ledger.block(
                mod.guild_id, member.id, actor_id=mod.actor_id, reason=mod.reason
            )
            await mod.answer(
                from_to(f"Blocked {member.mention}", "not blocked", "blocked", mod.reason)
                + " They can't start videos here; jobs already running finish. Undo with "
                "/quota unblock."
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
            mod = await Moderation.begin(interaction, reason)
            roles = credit_roles(member)
            if not (await self.ledger.balance(mod.guild_id, member.id, role_ids=roles)).blocked:
                raise NothingChanged(f"{member.mention} isn't blocked; nothing changed.")
            await self.ledger.unblock(
                mod.guild_id, member.id, actor_id=mod.actor_id, reason=mod.reason
            )
            await mod.answer(
                from_to(f"Unblocked {member.mention}", "blocked", "not blocked", mod.reason)
                + " They can make videos again."
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
            mod = await Moderation.begin(interaction, reason)
            if role is not None and role.is_default():
                raise NothingChanged(
                    "@everyone is every member: leave role out to set the server's allowance."
                )
            settings = await self.ledger.settings(mod.guild_id)
            if role is None:
                whose = "Server allowance"
                before = allowance_text(settings.allowance, settings.period)
            else:
                whose = f"Allowance of {role.mention}"
                override = role_allowance(settings, role)
                before = (
                    "server default"
                    if override is None
                    else allowance_text(override.allowance, override.period)
                )
            await self.ledger.set_allowance(
                mod.guild_id,
                amount,
                Period(period),
                role_id=None if role is None else role.id,
                actor_id=mod.actor_id,
                reason=mod.reason,
            )
            after = allowance_text(amount, Period(period))
            await mod.answer(from_to(whose, before, after, mod.reason) + NEXT_REFILL)

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
            mod = await Moderation.begin(interaction, reason)
            settings = await self.ledger.settings(mod.guild_id)
            override = role_allowance(settings, role)
            cleared = await self.ledger.clear_role_allowance(
                mod.guild_id, role.id, actor_id=mod.actor_id, reason=mod.reason
            )
            if not cleared or override is None:
                raise NothingChanged(
                    f"{role.mention} has no allowance of its own; nothing changed."
                )
            before = allowance_text(override.allowance, override.period)
            after = f"server default ({allowance_text(settings.allowance, settings.period)})"
            await mod.answer(
                from_to(f"Allowance of {role.mention}", before, after, mod.reason) + NEXT_REFILL
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
            mod = await Moderation.begin(interaction, reason)
            try:
                after = await self.ledger.fund_pool(
                    mod.guild_id, amount, actor_id=mod.actor_id, reason=mod.reason
                )
            except InsufficientCredits as error:
                raise NothingChanged(
                    f"Can't take {credits(-amount)} out of the server pool: it has "
                    f"{error.available} available. Nothing changed."
                ) from None
            if amount > 0:
                done = f"Added {credits(amount)} to the server pool"
            else:
                done = f"Took {credits(-amount)} out of the server pool"
            before = after.available - amount  # funding moves nothing else
            text = from_to(done, before, f"{after.available} available", mod.reason)
            if (await self.ledger.settings(mod.guild_id)).policy is FundingPolicy.PERSONAL:
                text += (
                    " The funding policy is personal, so videos don't use the pool yet; "
                    "change it with /quota policy."
                )
            await mod.answer(text)

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
            mod = await Moderation.begin(interaction, reason)
            new = FundingPolicy(policy.value)
            old = (await self.ledger.settings(mod.guild_id)).policy
            if old is new:
                raise NothingChanged(
                    f"The funding policy is already {POLICY_NAMES[new]}; nothing changed."
                )
            await self.ledger.set_policy(
                mod.guild_id, new, actor_id=mod.actor_id, reason=mod.reason
            )
            text = from_to("Funding policy", POLICY_NAMES[old], POLICY_NAMES[new], mod.reason)
            text += f" {POLICY_WORDS[new]}"
            if new is not FundingPolicy.PERSONAL:
                pool = await self.ledger.pool_balance(mod.guild_id)
                text += f" The server pool has {credits(pool.available)} available"
                text += "; add some with /quota pool." if pool.available == 0 else "."
            await mod.answer(text)

    @app_commands.command(name="limits")
    @app_commands.describe(
        job_cost="Most credits one video may cost",
        member_spend="Most credits one member may spend per period",
        member_spend_period="The period of the member spend limit",
        daily_ceiling="Most credits the whole server may spend per UTC day",
        member_jobs="Most videos one member may have queued or running (more are refused)",
        server_jobs="Most videos the server may have running at once",
        member_slots="Most of one member's videos at the provider at once (more wait in "
        "line, others go first; 2 unless changed)",
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
        member_slots: Range[int, 1, 100] | None = None,
        remove: Choice[str] | None = None,
        reason: Reason | None = None,
    ) -> None:
        """Set the server's limits; options left out keep their values."""
        async with answering(interaction):
            mod = await Moderation.begin(interaction, reason)
            given = {
                "max_job_cost": job_cost,
                "member_spend": member_spend,
                "daily_ceiling": daily_ceiling,
                "member_jobs": member_jobs,
                "server_jobs": server_jobs,
                "member_slots": member_slots,
            }
            changes = requested_limits(
                given, member_spend_period, None if remove is None else remove.value
            )
            update = await self.ledger.update_limits(
                mod.guild_id,
                actor_id=mod.actor_id,
                reason=mod.reason,
                **changes,  # type: ignore[arg-type]
            )
            if not update.changed:
                raise NothingChanged(
                    "No limit changed. Leave an option out to keep its value; use remove "
                    f"to lift a limit. The limits are:\n{limits_summary(update.after)}"
                )
            if "member_slots" in update.changed:  # jobs waiting in line may start now
                await self.bot.runner.refresh_member_slots(mod.guild_id)
            changed = {
                name: (getattr(update.before, name), getattr(update.after, name))
                for name in update.changed
            }
            await mod.answer(
                f"Changed {limit_changes(changed)}{because(mod.reason)}.\n"
                f"The limits are now:\n{limits_summary(update.after)}"
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
            mod = await Moderation.begin(interaction, reason)
            config = self.bot.services.config
            if action == "list":
                allowed = await config.allowed_channels(mod.guild_id)
                await mod.answer(f"/video runs in {channels_text(allowed)}.")
                return
            if action == "everywhere":
                change = await config.set_allowed_channels(
                    mod.guild_id, (), actor_id=mod.actor_id, reason=mod.reason
                )
            elif video_channel is None:
                raise NothingChanged(f"Pick the channel to {action} with the video_channel option.")
            elif action == "allow":
                change = await config.allow_channel(
                    mod.guild_id, video_channel.id, actor_id=mod.actor_id, reason=mod.reason
                )
            else:
                change = await config.disallow_channel(
                    mod.guild_id, video_channel.id, actor_id=mod.actor_id, reason=mod.reason
                )
            if not change.changed and action == "disallow" and not change.before:
                raise NothingChanged(
                    "/video runs in every channel, so there is nothing to disallow. To "
                    "limit it, allow the channels where it may run with action allow."
                )
            if not change.changed:
                raise NothingChanged(
                    f"Nothing changed: /video runs in {channels_text(change.after)}."
                )
            text = from_to(
                "/video channels",
                channels_text(change.before),
                channels_text(change.after),
                mod.reason,
            )
            if action == "disallow" and not change.after:
                text += " No channel is listed any more, so /video runs everywhere again."
            await mod.answer(text)

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
        # Not Moderation.begin: only Manage Server, so a moderator role can't widen itself.
        async with answering(interaction):
            member = interaction.user
            if not (isinstance(member, discord.Member) and member.guild_permissions.manage_guild):
                raise NeedsManageServer("change the moderator role")
            mod = Moderation(interaction, reason or "")
            if role is not None and role.is_default():
                raise NothingChanged(
                    "@everyone can't be the moderator role: every member would moderate."
                )
            change = await self.bot.services.config.set_moderator_role(
                mod.guild_id,
                None if role is None else role.id,
                actor_id=mod.actor_id,
                reason=mod.reason,
            )
            if not change.changed:
                raise NothingChanged(
                    f"The moderator role is already {role_text(change.after)}; nothing changed."
                )
            text = from_to(
                "Moderator role", role_text(change.before), role_text(change.after), mod.reason
            )
            if role is None:
                text += " Only members with Manage Server moderate now."
            else:
                text += (
                    " Its members can use /quota without Manage Server. Discord still hides "
                    "/quota from them until you allow the role in Server Settings → "
                    "Integrations → Paddock."
                )
            await mod.answer(text)

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
            mod = await Moderation.begin(interaction)
            wanted = page * LOG_PAGE + 1
            entries = await self.ledger.audit_log(
                mod.guild_id, None if member is None else member.id, limit=wanted
            )
            changes = (
                []
                if member is not None
                else await self.bot.services.config.changes(mod.guild_id, wanted)
            )
            merged = newest_first(entries, changes, wanted)
            shown = merged[(page - 1) * LOG_PAGE : page * LOG_PAGE]
            if not shown:
                about = "" if member is None else f" about {member.mention}"
                empty = f"The audit log has nothing{about} yet."
                await mod.answer(empty if page == 1 else f"There is no page {page}.")
                return
            whose = "" if member is None else _limits.member_text(member.display_name, 100)
            embed = discord.Embed(
                title="Audit log" if member is None else f"Audit log: {whose}",
                description="\n".join(describe_for_moderators(item) for item in shown),
                colour=discord.Colour.dark_gold(),
            )
            footer = f"Page {page}, newest first."
            if len(merged) > page * LOG_PAGE:
                footer += f" Older entries: /quota log page:{page + 1}"
            embed.set_footer(text=footer)
            await mod.answer(embed=embed)

    # -- the providers -----------------------------------------------------------------

    @app_commands.command(name="providers")
    async def providers(self, interaction: discord.Interaction[Paddock]) -> None:
        """Show each video provider's state, prices, success rate and render time."""
        async with answering(interaction):
            mod = await Moderation.begin(interaction)
            bot = self.bot
            hh = bot.services.hh
            lines = []
            for name, spec in hh.providers.items():
                keyed = bool(spec.config.api_key) or name == DEMO_PROVIDER
                health = bot.router.health.report(name)
                prices = " · ".join(
                    f"{resolution} {_rate(hh.prices.rate(name, resolution))}/s"
                    for resolution in ("720p", "1080p")
                )
                median = bot.router.median_render_seconds(name)
                render = "no renders yet" if median is None else f"median render {median:.0f} s"
                lines.append(f"**{spec.title}**: {_state_words(health, keyed)}\n"
                             f"{prices} credits · {_success_words(health)} · {render}")
            default = bot.settings.default_provider or "none"
            embed = discord.Embed(title="Video providers", description="\n\n".join(lines),
                                  colour=discord.Colour.dark_gold())
            embed.set_footer(text=f"Default: {default}. Members may pick auto or a provider "
                                  "in /video; auto takes the cheapest one working now.")
            await mod.answer(embed=embed)


def _rate(rate: Decimal) -> str:
    return f"{rate.normalize():f}"  # 14, 18.9


def _state_words(health: ProviderHealth, keyed: bool) -> str:
    if not keyed:
        return f"no key (set {health.provider.upper()}_API_KEY)"
    if health.state is ProviderState.KEY_REFUSED:
        return (f"key refused: jobs skip it until {health.provider.upper()}_API_KEY is "
                f"replaced and the bot restarted")
    if health.state is ProviderState.COOLING and health.cooling_for is not None:
        back = int(time.time() + health.cooling_for)
        return f"cooling down until <t:{back}:T> after errors ({health.cooldowns} so far)"
    if health.state is ProviderState.PROBING:
        return "cooldown over: the next job checks whether it is back"
    return "ok"


def _success_words(health: ProviderHealth) -> str:
    if health.success_rate is None:
        return "no recent jobs"
    return f"{health.success_rate:.0%} of the last {health.recent} submits and renders ok"


async def setup(bot: Paddock) -> None:
    await bot.add_cog(Quota(bot))
