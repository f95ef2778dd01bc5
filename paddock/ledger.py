"""The credit ledger: two-phase holds on SQLite, after TigerBeetle.

Accounts
    Each member has a personal account per server; each server has one shared pool. Amounts
    are whole credits. A member account's balance has two parts, kept apart:

    * ``allowance``: what is left of the periodic allowance;
    * ``granted``: credits given by moderators (``grant``, ``set``), on top of the allowance.

    ``held`` is the sum of pending holds, and ``available = allowance + granted - held``.

Refills and grants
    The allowance is the server default, unless the member has roles with an allowance
    override, in which case the highest of those applies (even if lower than the default).
    Refills are lazy: on the first operation in a new period (UTC day, ISO week from Monday,
    or calendar month) the allowance part is topped up to the allowance, never above it;
    unspent allowance does not roll over and the ``granted`` part is never touched by a
    refill. Spending takes from the allowance part first and then from granted credits, so
    grants last until they are used. A negative grant takes from granted credits first.
    ``set_balance(n)`` makes the balance ``n``: up to the allowance in the allowance part,
    the rest as granted credits; ``reset_to_allowance`` is ``set_balance(allowance)``.
    With period ``none`` the account is filled once, when it is created.

Two-phase transfers
    ``reserve`` holds credits for a job in one ``BEGIN IMMEDIATE`` transaction whose balance
    check is the conditional statement itself (``UPDATE ... WHERE allowance + granted - held
    >= amount``); pending holds count against the balance at once. ``settle`` charges up to
    the held amount and releases the rest; ``refund`` releases everything. Each job's hold
    is resolved exactly once: repeating an operation with the same job id returns the first
    outcome, and a repeat that disagrees raises :class:`ConflictingResolution` (or
    :class:`ConflictingReservation`). A settle for more than was held charges the held
    amount: the estimate the member agreed to is the most they pay.

Journal
    Every change, including moderators' setting changes, is one row of an append-only
    ``journal`` (triggers refuse UPDATE and DELETE), with who, when and why. The cached
    balances in ``accounts`` always equal the journal's sums; :meth:`Ledger.check` proves
    it. Every balance change goes through :func:`_post`, which writes both in one step.

The ``*_in(db, now, ...)`` functions are the same operations for use inside another write
transaction (the job store resolves a job's hold in the same transaction as its state).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlite_utils import Database

from paddock.budget import (
    FundingPolicy,
    GuildSettings,
    Limits,
    Period,
    RoleAllowance,
    parse_timestamp,
    period_key,
    period_start,
    timestamp,
    utc,
    utcnow,
)
from paddock.errors import (
    BalanceInUse,
    ConflictingReservation,
    ConflictingResolution,
    InsufficientCredits,
    InvalidAmount,
    LimitExceeded,
    MemberBlocked,
    UnknownHold,
)
from paddock.store import Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
POOL_USER = 0  # accounts.user_id of a server's pool


class LedgerInvariantBroken(RuntimeError):
    """A guarded update that cannot fail did: the database was changed behind our back."""


# -- results --------------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class Hold:
    """A job's two-phase transfer: ``pending`` until ``settled`` or ``refunded``."""

    job_id: str
    guild_id: int
    user_id: int
    amount: int
    from_personal: int
    from_pool: int
    state: str
    charged: int | None
    reserved_at: datetime
    resolved_at: datetime | None

    @property
    def released(self) -> int:
        """Credits given back when the hold was resolved (0 while pending)."""
        return 0 if self.state == "pending" else self.amount - (self.charged or 0)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``reserve`` did: the hold, and what was left available right after it."""

    hold: Hold
    personal_available: int
    pool_available: int | None

    @property
    def job_id(self) -> str:
        return self.hold.job_id

    @property
    def amount(self) -> int:
        return self.hold.amount

    @property
    def from_personal(self) -> int:
        return self.hold.from_personal

    @property
    def from_pool(self) -> int:
        return self.hold.from_pool


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal row, as history and the audit log show it."""

    id: int
    at: datetime
    guild_id: int
    user_id: int | None
    account: str | None  # 'member', 'pool', or None for a settings change
    kind: str
    job_id: str | None
    change: int  # change of the posted balance (allowance + granted)
    held_change: int
    available: int | None  # the account's available credits after this entry
    actor_id: int | None
    reason: str | None
    detail: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What :meth:`Ledger.check` looked at, and every inconsistency it found."""

    accounts: int
    entries: int
    holds: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


# -- rows -----------------------------------------------------------------------------------


class _Account(NamedTuple):
    id: int
    allowance: int
    granted: int
    held: int
    period_key: str | None
    blocked: int

    @property
    def available(self) -> int:
        return self.allowance + self.granted - self.held

    @property
    def total(self) -> int:
        return self.allowance + self.granted


_ACCOUNT_COLUMNS = "id, allowance, granted, held, period_key, blocked"
_HOLD_COLUMNS = (
    "job_id, guild_id, user_id, amount, from_personal, from_pool, state, charged, "
    "reserved_at, resolved_at, personal_account, pool_account, personal_available, "
    "pool_available"
)


def _hold_from_row(row: tuple[Any, ...]) -> Hold:
    reserved_at = parse_timestamp(row[8])
    assert reserved_at is not None
    return Hold(
        job_id=row[0],
        guild_id=row[1],
        user_id=row[2],
        amount=row[3],
        from_personal=row[4],
        from_pool=row[5],
        state=row[6],
        charged=row[7],
        reserved_at=reserved_at,
        resolved_at=parse_timestamp(row[9]),
    )


def _fetch_hold(db: Database, job_id: str) -> tuple[Any, ...] | None:
    return db.execute(f"SELECT {_HOLD_COLUMNS} FROM holds WHERE job_id = ?", [job_id]).fetchone()


def _fetch_account(db: Database, guild_id: int, kind: str, user_id: int) -> _Account | None:
    row = db.execute(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE guild_id = ? AND kind = ? AND user_id = ?",
        [guild_id, kind, user_id],
    ).fetchone()
    return None if row is None else _Account(*row)


def _check_amount(amount: object, *, allow_zero: bool = True, allow_negative: bool = False) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidAmount(amount, "credits are whole numbers")
    if amount < 0 and not allow_negative:
        raise InvalidAmount(amount, "it can't be negative")
    if amount == 0 and not allow_zero:
        raise InvalidAmount(amount, "it can't be zero")
    return amount


# -- posting: the only place balances change ------------------------------------------------


def _post(
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
) -> _Account | None:
    """Apply deltas to one account and journal them, if the result keeps every invariant.

    The condition lives in the UPDATE, so a concurrent change can never be lost or
    overdraw: it returns ``None`` (and writes nothing) when the account can't take it.
    """
    row = db.execute(
        f"""
        UPDATE accounts
           SET allowance = allowance + :da, granted = granted + :dg, held = held + :dh
         WHERE id = :id
           AND allowance + :da >= 0 AND granted + :dg >= 0 AND held + :dh >= 0
           AND allowance + :da + granted + :dg >= held + :dh
        RETURNING {_ACCOUNT_COLUMNS}
        """,
        {"id": account_id, "da": d_allowance, "dg": d_granted, "dh": d_held},
    ).fetchone()
    if row is None:
        return None
    account = _Account(*row)
    _journal(
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


def _hold_credits(
    db: Database, at: str, account_id: int, guild_id: int, user_id: int, job_id: str, amount: int
) -> _Account | None:
    """The reservation check: hold ``amount`` only if that much is available, in one UPDATE."""
    row = db.execute(
        f"""
        UPDATE accounts SET held = held + :amount
         WHERE id = :id AND allowance + granted - held >= :amount
        RETURNING {_ACCOUNT_COLUMNS}
        """,
        {"id": account_id, "amount": amount},
    ).fetchone()
    if row is None:
        return None
    account = _Account(*row)
    _journal(
        db,
        at,
        guild_id,
        "hold",
        user_id=user_id,
        account_id=account_id,
        job_id=job_id,
        d_held=amount,
        available=account.available,
    )
    return account


def _journal(
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


# -- settings and accounts ------------------------------------------------------------------


def _settings(db: Database, guild_id: int) -> GuildSettings:
    row = db.execute(
        """
        SELECT policy, allowance, period, max_job_cost, member_spend, member_spend_period,
               daily_ceiling, member_jobs, server_jobs
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
        ),
    )


