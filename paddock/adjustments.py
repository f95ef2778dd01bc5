"""What moderators change: balances, the pool, blocks, allowances, funding policy, limits.

Each change is journaled with the moderator's id, the time and their reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, replace
from datetime import datetime

from sqlite_utils import Database

from paddock.accounts import (
    POOL_USER,
    Balance,
    LedgerInvariantBroken,
    append_entry,
    balance_of,
    check_amount,
    member_account,
    pool_account,
    post,
    read_settings,
    unrefilled_member_account,
)
from paddock.budget import (
    FundingPolicy,
    GuildSettings,
    Limits,
    LimitsChange,
    Period,
    RoleAllowance,
    timestamp,
)
from paddock.errors import BalanceInUse, InsufficientCredits
from paddock.settings_changes import LIMITS, announce


def grant_in(
    db: Database,
    now: datetime,
    guild_id: int,
    user_id: int,
    amount: int,
    actor_id: int,
    reason: str,
    role_ids: Iterable[int],
) -> Balance:
    check_amount(amount, allow_zero=False, allow_negative=True)
    settings = read_settings(db, guild_id)
    account, level, period = member_account(db, now, settings, user_id, role_ids)
    if amount > 0:
        d_allowance, d_granted = 0, amount
    else:
        take = -amount
        from_granted = min(take, account.granted)  # take back grants before allowance
        d_allowance, d_granted = -(take - from_granted), -from_granted
    posted = post(
        db,
        timestamp(now),
        account.id,
        guild_id,
        user_id,
        "grant",
        d_allowance=d_allowance,
        d_granted=d_granted,
        actor_id=actor_id,
        reason=reason,
        expect=account,
    )
    if posted is None:
        if account.total >= -amount:
            raise BalanceInUse(account.total + amount, account.held)
        raise InsufficientCredits(account.available, -amount, source="this member's balance")
    return balance_of(guild_id, user_id, posted, level, period)


def set_in(
    db: Database,
    now: datetime,
    guild_id: int,
    user_id: int,
    amount: int | None,
    actor_id: int,
    reason: str,
    role_ids: Iterable[int],
) -> Balance:
    """Set the balance to ``amount`` (``None``: to the member's allowance)."""
    settings = read_settings(db, guild_id)
    account, level, period = member_account(db, now, settings, user_id, role_ids)
    target = level if amount is None else check_amount(amount)
    if target < account.held:
        raise BalanceInUse(target, account.held)
    allowance_part = min(target, level)
    posted = post(
        db,
        timestamp(now),
        account.id,
        guild_id,
        user_id,
        "reset" if amount is None else "set",
        d_allowance=allowance_part - account.allowance,
        d_granted=(target - allowance_part) - account.granted,
        actor_id=actor_id,
        reason=reason,
        expect=account,
    )
    if posted is None:
        raise LedgerInvariantBroken(f"set of account {account.id} refused")
    return balance_of(guild_id, user_id, posted, level, period)


def fund_pool_in(
    db: Database, now: datetime, guild_id: int, amount: int, actor_id: int, reason: str
) -> Balance:
    check_amount(amount, allow_zero=False, allow_negative=True)
    pool = pool_account(db, guild_id)
    posted = post(
        db,
        timestamp(now),
        pool.id,
        guild_id,
        None,
        "fund",
        d_granted=amount,
        actor_id=actor_id,
        reason=reason,
    )
    if posted is None:
        if pool.total >= -amount:
            raise BalanceInUse(pool.total + amount, pool.held)
        raise InsufficientCredits(pool.available, -amount, source="the server pool")
    return balance_of(guild_id, POOL_USER, posted)


def block_in(
    db: Database,
    now: datetime,
    guild_id: int,
    user_id: int,
    blocked: bool,
    actor_id: int,
    reason: str,
) -> Balance:
    # No refill here: a block knows nothing of the member's roles, and a refill with the
    # wrong ones would set their allowance to the wrong level for a whole period.
    settings = read_settings(db, guild_id)
    account = unrefilled_member_account(db, guild_id, user_id)
    db.execute("UPDATE accounts SET blocked = ? WHERE id = ?", [int(blocked), account.id])
    append_entry(
        db,
        timestamp(now),
        guild_id,
        "block" if blocked else "unblock",
        user_id=user_id,
        account_id=account.id,
        available=account.available,
        actor_id=actor_id,
        reason=reason,
    )
    blocked_account = account._replace(blocked=int(blocked))
    return balance_of(guild_id, user_id, blocked_account, settings.allowance, settings.period)


def _ensure_settings_row(db: Database, guild_id: int) -> None:
    db.execute(
        "INSERT INTO guild_settings (guild_id) VALUES (?) ON CONFLICT DO NOTHING", [guild_id]
    )


def set_allowance_in(
    db: Database,
    now: datetime,
    guild_id: int,
    amount: int,
    period: Period,
    role_id: int | None,
    actor_id: int,
    reason: str,
) -> None:
    check_amount(amount)
    period = Period(period)
    if role_id is None:
        _ensure_settings_row(db, guild_id)
        db.execute(
            "UPDATE guild_settings SET allowance = ?, period = ? WHERE guild_id = ?",
            [amount, period.value, guild_id],
        )
    else:
        db.execute(
            """
            INSERT INTO role_allowances (guild_id, role_id, allowance, period) VALUES (?, ?, ?, ?)
            ON CONFLICT (guild_id, role_id)
            DO UPDATE SET allowance = excluded.allowance, period = excluded.period
            """,
            [guild_id, role_id, amount, period.value],
        )
    detail = {"allowance": amount, "period": period.value, "role_id": role_id}
    append_entry(
        db, timestamp(now), guild_id, "allowance", actor_id=actor_id, reason=reason, detail=detail
    )


def clear_role_allowance_in(
    db: Database, now: datetime, guild_id: int, role_id: int, actor_id: int, reason: str
) -> bool:
    cursor = db.execute(
        "DELETE FROM role_allowances WHERE guild_id = ? AND role_id = ?", [guild_id, role_id]
    )
    if cursor.rowcount:
        append_entry(
            db,
            timestamp(now),
            guild_id,
            "allowance_cleared",
            actor_id=actor_id,
            reason=reason,
            detail={"role_id": role_id},
        )
    return bool(cursor.rowcount)


def set_policy_in(
    db: Database, now: datetime, guild_id: int, policy: FundingPolicy, actor_id: int, reason: str
) -> None:
    policy = FundingPolicy(policy)
    _ensure_settings_row(db, guild_id)
    db.execute("UPDATE guild_settings SET policy = ? WHERE guild_id = ?", [policy.value, guild_id])
    append_entry(
        db,
        timestamp(now),
        guild_id,
        "policy",
        actor_id=actor_id,
        reason=reason,
        detail={"policy": policy.value},
    )


def set_limits_in(
    db: Database, now: datetime, guild_id: int, limits: Limits, actor_id: int, reason: str
) -> LimitsChange:
    """Replace every limit (``None``: no limit)."""
    before = read_settings(db, guild_id).limits
    return _write_limits(db, now, guild_id, LimitsChange(before, limits), actor_id, reason)


def update_limits_in(
    db: Database,
    now: datetime,
    guild_id: int,
    changes: dict[str, object],
    actor_id: int,
    reason: str,
) -> LimitsChange:
    """Change only the limits named in ``changes``; the others keep their value, whatever
    another write changed before this one. Writes and journals nothing if nothing changes."""
    before = read_settings(db, guild_id).limits
    change = LimitsChange(before, replace(before, **changes))  # type: ignore[arg-type]
    if not change.changed:
        return change
    return _write_limits(db, now, guild_id, change, actor_id, reason)


def _write_limits(
    db: Database, now: datetime, guild_id: int, change: LimitsChange, actor_id: int, reason: str
) -> LimitsChange:
    limits = change.after
    if Period(limits.member_spend_period) is Period.NONE:
        raise ValueError("the member spending limit needs a daily, weekly or monthly period")
    for name in ("max_job_cost", "member_spend", "daily_ceiling", "member_jobs", "server_jobs",
                 "member_slots"):
        value = getattr(limits, name)
        if value is not None:
            check_amount(value)
    if limits.member_slots is not None and limits.member_slots < 1:
        raise ValueError("a member needs at least 1 job at a time; remove the limit instead")
    _ensure_settings_row(db, guild_id)
    announce(db, guild_id, LIMITS)  # at COMMIT: runners re-read the member job cap
    db.execute(
        """
        UPDATE guild_settings
           SET max_job_cost = ?, member_spend = ?, member_spend_period = ?, daily_ceiling = ?,
               member_jobs = ?, server_jobs = ?, member_slots = ?
         WHERE guild_id = ?
        """,
        [
            limits.max_job_cost,
            limits.member_spend,
            Period(limits.member_spend_period).value,
            limits.daily_ceiling,
            limits.member_jobs,
            limits.server_jobs,
            limits.member_slots,
            guild_id,
        ],
    )
    # The limits after the change, and each changed one's [before, after].
    detail: dict[str, object] = asdict(limits)
    detail["changed"] = {
        name: [getattr(change.before, name), getattr(limits, name)] for name in change.changed
    }
    append_entry(
        db, timestamp(now), guild_id, "limits", actor_id=actor_id, reason=reason, detail=detail
    )
    return change


def settings_with_roles(db: Database, guild_id: int) -> GuildSettings:
    settings = read_settings(db, guild_id)
    roles = tuple(
        RoleAllowance(role_id, allowance, Period(period))
        for role_id, allowance, period in db.execute(
            "SELECT role_id, allowance, period FROM role_allowances WHERE guild_id = ?"
            " ORDER BY allowance DESC, role_id",
            [guild_id],
        )
    )
    return GuildSettings(
        guild_id=guild_id,
        policy=settings.policy,
        allowance=settings.allowance,
        period=settings.period,
        limits=settings.limits,
        role_allowances=roles,
    )
