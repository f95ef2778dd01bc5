"""How ``/quota`` puts things into words: settings as moderators read them, a change from
what to what, and the lines of the audit log.

Not a cog (the leading underscore keeps ``setup_hook`` from loading it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from cogs import _limits
from cogs.credits import PERIOD_WORDS, signed, when
from paddock.audit import Entry
from paddock.budget import FundingPolicy, Limits, Period
from paddock.guild_config import MODERATOR_ROLE, ConfigChange, ConfigValue

LOG_LINE = 270  # 15 lines stay inside an embed description's 4096 characters
LOG_REASON = 80  # reasons may be 200 long; the log shows their start

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
    "member_slots": "jobs at the provider at once per member",
}


def because(reason: str | None) -> str:
    """A moderator's reason, as typed (its Markdown shown, not rendered)."""
    return f" (reason: {_limits.escape(reason)})" if reason else ""


def from_to(what: str, before: object, after: object, reason: str | None) -> str:
    """The shape of a ``/quota`` answer: ``what: before → after (reason: why).``"""
    return f"{what}: {before} → {after}{because(reason)}."


def allowance_text(amount: int, period: Period) -> str:
    return f"{amount} {PERIOD_WORDS[period]}" if amount else "none"


def limit_text(name: str, value: object) -> str:
    """One limit's value as moderators read it (``None``: no limit)."""
    if name == "member_spend_period":
        return Period(value).value
    return "no limit" if value is None else str(value)


def limit_changes(changed: Mapping[str, Sequence[object]]) -> str:
    """``per-job cost: no limit → 50; jobs at once per member: 2 → 1`` from each changed
    limit's ``(before, after)``."""
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


def limits_in_short(detail: Mapping[str, object]) -> str:
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
        return _line(item.at, _config_change(item), item.reason, None)
    after = item.available if item.account == "member" else None
    return _line(item.at, _journal_entry(item), item.reason, after)


def _config_change(change: ConfigChange) -> str:
    actor = f"<@{change.actor_id}>"
    if change.setting == MODERATOR_ROLE:
        before, after = role_text(change.before), role_text(change.after)
        return f"{actor} changed the moderator role: {before} → {after}"
    before, after = channels_text(change.before), channels_text(change.after)
    return f"{actor} changed where /video runs: {before} → {after}"


def _journal_entry(entry: Entry) -> str:
    actor = f"<@{entry.actor_id}>" if entry.actor_id else ""
    member = f"<@{entry.user_id}>" if entry.user_id else ""
    job = f"job `{entry.job_id}` of {member}"
    pool = " (server pool)" if entry.account == "pool" else ""
    detail = entry.detail or {}
    match entry.kind:
        case "refill":
            return f"{member} allowance refilled {signed(entry.change)}"
        case "hold":
            return f"{job} held {entry.held_change}{pool}"
        case "settle":
            return f"{job} charged {-entry.change}{pool}"
        case "refund":
            return f"{job} refunded {-entry.held_change}{pool}"
        case "return":
            return f"{job}: its charge of {entry.change} returned{pool}"
        case "grant" if entry.change < 0:
            return f"{actor} took back {-entry.change} from {member}"
        case "grant":
            return f"{actor} granted {signed(entry.change)} to {member}"
        case "set":
            return f"{actor} set the balance of {member} ({signed(entry.change)})"
        case "reset":
            return f"{actor} reset {member} to their allowance ({signed(entry.change)})"
        case "fund":
            return f"{actor} changed the server pool by {signed(entry.change)}"
        case "block" | "unblock":
            return f"{actor} {entry.kind}ed {member}"
        case "allowance":
            role = detail.get("role_id")
            whose = f"of {role_text(role)}" if role else "(server)"
            period = Period(detail.get("period", "none"))
            amount = allowance_text(detail.get("allowance", 0), period)
            return f"{actor} set the allowance {whose} to {amount}"
        case "allowance_cleared":
            return f"{actor} removed the allowance of {role_text(detail.get('role_id'))}"
        case "policy":
            policy = POLICY_NAMES[FundingPolicy(detail.get("policy", "personal"))]
            return f"{actor} set the funding policy to {policy}"
        case "limits" if detail.get("changed"):
            return f"{actor} changed {limit_changes(detail['changed'])}"
        case "limits":  # no from and to recorded (older entries), or nothing changed
            return f"{actor} set the limits: {limits_in_short(detail)}"
        case _:
            return f"{actor or member} {entry.kind} {signed(entry.change)}".strip()


def _line(at: datetime, what: str, reason: str | None, available: int | None) -> str:
    if reason:
        reason = _limits.clip(reason, LOG_REASON)
    text = f"{when(at)} · {what}{because(reason)}"
    if available is not None:
        text += f" → {available} available"
    return _limits.clip(text, LOG_LINE)
