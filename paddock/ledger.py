"""The credit ledger: two-phase holds on SQLite, after TigerBeetle.

Accounts
    Each member has a personal account per server; each server has one shared pool. Amounts
    are whole credits. A member account's balance has two parts, kept apart:

    * ``allowance``: what is left of the periodic allowance;
    * ``granted``: credits given by moderators (``grant``, ``set``), on top of the allowance.

    ``held`` is the sum of pending holds, and ``available = allowance + granted - held``.

Refills and grants
    The allowance is the server default, unless the member has roles with an allowance
    override, in which case the highest of those applies (even if lower than the default;
    on a tie, the one refilled most often). Refills are lazy: the first operation after a
    boundary of the member's period (UTC midnight, Monday of an ISO week, or the 1st of a
    month) that has passed since their *last refill* refills them once. The time of the
    last refill is stored per account, so a different role set or a changed setting never
    makes the same period look new; every operation that may refill takes the member's
    current ``role_ids`` (``block`` does not refill). A refill sets the allowance part to
    the allowance, down as well as up: unspent allowance does not roll over. The only
    exception: pending holds count against the allowance part first (as spending does), so
    it never drops below ``min(allowance part, held)`` and a job reserved before the
    boundary is still paid from the allowance it was reserved against (if that job is
    refunded instead, those credits stay until the next refill). The ``granted`` part is
    never touched by a refill. Spending takes from the allowance part first and then from
    granted credits, so grants last until they are used. A negative grant takes from
    granted credits first. ``set_balance(n)`` makes the balance ``n``: up to the allowance
    in the allowance part, the rest as granted credits; ``reset_to_allowance`` is
    ``set_balance(allowance)``. With period ``none`` the account is filled once, when it
    is first used.

Two-phase transfers
    ``reserve`` holds credits for a job in one ``BEGIN IMMEDIATE`` transaction whose balance
    check is the conditional statement itself (``UPDATE ... WHERE allowance + granted - held
    >= amount``); pending holds count against the balance at once. ``settle`` charges up to
    the held amount and releases the rest; ``refund`` releases everything. Each job's hold
    is resolved exactly once: repeating an operation with the same job id returns the first
    outcome (a repeated reserve returns the first reservation's figures, with the hold as
    it is now), and a repeat that disagrees raises :class:`ConflictingResolution` (or
    :class:`ConflictingReservation`); a settle repeats only with the same ``actual``, even
    where both would charge the same capped amount. A settle for more than was held charges the held
    amount: the estimate the member agreed to is the most they pay.

Journal
    Every change, including moderators' setting changes, is one row of an append-only
    ``journal`` (triggers refuse UPDATE and DELETE), with who, when and why. The cached
    balances in ``accounts`` always equal the journal's sums; :meth:`Ledger.check` proves
    it. Every balance change goes through :func:`paddock.accounts.post`, which writes both
    in one step.

Layout: :mod:`paddock.accounts` (accounts and posting), :mod:`paddock.transfers` (the
two-phase operations), :mod:`paddock.adjustments` (what moderators change) and
:mod:`paddock.audit` (history, audit log, check) hold the synchronous ``*_in(db, now, ...)``
functions that run inside one write transaction; :class:`Ledger` is their async front.
The job store composes ``reserve_in``/``settle_in``/``refund_in`` with its own state changes
in a single transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from paddock.accounts import (
    POOL_USER,
    Account,
    Balance,
    allowance_for,
    balance_of,
    fetch_account,
    member_account,
    never_funded,
    read_settings,
)
from paddock.adjustments import (
    block_in,
    clear_role_allowance_in,
    fund_pool_in,
    grant_in,
    set_allowance_in,
    set_in,
    set_limits_in,
    set_policy_in,
    settings_with_roles,
    update_limits_in,
)
from paddock.audit import CheckReport, Entry, check_ledger, entries
from paddock.budget import (
    LIMIT_NAMES,
    FundingPolicy,
    GuildSettings,
    Limits,
    LimitsChange,
    Period,
    parse_timestamp,
    refill_due,
    utc,
    utcnow,
)
from paddock.store import Store
from paddock.transfers import (
    HOLD_COLUMNS,
    Hold,
    Reservation,
    fetch_hold,
    hold_from_row,
    refund_in,
    reserve_in,
    settle_in,
)

__all__ = [
    "Balance",
    "CheckReport",
    "Clock",
    "Entry",
    "Hold",
    "Ledger",
    "Reservation",
    "Statement",
    "refund_in",
    "reserve_in",
    "settle_in",
]

Clock = Callable[[], datetime]


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
        role_ids: Iterable[int],
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

    async def balance(self, guild_id: int, user_id: int, *, role_ids: Iterable[int]) -> Balance:
        """The member's balance, after any refill that is due (so this may write).

        ``role_ids`` (here and in every method that may refill) must be the member's
        current roles, ``()`` for none: a due refill uses the allowance they give.
        A member with an account and no refill due is answered by a read alone.
        """
        return (await self.statement(guild_id, user_id, role_ids=role_ids)).balance

    async def statement(
        self, guild_id: int, user_id: int, *, role_ids: Iterable[int]
    ) -> Statement:
        """What ``/credits balance`` shows, in one transaction: the member's balance (as
        :meth:`balance`: a read alone unless the account is new or a refill is due), the
        server's funding policy, and the pool's balance where the policy draws on it."""
        roles = tuple(role_ids)

        def look(db: Database, now: datetime) -> Statement | None:
            settings = read_settings(db, guild_id)
            level, period = allowance_for(db, settings, roles)
            account = fetch_account(db, guild_id, "member", user_id)
            if account is None or refill_due(period, parse_timestamp(account.refilled_at), now):
                return None  # only the writer may create or refill it
            return _statement(db, settings, balance_of(guild_id, user_id, account, level, period))

        found = await self.store.read(look, self.now())
        if found is not None:
            return found

        def run(db: Database, now: datetime) -> Statement:
            settings = read_settings(db, guild_id)
            account, level, period = member_account(db, now, settings, user_id, roles)
            return _statement(db, settings, balance_of(guild_id, user_id, account, level, period))

        return await self.store.write(run, self.now())

    async def member_slots(self, guild_id: int) -> int | None:
        """The server's cap on one member's jobs at providers at once (None: no cap)."""
        return await self.store.read(lambda db: read_settings(db, guild_id).limits.member_slots)

    async def never_funded(self, guild_id: int) -> bool:
        """Whether the server has no allowance and nobody was ever granted credits."""
        return await self.store.read(never_funded, guild_id)

    async def pool_balance(self, guild_id: int) -> Balance:
        return await self.store.read(_pool_balance, guild_id)

    async def hold(self, job_id: str) -> Hold | None:
        def run(db: Database) -> Hold | None:
            row = fetch_hold(db, job_id)
            return None if row is None else hold_from_row(row)

        return await self.store.read(run)

    async def holds(self, guild_id: int | None = None, *, state: str | None = None) -> list[Hold]:
        """Holds, oldest first, optionally for one server and/or in one state."""

        def run(db: Database) -> list[Hold]:
            where, args = ["TRUE"], []
            if guild_id is not None:
                where.append("guild_id = ?")
                args.append(guild_id)
            if state is not None:
                where.append("state = ?")
                args.append(state)
            rows = db.execute(
                f"SELECT {HOLD_COLUMNS} FROM holds WHERE {' AND '.join(where)}"
                " ORDER BY reserved_at, job_id",
                args,
            ).fetchall()
            return [hold_from_row(r) for r in rows]

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
        role_ids: Iterable[int],
    ) -> Balance:
        """Give (or with a negative amount, take back) credits on top of the allowance."""
        return await self.store.write(
            grant_in, self.now(), guild_id, user_id, amount, actor_id, reason, tuple(role_ids)
        )

    async def set_balance(
        self,
        guild_id: int,
        user_id: int,
        amount: int,
        *,
        actor_id: int,
        reason: str = "",
        role_ids: Iterable[int],
    ) -> Balance:
        """Make the member's balance ``amount`` (not below what their jobs hold)."""
        return await self.store.write(
            set_in, self.now(), guild_id, user_id, amount, actor_id, reason, tuple(role_ids)
        )

    async def reset_to_allowance(
        self,
        guild_id: int,
        user_id: int,
        *,
        actor_id: int,
        reason: str = "",
        role_ids: Iterable[int],
    ) -> Balance:
        """Make the member's balance exactly their allowance, dropping granted credits."""
        return await self.store.write(
            set_in, self.now(), guild_id, user_id, None, actor_id, reason, tuple(role_ids)
        )

    async def fund_pool(
        self, guild_id: int, amount: int, *, actor_id: int, reason: str = ""
    ) -> Balance:
        """Add credits to (or with a negative amount, take them from) the server pool."""
        return await self.store.write(fund_pool_in, self.now(), guild_id, amount, actor_id, reason)

    async def block(
        self, guild_id: int, user_id: int, *, actor_id: int, reason: str = ""
    ) -> Balance:
        """Refuse the member's future reservations (running jobs finish normally)."""
        return await self.store.write(
            block_in, self.now(), guild_id, user_id, True, actor_id, reason
        )

    async def unblock(
        self, guild_id: int, user_id: int, *, actor_id: int, reason: str = ""
    ) -> Balance:
        return await self.store.write(
            block_in, self.now(), guild_id, user_id, False, actor_id, reason
        )

    # server settings

    async def settings(self, guild_id: int) -> GuildSettings:
        return await self.store.read(settings_with_roles, guild_id)

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
            set_allowance_in, self.now(), guild_id, amount, period, role_id, actor_id, reason
        )

    async def clear_role_allowance(
        self, guild_id: int, role_id: int, *, actor_id: int, reason: str = ""
    ) -> bool:
        """Drop a role's override; returns whether there was one."""
        return await self.store.write(
            clear_role_allowance_in, self.now(), guild_id, role_id, actor_id, reason
        )

    async def set_policy(
        self, guild_id: int, policy: FundingPolicy, *, actor_id: int, reason: str = ""
    ) -> None:
        await self.store.write(set_policy_in, self.now(), guild_id, policy, actor_id, reason)

    async def set_limits(
        self, guild_id: int, limits: Limits, *, actor_id: int, reason: str = ""
    ) -> LimitsChange:
        """Replace all of the server's limits (``None`` fields mean no limit)."""
        return await self.store.write(set_limits_in, self.now(), guild_id, limits, actor_id, reason)

    async def update_limits(
        self,
        guild_id: int,
        *,
        actor_id: int,
        reason: str = "",
        **changes: int | Period | None,
    ) -> LimitsChange:
        """Change only the limits given (by :class:`Limits` field name; ``None`` lifts one).

        Reading the limits, applying the changes and journaling each one's before and
        after happen in one write transaction, so two moderators changing different
        limits at once both keep their change. Nothing is written or journaled when the
        changes leave every limit as it was. Raises ``TypeError`` for an unknown name.
        """
        unknown = sorted(set(changes) - set(LIMIT_NAMES))
        if unknown:
            raise TypeError(f"no such limit: {', '.join(unknown)}")
        if changes.get("member_spend_period") is not None:
            changes["member_spend_period"] = Period(changes["member_spend_period"])
        return await self.store.write(
            update_limits_in, self.now(), guild_id, changes, actor_id, reason
        )

    # history

    async def history(
        self, guild_id: int, user_id: int, *, limit: int = 50, before: int | None = None
    ) -> list[Entry]:
        """The member's own entries, newest first: refills, holds, charges, grants, blocks."""
        return await self.store.read(entries, guild_id, user_id, limit, before)

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
        return await self.store.read(entries, guild_id, member, limit, before)

    async def check(self) -> CheckReport:
        """Prove cached balances equal the journal's sums and nothing is negative."""
        return await self.store.read(check_ledger)


@dataclass(frozen=True)
class Statement:
    """A member's balance with what decides how their videos are paid."""

    balance: Balance
    policy: FundingPolicy
    pool: Balance | None  # None when videos are paid from members' own credits only


def _statement(db: Database, settings: GuildSettings, balance: Balance) -> Statement:
    pool = None
    if settings.policy is not FundingPolicy.PERSONAL:
        pool = _pool_balance(db, settings.guild_id)
    return Statement(balance, settings.policy, pool)


def _pool_balance(db: Database, guild_id: int) -> Balance:
    account = fetch_account(db, guild_id, "pool", POOL_USER)
    return balance_of(guild_id, POOL_USER, account or Account(0, 0, 0, 0, None, 0))