def _allowance_for(
    db: Database, settings: GuildSettings, role_ids: Iterable[int]
) -> tuple[int, Period]:
    """The member's allowance: their roles' highest override, else the server default."""
    roles = [int(r) for r in role_ids]
    if roles:
        row = db.execute(
            """
            SELECT allowance, period FROM role_allowances
             WHERE guild_id = ? AND role_id IN (SELECT value FROM json_each(?))
             ORDER BY allowance DESC LIMIT 1
            """,
            [settings.guild_id, json.dumps(roles)],
        ).fetchone()
        if row is not None:
            return row[0], Period(row[1])
    return settings.allowance, settings.period


def _member_account(
    db: Database,
    now: datetime,
    settings: GuildSettings,
    user_id: int,
    role_ids: Iterable[int],
) -> tuple[_Account, int, Period]:
    """The member's account, created and refilled as due; with their allowance and period."""
    guild_id = settings.guild_id
    at = timestamp(now)
    level, period = _allowance_for(db, settings, role_ids)
    key = period_key(period, now)
    account = _fetch_account(db, guild_id, "member", user_id)
    if account is None:
        cursor = db.execute(
            "INSERT INTO accounts (guild_id, kind, user_id, period_key) VALUES (?, 'member', ?, ?)",
            [guild_id, user_id, key],
        )
        account = _Account(cursor.lastrowid or 0, 0, 0, 0, key, 0)
        top_up = level
    elif account.period_key != key:
        db.execute("UPDATE accounts SET period_key = ? WHERE id = ?", [key, account.id])
        account = account._replace(period_key=key)
        top_up = level - account.allowance
    else:
        top_up = 0
    if top_up > 0:
        refilled = _post(db, at, account.id, guild_id, user_id, "refill", d_allowance=top_up)
        if refilled is None:
            raise LedgerInvariantBroken(f"refill of account {account.id} refused")
        account = refilled
    return account, level, period


