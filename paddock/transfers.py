"""Two-phase transfers: a job's credits are held by ``reserve`` and resolved exactly once.

``settle`` charges up to the held amount and releases the rest; ``refund`` releases it all.
These functions run inside a write transaction; :class:`paddock.ledger.Ledger` wraps them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from paddock.accounts import (
    ACCOUNT_COLUMNS,
    Account,
    LedgerInvariantBroken,
    append_entry,
    check_amount,
    fetch_account_by_id,
    member_account,
    pool_account,
    post,
    read_settings,
)
from paddock.budget import (
    FundingPolicy,
    Limits,
    Period,
    parse_timestamp,
    period_start,
    timestamp,
    utc,
)
from paddock.errors import (
    ConflictingReservation,
    ConflictingResolution,
    InsufficientCredits,
    LimitExceeded,
    MemberBlocked,
    UnknownHold,
)

log = logging.getLogger(__name__)


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
    requested: int | None = None  # the cost a settle asked to charge, before capping

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


HOLD_COLUMNS = (
    "job_id, guild_id, user_id, amount, from_personal, from_pool, state, charged, "
    "reserved_at, resolved_at, personal_account, pool_account, personal_available, "
    "pool_available, requested"
)


def hold_from_row(row: tuple[Any, ...]) -> Hold:
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
        requested=row[14],
    )


def fetch_hold(db: Database, job_id: str) -> tuple[Any, ...] | None:
    return db.execute(f"SELECT {HOLD_COLUMNS} FROM holds WHERE job_id = ?", [job_id]).fetchone()


def _hold_credits(
    db: Database, at: str, account_id: int, guild_id: int, user_id: int, job_id: str, amount: int
) -> Account | None:
    """The reservation check: hold ``amount`` only if that much is available, in one UPDATE."""
    row = db.execute(
        f"""
        UPDATE accounts SET held = held + :amount
         WHERE id = :id AND allowance + granted - held >= :amount
        RETURNING {ACCOUNT_COLUMNS}
        """,
        {"id": account_id, "amount": amount},
    ).fetchone()
    if row is None:
        return None
    account = Account(*row)
    append_entry(
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


def _spent_since(db: Database, guild_id: int, user_id: int | None, since: datetime) -> int:
    """Credits held or charged by jobs reserved since ``since`` (refunds, and charges
    returned because the video reached no one, don't count)."""
    member = "" if user_id is None else "AND h.user_id = :user"
    spend = (
        "COALESCE(SUM(CASE h.state WHEN 'pending' THEN h.amount WHEN 'settled' THEN h.charged"
        " END), 0)"
        " - COALESCE((SELECT SUM(r.d_allowance + r.d_granted) FROM journal r"
        "   JOIN holds h ON h.job_id = r.job_id"
        f"  WHERE r.kind = 'return' AND h.guild_id = :guild {member}"
        "    AND h.reserved_at >= :since), 0)"
    )
    sql = (
        f"SELECT {spend} FROM holds h WHERE h.guild_id = :guild {member}"
        " AND h.reserved_at >= :since"
    )
    args = {"guild": guild_id, "user": user_id, "since": timestamp(since)}
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


def reserve_in(
    db: Database,
    now: datetime,
    job_id: str,
    guild_id: int,
    user_id: int,
    amount: int,
    role_ids: Iterable[int],
) -> Reservation:
    """:meth:`Ledger.reserve` inside the caller's write transaction."""
    check_amount(amount)
    existing = fetch_hold(db, job_id)
    if existing is not None:
        hold = hold_from_row(existing)
        if (hold.guild_id, hold.user_id, hold.amount) != (guild_id, user_id, amount):
            whom = "" if (hold.guild_id, hold.user_id) == (guild_id, user_id) else " elsewhere"
            raise ConflictingReservation(
                job_id, f"{hold.amount} credits{whom}", f"{amount} credits"
            )
        return Reservation(hold, existing[12], existing[13])

    at = timestamp(now)
    settings = read_settings(db, guild_id)
    member, _, _ = member_account(db, now, settings, user_id, role_ids)
    if member.blocked:
        raise MemberBlocked(guild_id, user_id)
    _enforce_limits(db, now, settings.limits, guild_id, user_id, amount)

    policy = settings.policy
    pool = None if policy is FundingPolicy.PERSONAL else pool_account(db, guild_id)
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


def _resolve(
    db: Database,
    now: datetime,
    row: tuple[Any, ...],
    charge: int,
    state: str,
    requested: int | None = None,
) -> Hold:
    """Charge ``charge`` of a pending hold (personal part first) and release the rest."""
    at = timestamp(now)
    hold = hold_from_row(row)
    charge_personal = min(charge, hold.from_personal)
    parts = [(row[10], hold.from_personal, charge_personal)]
    if row[11] is not None:
        parts.append((row[11], hold.from_pool, charge - charge_personal))
    kind = "settle" if state == "settled" else "refund"
    for account_id, part, part_charge in parts:
        if part == 0:
            continue
        account = fetch_account_by_id(db, account_id)
        from_allowance = min(part_charge, account.allowance)  # the allowance is spent first
        posted = post(
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
            expect=account,
        )
        if posted is None:
            raise LedgerInvariantBroken(f"{kind} of job {hold.job_id} refused")
    cursor = db.execute(
        """
        UPDATE holds SET state = ?, charged = ?, resolved_at = ?, requested = ?
         WHERE job_id = ? AND state = 'pending'
        """,
        [state, charge, at, requested, hold.job_id],
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
        requested,
    )


def settle_in(db: Database, now: datetime, job_id: str, actual: int) -> Hold:
    """:meth:`Ledger.settle` inside the caller's write transaction."""
    check_amount(actual)
    row = fetch_hold(db, job_id)
    if row is None:
        raise UnknownHold(job_id)
    hold = hold_from_row(row)
    charge = min(actual, hold.amount)
    attempted = _settled_for(charge, actual)
    if hold.state == "settled":
        # A repeat must ask for the same cost, not merely end in the same capped charge.
        # Holds settled before the cost was kept (requested is NULL) compare the charge.
        if actual == hold.requested or (hold.requested is None and charge == hold.charged):
            return hold
        first = _settled_for(hold.charged or 0, hold.requested)
        raise ConflictingResolution(job_id, first, attempted)
    if hold.state == "refunded":
        raise ConflictingResolution(job_id, "refunded", attempted)
    if actual > hold.amount:
        log.warning(
            "job %s cost %d but held %d; charging the held amount", job_id, actual, hold.amount
        )
    return _resolve(db, now, row, charge, "settled", requested=actual)


def _settled_for(charge: int, cost: int | None) -> str:
    if cost is None or cost == charge:
        return f"settled for {charge} credits"
    return f"settled for {charge} credits (a cost of {cost})"


def refund_in(db: Database, now: datetime, job_id: str) -> Hold:
    """:meth:`Ledger.refund` inside the caller's write transaction."""
    row = fetch_hold(db, job_id)
    if row is None:
        raise UnknownHold(job_id)
    hold = hold_from_row(row)
    if hold.state == "refunded":
        return hold
    if hold.state == "settled":
        raise ConflictingResolution(job_id, f"settled for {hold.charged} credits", "refunded")
    return _resolve(db, now, row, 0, "refunded")


def return_charge_in(db: Database, now: datetime, job_id: str, reason: str) -> Hold:
    """Give a job's credits back even after it was settled: the video never reached the
    member. A pending hold is simply refunded. A settled hold stays settled (a hold is
    resolved exactly once) and its charge comes back as new ``return`` entries on the
    accounts it was taken from, tied to the job; doing it again changes nothing."""
    row = fetch_hold(db, job_id)
    if row is None:
        raise UnknownHold(job_id)
    hold = hold_from_row(row)
    if hold.state == "pending":
        return _resolve(db, now, row, 0, "refunded")
    if hold.state == "refunded" or charge_returned(db, job_id):
        return hold
    at = timestamp(now)
    charged = db.execute(
        """
        SELECT account_id, SUM(d_allowance), SUM(d_granted) FROM journal
         WHERE job_id = ? AND account_id IS NOT NULL GROUP BY account_id ORDER BY account_id
        """,
        [job_id],
    ).fetchall()
    for account_id, d_allowance, d_granted in charged:
        if not (d_allowance or d_granted):
            continue
        account = fetch_account_by_id(db, account_id)
        posted = post(
            db, at, account_id, hold.guild_id, hold.user_id, "return",
            d_allowance=-d_allowance, d_granted=-d_granted, job_id=job_id, reason=reason,
            expect=account,
        )
        if posted is None:
            raise LedgerInvariantBroken(f"return of job {job_id}'s charge refused")
    return hold


def charge_returned(db: Database, job_id: str) -> bool:
    """Whether a settled job's charge was given back (``return`` entries)."""
    found = db.execute(
        "SELECT 1 FROM journal WHERE job_id = ? AND kind = 'return' LIMIT 1", [job_id]
    ).fetchone()
    return found is not None
