"""Member and pool accounts, and posting: the one place where a balance changes.

:func:`post` applies deltas to an account's cached figures with a conditional UPDATE and
appends the matching journal row in the same transaction, so the cache always equals the
journal. Everything here runs inside a write transaction of :class:`paddock.store.Store`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlite_utils import Database

from paddock.budget import (
    FundingPolicy,
    GuildSettings,
    Limits,
    Period,
    parse_timestamp,
    refill_due,
    timestamp,
)
from paddock.errors import InvalidAmount

POOL_USER = 0  # accounts.user_id of a server's pool


class LedgerInvariantBroken(RuntimeError):
    """A guarded update that cannot fail did: the database was changed behind our back."""


@dataclass(frozen=True, slots=True)
class Balance:
    """One account's figures. For the pool, ``user_id`` is 0 and ``allowance`` is 0."""

    guild_id: int
    user_id: int
    allowance: int
    granted: int
    held: int
    allowance_level: int = 0  # what a refill tops the allowance part up to
    period: Period = Period.NONE
    blocked: bool = False

    @property
    def total(self) -> int:
        return self.allowance + self.granted

    @property
    def available(self) -> int:
        return self.allowance + self.granted - self.held


class Account(NamedTuple):
    id: int
    allowance: int
    granted: int
    held: int
    refilled_at: str | None  # the last refill (None: never filled, or the pool)
    blocked: int

    @property
    def available(self) -> int:
        return self.allowance + self.granted - self.held

    @property
    def total(self) -> int:
        return self.allowance + self.granted


ACCOUNT_COLUMNS = "id, allowance, granted, held, refilled_at, blocked"


def check_amount(amount: object, *, allow_zero: bool = True, allow_negative: bool = False) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidAmount(amount, "credits are whole numbers")
    if amount < 0 and not allow_negative:
        raise InvalidAmount(amount, "it can't be negative")
    if amount == 0 and not allow_zero:
        raise InvalidAmount(amount, "it can't be zero")
    return amount


def fetch_account_by_id(db: Database, account_id: int) -> Account:
    row = db.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", [account_id])
    return Account(*row.fetchone())


def fetch_account(db: Database, guild_id: int, kind: str, user_id: int) -> Account | None:
    row = db.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE guild_id = ? AND kind = ? AND user_id = ?",
        [guild_id, kind, user_id],
    ).fetchone()
    return None if row is None else Account(*row)


def post(
    db: Database,
    at: str,
    account_id: int,
    guild_id: int,
    user_id: int | None,
    kind: str,
    *,
    d_allowance: int = 0,
    d_granted: int = 0,
    d_held: int = 0,
    job_id: str | None = None,
    actor_id: int | None = None,
    reason: str | None = None,
    expect: Account | None = None,
) -> Account | None:
    """Apply deltas to one account and journal them, if the result keeps every invariant.

    The condition lives in the UPDATE, so a concurrent change can never be lost or
    overdraw: it returns ``None`` (and writes nothing) when the account can't take it.
    Pass ``expect``, the figures the deltas were computed from, to also require that the
    account still has them (so no computed delta ever applies to a balance it wasn't
    computed for).
    """
    params = {"id": account_id, "da": d_allowance, "dg": d_granted, "dh": d_held}
    unchanged = ""
    if expect is not None:
        unchanged = "AND allowance = :ea AND granted = :eg AND held = :eh"
        params.update(ea=expect.allowance, eg=expect.granted, eh=expect.held)
    row = db.execute(
        f"""
        UPDATE accounts
           SET allowance = allowance + :da, granted = granted + :dg, held = held + :dh
         WHERE id = :id {unchanged}
           AND allowance + :da >= 0 AND granted + :dg >= 0 AND held + :dh >= 0
           AND allowance + :da + granted + :dg >= held + :dh
        RETURNING {ACCOUNT_COLUMNS}
        """,
        params,
    ).fetchone()
    if row is None:
        return None
    account = Account(*row)
    append_entry(
        db,
        at,
        guild_id,
        kind,
        user_id=user_id,
        account_id=account_id,
        job_id=job_id,
        d_allowance=d_allowance,
        d_granted=d_granted,
        d_held=d_held,
        available=account.available,
        actor_id=actor_id,
        reason=reason,
    )
    return account