def _pool_account(db: Database, guild_id: int) -> _Account:
    account = _fetch_account(db, guild_id, "pool", POOL_USER)
    if account is None:
        cursor = db.execute(
            "INSERT INTO accounts (guild_id, kind, user_id) VALUES (?, 'pool', ?)",
            [guild_id, POOL_USER],
        )
        account = _Account(cursor.lastrowid or 0, 0, 0, 0, None, 0)
    return account


def _balance(
    guild_id: int, user_id: int, account: _Account, level: int = 0, period: Period = Period.NONE
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


def _spent_since(db: Database, guild_id: int, user_id: int | None, since: datetime) -> int:
    """Credits held or charged by jobs reserved since ``since`` (refunds don't count)."""
    spend = (
        "COALESCE(SUM(CASE state WHEN 'pending' THEN amount WHEN 'settled' THEN charged END), 0)"
    )
    if user_id is None:
        sql = f"SELECT {spend} FROM holds WHERE guild_id = ? AND reserved_at >= ?"
        args: list[Any] = [guild_id, timestamp(since)]
    else:
        sql = f"SELECT {spend} FROM holds WHERE guild_id = ? AND user_id = ? AND reserved_at >= ?"
        args = [guild_id, user_id, timestamp(since)]
    return int(db.execute(sql, args).fetchone()[0])


_PERIOD_WORD = {Period.DAILY: "day", Period.WEEKLY: "week", Period.MONTHLY: "month"}


def _enforce_limits(
    db: Database, now: datetime, limits: Limits, guild_id: int, user_id: int, amount: int
) -> None:
    if limits.max_job_cost is not None and amount > limits.max_job_cost:
        raise LimitExceeded("job_cost", limits.max_job_cost, cost=amount)
    if limits.member_jobs is not None:
        running = db.execute(
            "SELECT COUNT(*) FROM holds WHERE guild_id = ? AND user_id = ? AND state = 'pending'",
            [guild_id, user_id],
        ).fetchone()[0]
        if running >= limits.member_jobs:
            raise LimitExceeded("member_jobs", limits.member_jobs, cost=amount, used=running)
    if limits.server_jobs is not None:
        running = db.execute(
            "SELECT COUNT(*) FROM holds WHERE guild_id = ? AND state = 'pending'", [guild_id]
        ).fetchone()[0]
        if running >= limits.server_jobs:
            raise LimitExceeded("server_jobs", limits.server_jobs, cost=amount, used=running)
    if limits.member_spend is not None:
        period = limits.member_spend_period
        used = _spent_since(db, guild_id, user_id, period_start(period, now))
        if used + amount > limits.member_spend:
            raise LimitExceeded(
                "member_spend",
                limits.member_spend,
                cost=amount,
                used=used,
                period=_PERIOD_WORD.get(period, "period"),
            )
    if limits.daily_ceiling is not None:
        used = _spent_since(db, guild_id, None, period_start(Period.DAILY, now))
        if used + amount > limits.daily_ceiling:
            raise LimitExceeded("daily_ceiling", limits.daily_ceiling, cost=amount, used=used)


# -- two-phase operations, inside a write transaction ---------------------------------------


def reserve_in(
    db: Database,
    now: datetime,
    job_id: str,
    guild_id: int,
    user_id: int,
    amount: int,
    role_ids: Iterable[int] = (),
) -> Reservation:
    """:meth:`Ledger.reserve` inside the caller's write transaction."""
    _check_amount(amount)
    existing = _fetch_hold(db, job_id)
    if existing is not None:
        hold = _hold_from_row(existing)
        if (hold.guild_id, hold.user_id, hold.amount) != (guild_id, user_id, amount):
            whom = "" if (hold.guild_id, hold.user_id) == (guild_id, user_id) else " elsewhere"
            raise ConflictingReservation(
                job_id, f"{hold.amount} credits{whom}", f"{amount} credits"
            )
        return Reservation(hold, existing[12], existing[13])

    at = timestamp(now)
    settings = _settings(db, guild_id)
    member, _, _ = _member_account(db, now, settings, user_id, role_ids)
    if member.blocked:
        raise MemberBlocked(guild_id, user_id)
    _enforce_limits(db, now, settings.limits, guild_id, user_id, amount)

    policy = settings.policy
    pool = None if policy is FundingPolicy.PERSONAL else _pool_account(db, guild_id)
    if policy is FundingPolicy.PERSONAL:
        from_personal = amount
    elif policy is FundingPolicy.POOL:
        from_personal = 0
    else:
        from_personal = min(amount, max(member.available, 0))
    from_pool = amount - from_personal

    def short() -> InsufficientCredits:
        if policy is FundingPolicy.PERSONAL:
            return InsufficientCredits(member.available, amount, source="your balance")
        assert pool is not None
        if policy is FundingPolicy.POOL:
            return InsufficientCredits(pool.available, amount, source="the server pool")
        return InsufficientCredits(
            member.available + pool.available,
            amount,
            source="your balance and the server pool together",
        )

    if from_personal:
        held = _hold_credits(db, at, member.id, guild_id, user_id, job_id, from_personal)
        if held is None:
            raise short()
        member = held
    if from_pool:
        assert pool is not None
        held = _hold_credits(db, at, pool.id, guild_id, user_id, job_id, from_pool)
        if held is None:
            raise short()  # the savepoint rolls back the personal part too
        pool = held

    pool_available = None if pool is None else pool.available
    db.execute(
        """
        INSERT INTO holds (job_id, guild_id, user_id, personal_account, pool_account, amount,
                           from_personal, from_pool, personal_available, pool_available,
                           reserved_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            job_id,
            guild_id,
            user_id,
            member.id,
            None if pool is None else pool.id,
            amount,
            from_personal,
            from_pool,
            member.available,
            pool_available,
            at,
        ],
    )
    hold = Hold(
        job_id, guild_id, user_id, amount, from_personal, from_pool, "pending", None, utc(now), None
    )
    return Reservation(hold, member.available, pool_available)


def _resolve(db: Database, now: datetime, row: tuple[Any, ...], charge: int, state: str) -> Hold:
    """Charge ``charge`` of a pending hold (personal part first) and release the rest."""
    at = timestamp(now)
    hold = _hold_from_row(row)
    charge_personal = min(charge, hold.from_personal)
    parts = [(row[10], hold.from_personal, charge_personal)]
    if row[11] is not None:
        parts.append((row[11], hold.from_pool, charge - charge_personal))
    kind = "settle" if state == "settled" else "refund"
    for account_id, part, part_charge in parts:
        if part == 0:
            continue
        allowance = db.execute(
            "SELECT allowance FROM accounts WHERE id = ?", [account_id]
        ).fetchone()[0]
        from_allowance = min(part_charge, allowance)  # the allowance is spent first
        posted = _post(
            db,
            at,
            account_id,
            hold.guild_id,
            hold.user_id,
            kind,
            d_allowance=-from_allowance,
            d_granted=-(part_charge - from_allowance),
            d_held=-part,
            job_id=hold.job_id,
        )
        if posted is None:
            raise LedgerInvariantBroken(f"{kind} of job {hold.job_id} refused")
    cursor = db.execute(
        """
        UPDATE holds SET state = ?, charged = ?, resolved_at = ?
         WHERE job_id = ? AND state = 'pending'
        """,
        [state, charge, at, hold.job_id],
    )
    if cursor.rowcount != 1:
        raise LedgerInvariantBroken(f"hold of job {hold.job_id} was not pending")
    return Hold(
        hold.job_id,
        hold.guild_id,
        hold.user_id,
        hold.amount,
        hold.from_personal,
        hold.from_pool,
        state,
        charge,
        hold.reserved_at,
        utc(now),
    )


def settle_in(db: Database, now: datetime, job_id: str, actual: int) -> Hold:
    """:meth:`Ledger.settle` inside the caller's write transaction."""
    _check_amount(actual)
    row = _fetch_hold(db, job_id)
    if row is None:
        raise UnknownHold(job_id)
    hold = _hold_from_row(row)
    charge = min(actual, hold.amount)
    if hold.state == "settled":
        if hold.charged == charge:
            return hold
        raise ConflictingResolution(
            job_id, f"settled for {hold.charged} credits", f"settled for {charge} credits"
        )
    if hold.state == "refunded":
        raise ConflictingResolution(job_id, "refunded", f"settled for {charge} credits")
    if actual > hold.amount:
        log.warning(
            "job %s cost %d but held %d; charging the held amount", job_id, actual, hold.amount
        )
    return _resolve(db, now, row, charge, "settled")


def refund_in(db: Database, now: datetime, job_id: str) -> Hold:
    """:meth:`Ledger.refund` inside the caller's write transaction."""
    row = _fetch_hold(db, job_id)
    if row is None:
        raise UnknownHold(job_id)
    hold = _hold_from_row(row)
    if hold.state == "refunded":
        return hold
    if hold.state == "settled":
        raise ConflictingResolution(job_id, f"settled for {hold.charged} credits", "refunded")
    return _resolve(db, now, row, 0, "refunded")


# -- moderator adjustments ------------------------------------------------------------------


def _grant_in(
    db: Database,
    now: datetime,
    guild_id: int,
    user_id: int,
    amount: int,
    actor_id: int,
    reason: str,
    role_ids: Iterable[int],
) -> Balance:
    _check_amount(amount, allow_zero=False, allow_negative=True)
    settings = _settings(db, guild_id)
    account, level, period = _member_account(db, now, settings, user_id, role_ids)
    if amount > 0:
        d_allowance, d_granted = 0, amount
    else:
        take = -amount
        from_granted = min(take, account.granted)  # take back grants before allowance
        d_allowance, d_granted = -(take - from_granted), -from_granted
    posted = _post(
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
    )
    if posted is None:
        if account.total >= -amount:
            raise BalanceInUse(account.total + amount, account.held)
        raise InsufficientCredits(account.available, -amount, source="this member's balance")
    return _balance(guild_id, user_id, posted, level, period)


def _set_in(
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
    settings = _settings(db, guild_id)
    account, level, period = _member_account(db, now, settings, user_id, role_ids)
    target = level if amount is None else _check_amount(amount)
    if target < account.held:
        raise BalanceInUse(target, account.held)
    allowance_part = min(target, level)
    posted = _post(
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
    )
    if posted is None:
        raise LedgerInvariantBroken(f"set of account {account.id} refused")
    return _balance(guild_id, user_id, posted, level, period)


def _fund_pool_in(
    db: Database, now: datetime, guild_id: int, amount: int, actor_id: int, reason: str
) -> Balance:
    _check_amount(amount, allow_zero=False, allow_negative=True)
    pool = _pool_account(db, guild_id)
    posted = _post(
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
    return _balance(guild_id, POOL_USER, posted)


def _block_in(
    db: Database,
    now: datetime,
    guild_id: int,
    user_id: int,
    blocked: bool,
    actor_id: int,
    reason: str,
) -> Balance:
    settings = _settings(db, guild_id)
    account, level, period = _member_account(db, now, settings, user_id, ())
    db.execute("UPDATE accounts SET blocked = ? WHERE id = ?", [int(blocked), account.id])
    _journal(
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
    return _balance(guild_id, user_id, account._replace(blocked=int(blocked)), level, period)


def _ensure_settings_row(db: Database, guild_id: int) -> None:
    db.execute(
        "INSERT INTO guild_settings (guild_id) VALUES (?) ON CONFLICT DO NOTHING", [guild_id]
    )


def _set_allowance_in(
    db: Database,
    now: datetime,
    guild_id: int,
    amount: int,
    period: Period,
    role_id: int | None,
    actor_id: int,
    reason: str,
) -> None:
    _check_amount(amount)
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
    _journal(
        db, timestamp(now), guild_id, "allowance", actor_id=actor_id, reason=reason, detail=detail
    )


def _clear_role_allowance_in(
    db: Database, now: datetime, guild_id: int, role_id: int, actor_id: int, reason: str
) -> bool:
    cursor = db.execute(
        "DELETE FROM role_allowances WHERE guild_id = ? AND role_id = ?", [guild_id, role_id]
    )
    if cursor.rowcount:
        _journal(
            db,
            timestamp(now),
            guild_id,
            "allowance_cleared",
            actor_id=actor_id,
            reason=reason,
            detail={"role_id": role_id},
        )
    return bool(cursor.rowcount)


def _set_policy_in(
    db: Database, now: datetime, guild_id: int, policy: FundingPolicy, actor_id: int, reason: str
) -> None:
    policy = FundingPolicy(policy)
    _ensure_settings_row(db, guild_id)
    db.execute("UPDATE guild_settings SET policy = ? WHERE guild_id = ?", [policy.value, guild_id])
    _journal(
        db,
        timestamp(now),
        guild_id,
        "policy",
        actor_id=actor_id,
        reason=reason,
        detail={"policy": policy.value},
    )


def _set_limits_in(
    db: Database, now: datetime, guild_id: int, limits: Limits, actor_id: int, reason: str
) -> None:
    if Period(limits.member_spend_period) is Period.NONE:
        raise ValueError("the member spending limit needs a daily, weekly or monthly period")
    for name in ("max_job_cost", "member_spend", "daily_ceiling", "member_jobs", "server_jobs"):
        value = getattr(limits, name)
        if value is not None:
            _check_amount(value)
    _ensure_settings_row(db, guild_id)
    db.execute(
        """
        UPDATE guild_settings
           SET max_job_cost = ?, member_spend = ?, member_spend_period = ?, daily_ceiling = ?,
               member_jobs = ?, server_jobs = ?
         WHERE guild_id = ?
        """,
        [
            limits.max_job_cost,
            limits.member_spend,
            Period(limits.member_spend_period).value,
            limits.daily_ceiling,
            limits.member_jobs,
            limits.server_jobs,
            guild_id,
        ],
    )
    _journal(
        db,
        timestamp(now),
        guild_id,
        "limits",
        actor_id=actor_id,
        reason=reason,
        detail=asdict(limits),
    )


# -- reads ----------------------------------------------------------------------------------


def _settings_with_roles(db: Database, guild_id: int) -> GuildSettings:
    settings = _settings(db, guild_id)
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


def _entries(
    db: Database, guild_id: int, user_id: int | None, limit: int, before: int | None
) -> list[Entry]:
    where = ["j.guild_id = ?"]
    args: list[Any] = [guild_id]
    if user_id is not None:
        where.append("j.user_id = ?")
        args.append(user_id)
    if before is not None:
        where.append("j.id < ?")
        args.append(before)
    args.append(limit)
    rows = db.execute(
        f"""
        SELECT j.id, j.at, j.guild_id, j.user_id, a.kind, j.kind, j.job_id,
               j.d_allowance + j.d_granted, j.d_held, j.available, j.actor_id, j.reason, j.detail
          FROM journal j LEFT JOIN accounts a ON a.id = j.account_id
         WHERE {" AND ".join(where)}
         ORDER BY j.id DESC LIMIT ?
        """,
        args,
    ).fetchall()
    return [
        Entry(
            id=r[0],
            at=parse_timestamp(r[1]),  # type: ignore[arg-type]
            guild_id=r[2],
            user_id=r[3],
            account=r[4],
            kind=r[5],
            job_id=r[6],
            change=r[7],
            held_change=r[8],
            available=r[9],
            actor_id=r[10],
            reason=r[11],
            detail=None if r[12] is None else json.loads(r[12]),
        )
        for r in rows
    ]


def _check(db: Database) -> CheckReport:
    problems: list[str] = []
    accounts = db.execute(
        """
        SELECT a.id, a.guild_id, a.kind, a.user_id, a.allowance, a.granted, a.held,
               COALESCE(j.sa, 0), COALESCE(j.sg, 0), COALESCE(j.sh, 0), COALESCE(h.ph, 0)
          FROM accounts a
          LEFT JOIN (SELECT account_id, SUM(d_allowance) AS sa, SUM(d_granted) AS sg,
                            SUM(d_held) AS sh
                       FROM journal WHERE account_id IS NOT NULL GROUP BY account_id) j
                 ON j.account_id = a.id
          LEFT JOIN (SELECT account, SUM(part) AS ph FROM (
                        SELECT personal_account AS account, from_personal AS part
                          FROM holds WHERE state = 'pending'
                        UNION ALL
                        SELECT pool_account, from_pool FROM holds
                         WHERE state = 'pending' AND pool_account IS NOT NULL)
                      GROUP BY account) h
                 ON h.account = a.id
        """
    ).fetchall()
    for acc_id, guild_id, kind, user_id, allowance, granted, held, sa, sg, sh, ph in accounts:
        name = f"{kind} account {acc_id} (server {guild_id}, user {user_id})"
        if (allowance, granted, held) != (sa, sg, sh):
            problems.append(
                f"{name}: cached allowance/granted/held {allowance}/{granted}/{held} "
                f"!= journal sums {sa}/{sg}/{sh}"
            )
        if held != ph:
            problems.append(f"{name}: held {held} != pending holds {ph}")
        if min(allowance, granted, held) < 0 or allowance + granted < held:
            problems.append(f"{name}: negative figure {allowance}/{granted}/{held}")
    holds = db.execute(
        """
        SELECT h.job_id, h.state, h.amount, h.charged,
               COALESCE(SUM(j.d_held), 0), COALESCE(-SUM(j.d_allowance + j.d_granted), 0)
          FROM holds h LEFT JOIN journal j ON j.job_id = h.job_id
         GROUP BY h.job_id
        """
    ).fetchall()
    for job_id, state, amount, charged, net_held, net_charged in holds:
        want_held = amount if state == "pending" else 0
        want_charged = charged or 0
        if (net_held, net_charged) != (want_held, want_charged):
            problems.append(
                f"hold {job_id} ({state}, {amount} held, {charged} charged): journal shows "
                f"{net_held} still held and {net_charged} charged"
            )
    orphans = db.execute(
        """
        SELECT COUNT(*) FROM journal
         WHERE (account_id IS NULL AND (d_allowance != 0 OR d_granted != 0 OR d_held != 0))
            OR (job_id IS NOT NULL AND job_id NOT IN (SELECT job_id FROM holds))
        """
    ).fetchone()[0]
    if orphans:
        problems.append(f"{orphans} journal entries belong to no account or no hold")
    entries = db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    return CheckReport(len(accounts), entries, len(holds), tuple(problems))


# -- the async API ----------------------------------------------------------------------------


class Ledger:
    """Credits for one bot, on a :class:`~paddock.store.Store`.

    ``clock`` returns the current time (UTC); tests inject one to cross period boundaries.
    Every method is a coroutine and raises only :mod:`paddock.errors` errors for things a
    user or moderator did (or :class:`~paddock.errors.StoreBusy`).
    """

    def __init__(self, store: Store, *, clock: Clock = utcnow) -> None:
        self.store = store
        self._clock = clock

    def now(self) -> datetime:
        return utc(self._clock())

    # two-phase transfers

    async def reserve(
        self,
        job_id: str,
        guild_id: int,
        user_id: int,
        amount: int,
        *,
        role_ids: Iterable[int] = (),
    ) -> Reservation:
        """Hold ``amount`` credits for ``job_id``, from the member and/or the server pool.

        Raises :class:`InsufficientCredits`, :class:`MemberBlocked`, :class:`LimitExceeded`,
        :class:`InvalidAmount`, or :class:`ConflictingReservation` if ``job_id`` already
        holds a different amount or member. A repeat of the same reservation returns the
        first one's result.
        """
        roles = tuple(role_ids)
        return await self.store.write(
            reserve_in, self.now(), job_id, guild_id, user_id, amount, roles
        )

    async def settle(self, job_id: str, actual: int) -> Hold:
        """Charge ``min(actual, held)`` for the job and release the rest."""
        return await self.store.write(settle_in, self.now(), job_id, actual)

    async def refund(self, job_id: str) -> Hold:
        """Release everything the job holds."""
        return await self.store.write(refund_in, self.now(), job_id)

    # balances

    async def balance(
        self, guild_id: int, user_id: int, *, role_ids: Iterable[int] = ()
    ) -> Balance:
        """The member's balance, after any refill that is due (so this may write)."""
        roles = tuple(role_ids)

        def run(db: Database, now: datetime) -> Balance:
            settings = _settings(db, guild_id)
            account, level, period = _member_account(db, now, settings, user_id, roles)
            return _balance(guild_id, user_id, account, level, period)

        return await self.store.write(run, self.now())

    async def pool_balance(self, guild_id: int) -> Balance:
        def run(db: Database) -> Balance:
            account = _fetch_account(db, guild_id, "pool", POOL_USER)
            return _balance(guild_id, POOL_USER, account or _Account(0, 0, 0, 0, None, 0))

        return await self.store.read(run)

    async def hold(self, job_id: str) -> Hold | None:
        def run(db: Database) -> Hold | None:
            row = _fetch_hold(db, job_id)
            return None if row is None else _hold_from_row(row)

        return await self.store.read(run)

    async def holds(self, guild_id: int | None = None, *, state: str | None = None) -> list[Hold]:
        """Holds, oldest first, optionally for one server and/or in one state."""

        def run(db: Database) -> list[Hold]:
            where, args = ["1"], []
            if guild_id is not None:
                where.append("guild_id = ?")
                args.append(guild_id)
            if state is not None:
                where.append("state = ?")
                args.append(state)
            rows = db.execute(
                f"SELECT {_HOLD_COLUMNS} FROM holds WHERE {' AND '.join(where)}"
                " ORDER BY reserved_at, job_id",
                args,
            ).fetchall()
            return [_hold_from_row(r) for r in rows]

        return await self.store.read(run)

    # moderator adjustments: each is journaled with actor_id, time and reason

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        *,
        actor_id: int,
        reason: str = "",
        role_ids: Iterable[int] = (),
    ) -> Balance:
        """Give (or with a negative amount, take back) credits on top of the allowance."""
        return await self.store.write(
            _grant_in, self.now(), guild_id, user_id, amount, actor_id, reason, tuple(role_ids)
        )

    async def set_balance(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        *,
        actor_id: int,
        reason: str = "",
        role_ids: Iterable[int] = (),
    ) -> Balance:
        """Make the member's balance ``amount`` (not below what their jobs hold)."""
        return await self.store.write(
            _set_in, self.now(), guild_id, user_id, amount, actor_id, reason, tuple(role_ids)
        )

    async def reset_to_allowance(
        self,
        guild_id: int,
        user_id: int,
        *,
        actor_id: int,
        reason: str = "",
        role_ids: Iterable[int] = (),
    ) -> Balance:
        """Make the member's balance exactly their allowance, dropping granted credits."""
        return await self.store.write(
            _set_in, self.now(), guild_id, user_id, None, actor_id, reason, tuple(role_ids)
        )

    async def fund_pool(
        self, guild_id: int, amount: int, *, actor_id: int, reason: str = ""
    ) -> Balance:
        """Add credits to (or with a negative amount, take them from) the server pool."""
        return await self.store.write(_fund_pool_in, self.now(), guild_id, amount, actor_id, reason)

    async def block(
        self, guild_id: int, user_id: int, *, actor_id: int, reason: str = ""
    ) -> Balance:
        """Refuse the member's future reservations (running jobs finish normally)."""
        return await self.store.write(
            _block_in, self.now(), guild_id, user_id, True, actor_id, reason
        )

    async def unblock(
        self, guild_id: int, user_id: int, *, actor_id: int, reason: str = ""
    ) -> Balance:
        return await self.store.write(
            _block_in, self.now(), guild_id, user_id, False, actor_id, reason
        )

    # server settings

    async def settings(self, guild_id: int) -> GuildSettings:
        return await self.store.read(_settings_with_roles, guild_id)

    async def set_allowance(
        self,
        guild_id: int,
        amount: int,
        period: Period,
        *,
        role_id: int | None = None,
        actor_id: int,
        reason: str = "",
    ) -> None:
        """Set the server's default allowance, or with ``role_id``, that role's override.

        Takes effect at each member's next refill (their next period), not at once.
        """
        await self.store.write(
            _set_allowance_in, self.now(), guild_id, amount, period, role_id, actor_id, reason
        )

    async def clear_role_allowance(
        self, guild_id: int, role_id: int, *, actor_id: int, reason: str = ""
    ) -> bool:
        """Drop a role's override; returns whether there was one."""
        return await self.store.write(
            _clear_role_allowance_in, self.now(), guild_id, role_id, actor_id, reason
        )

    async def set_policy(
        self, guild_id: int, policy: FundingPolicy, *, actor_id: int, reason: str = ""
    ) -> None:
        await self.store.write(_set_policy_in, self.now(), guild_id, policy, actor_id, reason)

    async def set_limits(
        self, guild_id: int, limits: Limits, *, actor_id: int, reason: str = ""
    ) -> None:
        """Replace all of the server's limits (``None`` fields mean no limit)."""
        await self.store.write(_set_limits_in, self.now(), guild_id, limits, actor_id, reason)

    # history

    async def history(
        self, guild_id: int, user_id: int, *, limit: int = 50, before: int | None = None
    ) -> list[Entry]:
        """The member's own entries, newest first: refills, holds, charges, grants, blocks."""
        return await self.store.read(_entries, guild_id, user_id, limit, before)

    async def audit_log(
        self,
        guild_id: int,
        member: int | None = None,
        *,
        limit: int = 50,
        before: int | None = None,
    ) -> list[Entry]:
        """Every entry of the server (or about one member), newest first, for moderators.

        Page with ``before=<the last entry's id>``.
        """
        return await self.store.read(_entries, guild_id, member, limit, before)

    async def check(self) -> CheckReport:
        """Prove cached balances equal the journal's sums and nothing is negative."""
        return await self.store.read(_check)
