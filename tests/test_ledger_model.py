"""A Hypothesis state machine drives the ledger against a plain-Python model of it.

The model restates the rules of ``paddock.ledger`` in the simplest way: the allowance is
the server default or the highest of the member's roles' overrides; at the first
operation after a boundary of that allowance's period since the member's last refill,
the allowance part becomes the allowance (up or down, but not below what pending holds
take of it); spending takes the allowance part first, negative grants take granted
credits first, pending holds count at once, and a refused operation changes nothing.
Every operation passes one of several role sets, as members gain and lose roles. After
every step the stored accounts and holds must equal the model's, and ``check()`` must
find nothing wrong.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from paddock.budget import FundingPolicy, Limits, Period
from paddock.errors import (
    BalanceInUse,
    ConflictingResolution,
    InsufficientCredits,
    LimitExceeded,
    MemberBlocked,
    UnknownHold,
)
from paddock.ledger import Ledger
from paddock.store import open_store
from tests.ledger_support import GUILD, MOD, Clock
from tests.migrated import migrated_database
from tests.postgres_fixtures import SharedDatabase

MEMBERS = (1, 2, 3)
VIP, MUTED = 501, 502
ROLE_SETS = ((), (VIP,), (MUTED,), (VIP, MUTED))
PERIOD_ORDER = {"daily": 0, "weekly": 1, "monthly": 2, "none": 3}  # ties: most often wins
MAX_JOB_COST = 25
MEMBER_JOBS = 3
PG_EXAMPLES = 30  # SQLite runs 120; each PostgreSQL step is round trips to a server (~20 s)


@dataclass
class Account:
    allowance: int = 0
    granted: int = 0
    held: int = 0
    refilled: datetime | None = None  # None: never filled
    blocked: bool = False

    @property
    def available(self) -> int:
        return self.allowance + self.granted - self.held


@dataclass
class ModelHold:
    user: int
    amount: int
    from_personal: int
    from_pool: int
    state: str = "pending"
    charged: int | None = None
    requested: int | None = None


def model_key(period: str, now: datetime) -> object:
    if period == "daily":
        return ("daily", now.date())
    if period == "weekly":
        return ("weekly", now.isocalendar()[:2])
    if period == "monthly":
        return ("monthly", (now.year, now.month))
    return "none"


def charge(account: Account, amount: int) -> None:
    from_allowance = min(amount, account.allowance)
    account.allowance -= from_allowance
    account.granted -= amount - from_allowance


class LedgerMachine(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self, location: str | None = None) -> None:
        """``location``: an empty PostgreSQL database's URL; None: a new SQLite file."""
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="ledger-model-"))
        self.clock = Clock()
        self.store = self.run(
            open_store(location or migrated_database(self.folder / "paddock.db"))
        )
        self.ledger = Ledger(self.store, clock=self.clock)
        self.members: dict[int, Account] = {}
        self.pool = Account()
        self.holds: dict[str, ModelHold] = {}
        self.level, self.period = 20, "daily"
        self.role_levels: dict[int, tuple[int, str]] = {}
        self.policy = FundingPolicy.PERSONAL
        self.next_job = 0

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- the model ----------------------------------------------------------------------------

    def allowance(self, roles: tuple[int, ...]) -> tuple[int, str]:
        overrides = [(*self.role_levels[r], r) for r in roles if r in self.role_levels]
        if not overrides:
            return self.level, self.period
        level, period, _ = min(overrides, key=lambda o: (-o[0], PERIOD_ORDER[o[1]], o[2]))
        return level, period

    def stored(self, user: int) -> Account:
        account = self.members.get(user)
        return Account() if account is None else replace(account)

    def refilled(self, user: int, roles: tuple[int, ...]) -> Account:
        """The member's account as the ledger sees it after a due refill (not yet saved)."""
        now = self.clock()
        level, period = self.allowance(roles)
        account = self.stored(user)
        due = account.refilled is None or (
            period != "none" and model_key(period, account.refilled) != model_key(period, now)
        )
        if due:
            account.refilled = now
            account.allowance = max(level, min(account.allowance, account.held))
        return account

    def pending(self, user: int) -> int:
        return sum(1 for h in self.holds.values() if h.user == user and h.state == "pending")

    # -- rules --------------------------------------------------------------------------------

    @initialize()
    def configure(self) -> None:
        self.run(self.ledger.set_allowance(GUILD, self.level, Period.DAILY, actor_id=MOD))
        limits = Limits(max_job_cost=MAX_JOB_COST, member_jobs=MEMBER_JOBS)
        self.run(self.ledger.set_limits(GUILD, limits, actor_id=MOD))

    @rule(
        target=jobs,
        user=st.sampled_from(MEMBERS),
        amount=st.integers(0, 30),
        roles=st.sampled_from(ROLE_SETS),
    )
    def reserve(self, user: int, amount: int, roles: tuple[int, ...]) -> str:
        self.next_job += 1
        job = f"job-{self.next_job}"
        account = self.refilled(user, roles)
        pool_available = self.pool.available
        expected: type[Exception] | None = None
        from_personal = from_pool = 0
        if account.blocked:
            expected = MemberBlocked
        elif amount > MAX_JOB_COST or self.pending(user) >= MEMBER_JOBS:
            expected = LimitExceeded
        else:
            if self.policy is FundingPolicy.PERSONAL:
                from_personal = amount
            elif self.policy is FundingPolicy.PERSONAL_THEN_POOL:
                from_personal = min(amount, max(account.available, 0))
            from_pool = amount - from_personal
            if from_personal > account.available or from_pool > pool_available:
                expected = InsufficientCredits
        try:
            reservation = self.run(self.ledger.reserve(job, GUILD, user, amount, role_ids=roles))
        except (MemberBlocked, LimitExceeded, InsufficientCredits) as error:
            assert type(error) is expected, (error, expected)
            event(f"reserve refused: {type(error).__name__}")
            return job
        event(f"reserve held, policy {self.policy.value}")
        assert expected is None, f"expected {expected}, got {reservation}"
        assert (reservation.from_personal, reservation.from_pool) == (from_personal, from_pool)
        account.held += from_personal
        self.pool.held += from_pool
        self.members[user] = account
        self.holds[job] = ModelHold(user, amount, from_personal, from_pool)
        assert reservation.personal_available == account.available
        return job

    def resolve(self, job: str, charged: int, state: str, requested: int | None = None) -> None:
        hold = self.holds[job]
        personal_charge = min(charged, hold.from_personal)
        member = self.members[hold.user]
        member.held -= hold.from_personal
        charge(member, personal_charge)
        self.pool.held -= hold.from_pool
        charge(self.pool, charged - personal_charge)
        hold.state, hold.charged = state, charged
        hold.requested = requested

    @rule(job=jobs, actual=st.integers(0, 35))
    def settle(self, job: str, actual: int) -> None:
        hold = self.holds.get(job)
        try:
            result = self.run(self.ledger.settle(job, actual))
        except UnknownHold:
            assert hold is None
            return
        except ConflictingResolution:
            assert hold is not None and hold.state != "pending"
            assert hold.state == "refunded" or hold.requested != actual
            return
        assert hold is not None
        assert hold.state == "pending" or hold.requested == actual
        if hold.state == "pending":
            self.resolve(job, min(actual, hold.amount), "settled", actual)
        assert (
            (result.state, result.charged)
            == (hold.state, hold.charged)
            == (
                "settled",
                min(actual, hold.amount),
            )
        )

    @rule(job=jobs)
    def refund(self, job: str) -> None:
        hold = self.holds.get(job)
        try:
            result = self.run(self.ledger.refund(job))
        except UnknownHold:
            assert hold is None
            return
        except ConflictingResolution:
            assert hold is not None and hold.state == "settled"
            return
        assert hold is not None
        if hold.state == "pending":
            self.resolve(job, 0, "refunded")
        assert (result.state, result.charged) == ("refunded", 0)

    @rule(
        user=st.sampled_from(MEMBERS),
        amount=st.integers(-30, -1) | st.integers(1, 30),
        roles=st.sampled_from(ROLE_SETS),
    )
    def grant(self, user: int, amount: int, roles: tuple[int, ...]) -> None:
        account = self.refilled(user, roles)
        try:
            self.run(
                self.ledger.grant(GUILD, user, amount, actor_id=MOD, reason="model", role_ids=roles)
            )
        except (InsufficientCredits, BalanceInUse):
            assert amount < 0 and account.available < -amount
            return
        if amount > 0:
            account.granted += amount
        else:
            from_granted = min(-amount, account.granted)
            account.granted -= from_granted
            account.allowance -= -amount - from_granted
        self.members[user] = account

    @rule(
        user=st.sampled_from(MEMBERS),
        amount=st.one_of(st.none(), st.integers(0, 60)),
        roles=st.sampled_from(ROLE_SETS),
    )
    def set_balance(self, user: int, amount: int | None, roles: tuple[int, ...]) -> None:
        account = self.refilled(user, roles)
        level, _ = self.allowance(roles)
        target = level if amount is None else amount
        try:
            if amount is None:
                self.run(self.ledger.reset_to_allowance(GUILD, user, actor_id=MOD, role_ids=roles))
            else:
                self.run(self.ledger.set_balance(GUILD, user, amount, actor_id=MOD, role_ids=roles))
        except BalanceInUse:
            assert target < account.held
            return
        account.allowance = min(target, level)
        account.granted = target - account.allowance
        self.members[user] = account

    @rule(amount=st.integers(-20, -1) | st.integers(1, 40))
    def fund_pool(self, amount: int) -> None:
        try:
            self.run(self.ledger.fund_pool(GUILD, amount, actor_id=MOD))
        except (InsufficientCredits, BalanceInUse):
            assert self.pool.available < -amount
            return
        self.pool.granted += amount

    @rule(user=st.sampled_from(MEMBERS), roles=st.sampled_from(ROLE_SETS))
    def balance(self, user: int, roles: tuple[int, ...]) -> None:
        account = self.refilled(user, roles)
        balance = self.run(self.ledger.balance(GUILD, user, role_ids=roles))
        assert (balance.allowance, balance.granted, balance.held) == (
            account.allowance,
            account.granted,
            account.held,
        )
        assert (balance.allowance_level, balance.period.value) == self.allowance(roles)
        self.members[user] = account

    @rule(user=st.sampled_from(MEMBERS), blocked=st.booleans())
    def block(self, user: int, blocked: bool) -> None:
        account = self.stored(user)  # a block knows no roles and never refills
        if blocked:
            self.run(self.ledger.block(GUILD, user, actor_id=MOD))
        else:
            self.run(self.ledger.unblock(GUILD, user, actor_id=MOD))
        account.blocked = blocked
        self.members[user] = account

    @rule(policy=st.sampled_from(FundingPolicy))
    def set_policy(self, policy: FundingPolicy) -> None:
        self.run(self.ledger.set_policy(GUILD, policy, actor_id=MOD))
        self.policy = policy

    @rule(level=st.integers(0, 40), period=st.sampled_from(["daily", "weekly", "none"]))
    def set_allowance(self, level: int, period: str) -> None:
        self.run(self.ledger.set_allowance(GUILD, level, Period(period), actor_id=MOD))
        self.level, self.period = level, period

    @rule(
        role=st.sampled_from((VIP, MUTED)),
        level=st.integers(0, 60),
        period=st.sampled_from(["daily", "weekly", "monthly", "none"]),
    )
    def set_role_allowance(self, role: int, level: int, period: str) -> None:
        self.run(
            self.ledger.set_allowance(GUILD, level, Period(period), role_id=role, actor_id=MOD)
        )
        self.role_levels[role] = (level, period)

    @rule(role=st.sampled_from((VIP, MUTED)))
    def clear_role_allowance(self, role: int) -> None:
        cleared = self.run(self.ledger.clear_role_allowance(GUILD, role, actor_id=MOD))
        assert cleared == (self.role_levels.pop(role, None) is not None)

    @rule(hours=st.integers(1, 60))
    def advance_clock(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    # -- after every step ---------------------------------------------------------------------

    @invariant()
    def stored_figures_match_the_model(self) -> None:
        def figures(db):
            return {
                (kind, user): (allowance, granted, held, bool(blocked))
                for kind, user, allowance, granted, held, blocked in db.execute(
                    "SELECT kind, user_id, allowance, granted, held, blocked FROM accounts"
                )
            }

        stored = self.run(self.store.read(figures))
        for user, account in self.members.items():
            expected = (account.allowance, account.granted, account.held, account.blocked)
            assert stored[("member", user)] == expected, user
        if ("pool", 0) in stored:
            assert stored[("pool", 0)][:3] == (
                self.pool.allowance,
                self.pool.granted,
                self.pool.held,
            )
        holds = self.run(self.ledger.holds(GUILD))
        assert {h.job_id: (h.state, h.charged) for h in holds} == {
            job: (h.state, h.charged) for job, h in self.holds.items()
        }

    @invariant()
    def the_ledger_checks_out(self) -> None:
        report = self.run(self.ledger.check())
        assert report.problems == ()
        assert all(
            a.allowance >= 0 and a.granted >= 0 and a.held >= 0 and a.available >= 0
            for a in (*self.members.values(), self.pool)
        )


LedgerMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerModel = LedgerMachine.TestCase


@pytest.mark.postgres
def test_the_ledger_model_holds_on_postgresql(pg_url: str, pg_database: SharedDatabase) -> None:
    """The same machine on PostgreSQL, fewer examples (each step is a few round trips)."""

    def machine() -> LedgerMachine:
        pg_database.empty()  # every example starts from empty tables
        return LedgerMachine(pg_url)

    run_state_machine_as_test(
        machine,
        settings=settings(
            LedgerMachine.TestCase.settings, max_examples=PG_EXAMPLES, database=None
        ),
    )