def append_entry(
    db: Database,
    at: str,
    guild_id: int,
    kind: str,
    *,
    user_id: int | None = None,
    account_id: int | None = None,
    job_id: str | None = None,
    d_allowance: int = 0,
    d_granted: int = 0,
    d_held: int = 0,
    available: int | None = None,
    actor_id: int | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    db.execute(
        """
        INSERT INTO journal (at, guild_id, user_id, account_id, kind, job_id, d_allowance,
                             d_granted, d_held, available, actor_id, reason, detail)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            at,
            guild_id,
            user_id,
            account_id,
            kind,
            job_id,
            d_allowance,
            d_granted,
            d_held,
            available,
            actor_id,
            reason,
            None if detail is None else json.dumps(detail, sort_keys=True),
        ],
    )


def read_settings(db: Database, guild_id: int) -> GuildSettings:
    row = db.execute(
        """
        SELECT policy, allowance, period, max_job_cost, member_spend, member_spend_period,
               daily_ceiling, member_jobs, server_jobs, member_slots
          FROM guild_settings WHERE guild_id = ?
        """,
        [guild_id],
    ).fetchone()
    if row is None:
        return GuildSettings(guild_id)
    return GuildSettings(
        guild_id=guild_id,
        policy=FundingPolicy(row[0]),
        allowance=row[1],
        period=Period(row[2]),
        limits=Limits(
            max_job_cost=row[3],
            member_spend=row[4],
            member_spend_period=Period(row[5]),
            daily_ceiling=row[6],
            member_jobs=row[7],
            server_jobs=row[8],
            member_slots=row[9],
        ),
    )


def never_funded(db: Database, guild_id: int) -> bool:
    """Whether nobody on the server was ever given credits: no allowance (server or role)
    and no grant, set or pool funding in the journal. A new server starts like this."""
    row = db.execute(
        """
        SELECT (SELECT COALESCE(MAX(allowance), 0) FROM guild_settings WHERE guild_id = :g)
             + (SELECT COALESCE(MAX(allowance), 0) FROM role_allowances WHERE guild_id = :g)
             + (SELECT COUNT(*) FROM journal WHERE guild_id = :g AND d_granted > 0)
        """,
        {"g": guild_id},
    ).fetchone()
    return row[0] == 0


def allowance_for(
    db: Database, settings: GuildSettings, role_ids: Iterable[int]
) -> tuple[int, Period]:
    """The member's allowance: their roles' highest override, else the server default.

    Between overrides of the same amount, the one refilled most often wins.
    """
    roles = sorted({int(r) for r in role_ids})
    if roles:
        marks = ", ".join("?" for _ in roles)
        row = db.execute(
            f"""
            SELECT allowance, period FROM role_allowances
             WHERE guild_id = ? AND role_id IN ({marks})
             ORDER BY allowance DESC,
                      CASE period WHEN 'daily' THEN 0 WHEN 'weekly' THEN 1
                                  WHEN 'monthly' THEN 2 ELSE 3 END,
                      role_id
             LIMIT 1
            """,
            [settings.guild_id, *roles],
        ).fetchone()
        if row is not None:
            return row[0], Period(row[1])
    return settings.allowance, settings.period


def member_account(
    db: Database,
    now: datetime,
    settings: GuildSettings,
    user_id: int,
    role_ids: Iterable[int],
) -> tuple[Account, int, Period]:
    """The member's account, created and refilled as due; with their allowance and period.

    ``role_ids`` must be the member's current roles: they decide the allowance a due
    refill brings the allowance part to (see :func:`refill`).
    """
    level, period = allowance_for(db, settings, role_ids)
    account = unrefilled_member_account(db, settings.guild_id, user_id)
    if refill_due(period, parse_timestamp(account.refilled_at), now):
        account = refill(db, now, settings.guild_id, user_id, account, level)
    return account, level, period


def unrefilled_member_account(db: Database, guild_id: int, user_id: int) -> Account:
    """The member's account as stored, created empty (and never filled) if missing."""
    account = fetch_account(db, guild_id, "member", user_id)
    if account is None:
        row = db.execute(
            "INSERT INTO accounts (guild_id, kind, user_id) VALUES (?, 'member', ?) RETURNING id",
            [guild_id, user_id],
        ).fetchone()
        account = Account(row[0], 0, 0, 0, None, 0)
    return account


def refill(
    db: Database, now: datetime, guild_id: int, user_id: int, account: Account, level: int
) -> Account:
    """Start a new allowance period: the allowance part becomes ``level``, up or down.

    Unspent allowance does not roll over. The one exception keeps pending holds covered
    the way they were reserved: spending takes the allowance part first, so holds count
    against it first, and the part never drops below ``min(allowance, held)``. Granted
    credits are never touched. Records the refill time, even when nothing changes.
    """
    at = timestamp(now)
    db.execute("UPDATE accounts SET refilled_at = ? WHERE id = ?", [at, account.id])
    account = account._replace(refilled_at=at)
    target = max(level, min(account.allowance, account.held))
    if target == account.allowance:
        return account
    refilled = post(
        db,
        at,
        account.id,
        guild_id,
        user_id,
        "refill",
        d_allowance=target - account.allowance,
        expect=account,
    )
    if refilled is None:
        raise LedgerInvariantBroken(f"refill of account {account.id} refused")
    return refilled


def pool_account(db: Database, guild_id: int) -> Account:
    account = fetch_account(db, guild_id, "pool", POOL_USER)
    if account is None:
        row = db.execute(
            "INSERT INTO accounts (guild_id, kind, user_id) VALUES (?, 'pool', ?) RETURNING id",
            [guild_id, POOL_USER],
        ).fetchone()
        account = Account(row[0], 0, 0, 0, None, 0)
    return account


def balance_of(
    guild_id: int, user_id: int, account: Account, level: int = 0, period: Period = Period.NONE
) -> Balance:
    return Balance(
        guild_id=guild_id,
        user_id=user_id,
        allowance=account.allowance,
        granted=account.granted,
        held=account.held,
        allowance_level=level,
        period=period,
        blocked=bool(account.blocked),
    )
