"""The ledger, operation by operation and error by error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from paddock.budget import FundingPolicy, Limits, Period
from paddock.errors import (
    BalanceInUse,
    ConflictingReservation,
    ConflictingResolution,
    InsufficientCredits,
    InvalidAmount,
    LimitExceeded,
    MemberBlocked,
    PaddockError,
    UnknownHold,
)
from paddock.ledger import Ledger
from paddock.store import Store, open_store
from tests.ledger_support import ALICE, BOB, GUILD, MOD, Clock
from tests.postgres_fixtures import integrity_error

OTHER_GUILD = 2002
ROLE_VIP, ROLE_MUTED = 501, 502


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(db_location: str | Path):
    store = await open_store(db_location)
    yield store
    await store.close()


@pytest.fixture
async def ledger(store: Store, clock: Clock) -> Ledger:
    ledger = Ledger(store, clock=clock)
    await ledger.set_allowance(GUILD, 100, Period.DAILY, actor_id=MOD, reason="launch")
    return ledger


async def available(ledger: Ledger, user: int = ALICE, role_ids: Sequence[int] = ()) -> int:
    return (await ledger.balance(GUILD, user, role_ids=role_ids)).available


async def assert_consistent(ledger: Ledger) -> None:
    report = await ledger.check()
    assert report.problems == ()
    assert report.accounts > 0 and report.entries > 0


# -- two-phase transfers ----------------------------------------------------------------------


async def test_a_new_member_starts_with_the_allowance(ledger: Ledger) -> None:
    balance = await ledger.balance(GUILD, ALICE, role_ids=())
    assert (balance.allowance, balance.granted, balance.held) == (100, 0, 0)
    assert (balance.allowance_level, balance.period) == (100, Period.DAILY)


async def test_reserve_holds_at_once_and_settle_charges_and_releases(ledger: Ledger) -> None:
    reservation = await ledger.reserve("job-1", GUILD, ALICE, 30, role_ids=())
    assert (reservation.from_personal, reservation.from_pool) == (30, 0)
    assert reservation.personal_available == 70
    assert reservation.pool_available is None
    balance = await ledger.balance(GUILD, ALICE, role_ids=())
    assert (balance.total, balance.held, balance.available) == (100, 30, 70)

    hold = await ledger.settle("job-1", 20)
    assert (hold.state, hold.charged, hold.released) == ("settled", 20, 10)
    balance = await ledger.balance(GUILD, ALICE, role_ids=())
    assert (balance.total, balance.held, balance.available) == (80, 0, 80)
    await assert_consistent(ledger)


async def test_refund_releases_everything(ledger: Ledger) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 30, role_ids=())
    hold = await ledger.refund("job-1")
    assert (hold.state, hold.charged, hold.released) == ("refunded", 0, 30)
    assert await available(ledger) == 100
    await assert_consistent(ledger)


async def test_settling_above_the_hold_charges_only_the_hold(ledger: Ledger) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 30, role_ids=())
    hold = await ledger.settle("job-1", 45)
    assert hold.charged == 30
    assert await available(ledger) == 70


async def test_pending_holds_count_against_the_balance(ledger: Ledger) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 60, role_ids=())
    with pytest.raises(InsufficientCredits) as caught:
        await ledger.reserve("job-2", GUILD, ALICE, 50, role_ids=())
    assert (caught.value.available, caught.value.cost) == (40, 50)
    assert (
        str(caught.value) == "Not enough credits: this needs 50 and your balance has 40 available."
    )
    assert await ledger.hold("job-2") is None  # nothing half-written
    await ledger.reserve("job-3", GUILD, ALICE, 40, role_ids=())
    assert await available(ledger) == 0


async def test_repeats_return_the_first_outcome(ledger: Ledger) -> None:
    first = await ledger.reserve("job-1", GUILD, ALICE, 30, role_ids=())
    assert await ledger.reserve("job-1", GUILD, ALICE, 30, role_ids=()) == first
    assert await available(ledger) == 70  # held once, not twice
    settled = await ledger.settle("job-1", 10)
    assert await ledger.settle("job-1", 10) == settled
    again = await ledger.reserve(
        "job-1", GUILD, ALICE, 30, role_ids=()
    )  # the first figures, today's state
    assert (again.amount, again.personal_available, again.hold.state) == (30, 70, "settled")
    await ledger.reserve("job-2", GUILD, ALICE, 5, role_ids=())
    refunded = await ledger.refund("job-2")
    assert await ledger.refund("job-2") == refunded
    assert await available(ledger) == 90
    await assert_consistent(ledger)


async def test_disagreeing_repeats_are_errors(ledger: Ledger) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 30, role_ids=())
    with pytest.raises(ConflictingReservation, match="already holds 30 credits"):
        await ledger.reserve("job-1", GUILD, ALICE, 31, role_ids=())
    with pytest.raises(ConflictingReservation):
        await ledger.reserve("job-1", GUILD, BOB, 30, role_ids=())
    await ledger.settle("job-1", 10)
    with pytest.raises(ConflictingResolution) as caught:
        await ledger.settle("job-1", 11)
    assert str(caught.value) == (
        "Job job-1 was already settled for 10 credits; it can't now be settled for 11 credits."
    )
    with pytest.raises(ConflictingResolution, match="can't now be refunded"):
        await ledger.refund("job-1")
    await ledger.reserve("job-2", GUILD, ALICE, 5, role_ids=())
    await ledger.refund("job-2")
    with pytest.raises(ConflictingResolution, match="already refunded"):
        await ledger.settle("job-2", 5)
    assert await available(ledger) == 90
    await assert_consistent(ledger)


async def test_a_repeated_settle_must_ask_the_same_cost(ledger: Ledger) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 3, role_ids=())
    first = await ledger.settle("job-1", 10)
    assert (first.charged, first.requested) == (3, 10)
    assert await ledger.settle("job-1", 10) == first
    with pytest.raises(ConflictingResolution, match=r"a cost of 10.*a cost of 99"):
        await ledger.settle("job-1", 99)  # would also charge 3, but it is another outcome
    with pytest.raises(ConflictingResolution):
        await ledger.settle("job-1", 3)
    await assert_consistent(ledger)


async def test_unknown_holds_and_bad_amounts_are_refused(ledger: Ledger) -> None:
    with pytest.raises(UnknownHold, match="nope"):
        await ledger.settle("nope", 1)
    with pytest.raises(UnknownHold):
        await ledger.refund("nope")
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(InvalidAmount):
            await ledger.reserve("bad", GUILD, ALICE, bad, role_ids=())  # type: ignore[arg-type]
    await ledger.reserve("job-1", GUILD, ALICE, 3, role_ids=())
    with pytest.raises(InvalidAmount, match="negative"):
        await ledger.settle("job-1", -1)
    with pytest.raises(InvalidAmount, match="zero"):
        await ledger.grant(GUILD, ALICE, 0, actor_id=MOD, role_ids=())


async def test_a_free_job_holds_nothing_but_still_resolves_once(ledger: Ledger) -> None:
    await ledger.reserve("free", GUILD, ALICE, 0, role_ids=())
    assert (await ledger.settle("free", 0)).charged == 0
    assert await available(ledger) == 100
    await assert_consistent(ledger)


# -- funding policy and the pool --------------------------------------------------------------


async def test_pool_policy_spends_only_the_pool(ledger: Ledger) -> None:
    await ledger.set_policy(GUILD, FundingPolicy.POOL, actor_id=MOD, reason="community")
    with pytest.raises(InsufficientCredits, match="the server pool has 0 available"):
        await ledger.reserve("job-1", GUILD, ALICE, 10, role_ids=())
    await ledger.fund_pool(GUILD, 50, actor_id=MOD, reason="donation")
    reservation = await ledger.reserve("job-1", GUILD, ALICE, 10, role_ids=())
    assert (reservation.from_personal, reservation.from_pool) == (0, 10)
    assert reservation.pool_available == 40
    await ledger.settle("job-1", 10)
    assert (await ledger.pool_balance(GUILD)).available == 40
    assert await available(ledger) == 100
    await assert_consistent(ledger)


async def test_personal_then_pool_splits_and_charges_personal_first(ledger: Ledger) -> None:
    await ledger.set_policy(GUILD, FundingPolicy.PERSONAL_THEN_POOL, actor_id=MOD)
    await ledger.fund_pool(GUILD, 50, actor_id=MOD)
    reservation = await ledger.reserve("job-1", GUILD, ALICE, 130, role_ids=())
    assert (reservation.from_personal, reservation.from_pool) == (100, 30)
    assert (reservation.personal_available, reservation.pool_available) == (0, 20)
    await ledger.settle("job-1", 110)  # personal part first: 100 personal, 10 pool
    assert await available(ledger) == 0
    assert (await ledger.pool_balance(GUILD)).available == 40
    with pytest.raises(InsufficientCredits) as caught:
        await ledger.reserve("job-2", GUILD, ALICE, 41, role_ids=())
    assert (caught.value.available, caught.value.cost) == (40, 41)
    assert "your balance and the server pool together" in str(caught.value)
    await assert_consistent(ledger)


async def test_a_refused_pool_part_rolls_back_the_personal_part(ledger: Ledger) -> None:
    await ledger.set_policy(GUILD, FundingPolicy.PERSONAL_THEN_POOL, actor_id=MOD)
    with pytest.raises(InsufficientCredits):
        await ledger.reserve("job-1", GUILD, ALICE, 101, role_ids=())
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).held == 0
    await assert_consistent(ledger)


async def test_taking_from_the_pool_respects_its_holds(ledger: Ledger) -> None:
    await ledger.set_policy(GUILD, FundingPolicy.POOL, actor_id=MOD)
    await ledger.fund_pool(GUILD, 50, actor_id=MOD)
    await ledger.reserve("job-1", GUILD, ALICE, 30, role_ids=())
    with pytest.raises(BalanceInUse):
        await ledger.fund_pool(GUILD, -40, actor_id=MOD)
    with pytest.raises(InsufficientCredits):
        await ledger.fund_pool(GUILD, -60, actor_id=MOD)
    assert (await ledger.fund_pool(GUILD, -20, actor_id=MOD)).available == 0


# -- allowances, refills and grants -----------------------------------------------------------


async def test_daily_refill_tops_up_to_the_allowance_and_never_above(
    ledger: Ledger, clock: Clock
) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 30, role_ids=())
    await ledger.settle("job-1", 30)
    clock.advance(hours=11, minutes=59)  # 23:59, same day
    assert await available(ledger) == 70
    clock.advance(minutes=2)  # next day
    assert await available(ledger) == 100
    clock.advance(days=1)  # unspent allowance does not pile up
    assert await available(ledger) == 100
    await assert_consistent(ledger)


async def test_grants_sit_on_top_and_survive_refills(ledger: Ledger, clock: Clock) -> None:
    await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, reason="contest prize", role_ids=())
    await ledger.reserve("job-1", GUILD, ALICE, 120, role_ids=())
    await ledger.settle("job-1", 120)  # allowance spent first: 100 from it, 20 from the grant
    balance = await ledger.balance(GUILD, ALICE, role_ids=())
    assert (balance.allowance, balance.granted) == (0, 30)
    clock.advance(days=1)
    balance = await ledger.balance(GUILD, ALICE, role_ids=())
    assert (balance.allowance, balance.granted, balance.available) == (100, 30, 130)
    await assert_consistent(ledger)


async def test_a_hold_across_midnight_is_charged_after_the_refill(
    ledger: Ledger, clock: Clock
) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 100, role_ids=())
    clock.advance(days=1)
    assert await available(ledger) == 0  # the allowance was not spent yet: nothing to top up
    await ledger.settle("job-1", 40)
    assert await available(ledger) == 60
    await assert_consistent(ledger)


@pytest.mark.parametrize(
    ("period", "not_yet", "due"),
    [
        (Period.WEEKLY, {"days": 6, "hours": 11}, {"days": 6, "hours": 13}),  # next Monday
        (Period.MONTHLY, {"days": 28, "hours": 11}, {"days": 28, "hours": 13}),  # 1 April
    ],
)
async def test_weekly_and_monthly_refills_wait_for_their_boundary(
    ledger: Ledger, clock: Clock, period: Period, not_yet: dict, due: dict
) -> None:
    await ledger.set_allowance(GUILD, 10, period, actor_id=MOD)
    await ledger.set_balance(GUILD, ALICE, 0, actor_id=MOD, reason="start empty", role_ids=())
    start = clock.current
    clock.advance(**not_yet)
    assert await available(ledger) == 0
    clock.current = start
    clock.advance(**due)
    assert await available(ledger) == 10


async def test_period_none_fills_once_only(store: Store, clock: Clock) -> None:
    ledger = Ledger(store, clock=clock)
    await ledger.set_allowance(GUILD, 25, Period.NONE, actor_id=MOD)
    await ledger.reserve("job-1", GUILD, ALICE, 25, role_ids=())
    await ledger.settle("job-1", 25)
    clock.advance(days=400)
    assert await available(ledger) == 0
    assert (
        await ledger.reset_to_allowance(GUILD, ALICE, actor_id=MOD, role_ids=())
    ).available == 25


async def test_the_highest_role_override_wins_even_below_the_default(
    ledger: Ledger, clock: Clock
) -> None:
    await ledger.set_allowance(GUILD, 500, Period.WEEKLY, role_id=ROLE_VIP, actor_id=MOD)
    await ledger.set_allowance(GUILD, 5, Period.DAILY, role_id=ROLE_MUTED, actor_id=MOD)
    assert await available(ledger, BOB, role_ids=[ROLE_MUTED]) == 5
    vip = await ledger.balance(GUILD, ALICE, role_ids=[ROLE_MUTED, ROLE_VIP, 12345])
    assert (vip.available, vip.allowance_level, vip.period) == (500, 500, Period.WEEKLY)
    settings = await ledger.settings(GUILD)
    assert [r.role_id for r in settings.role_allowances] == [ROLE_VIP, ROLE_MUTED]
    assert await ledger.clear_role_allowance(GUILD, ROLE_VIP, actor_id=MOD)
    assert not await ledger.clear_role_allowance(GUILD, ROLE_VIP, actor_id=MOD)


async def test_changing_roles_never_refills_twice_in_one_period(
    ledger: Ledger, clock: Clock
) -> None:
    await ledger.set_allowance(GUILD, 10, Period.DAILY, actor_id=MOD)
    await ledger.set_allowance(GUILD, 100, Period.WEEKLY, role_id=ROLE_VIP, actor_id=MOD)
    await ledger.reserve("job-1", GUILD, ALICE, 100, role_ids=[ROLE_VIP])
    await ledger.settle("job-1", 100)
    await ledger.block(GUILD, ALICE, actor_id=MOD)  # knows no roles: must not refill
    await ledger.unblock(GUILD, ALICE, actor_id=MOD)
    for _ in range(3):  # the same Monday: neither role set starts a new period
        assert await available(ledger) == 0
        assert await available(ledger, role_ids=[ROLE_VIP]) == 0
    clock.advance(days=1)  # Tuesday: a new day, but not a new week
    assert await available(ledger, role_ids=[ROLE_VIP]) == 0
    clock.advance(days=6)  # next Monday
    assert await available(ledger, role_ids=[ROLE_VIP]) == 100
    assert await available(ledger) == 100  # refilled this Monday already
    refills = [e for e in await ledger.history(GUILD, ALICE) if e.kind == "refill"]
    assert [e.change for e in refills] == [100, 100]
    await assert_consistent(ledger)


async def test_block_does_not_refill(ledger: Ledger, clock: Clock) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 60, role_ids=())
    await ledger.settle("job-1", 60)
    clock.advance(days=1)
    assert (await ledger.block(GUILD, ALICE, actor_id=MOD)).available == 40
    assert (await ledger.block(GUILD, BOB, actor_id=MOD)).available == 0  # created, not filled
    assert await available(ledger) == 100
    assert await available(ledger, BOB) == 100  # filled at first use
    await assert_consistent(ledger)


async def test_a_lowered_allowance_does_not_carry_over(ledger: Ledger, clock: Clock) -> None:
    await ledger.set_allowance(GUILD, 50, Period.DAILY, actor_id=MOD)
    await ledger.grant(GUILD, ALICE, 7, actor_id=MOD, role_ids=())
    await ledger.grant(GUILD, BOB, 7, actor_id=MOD, role_ids=())
    await ledger.reserve("bob-job", GUILD, BOB, 30, role_ids=())
    await ledger.set_allowance(GUILD, 5, Period.DAILY, actor_id=MOD)
    clock.advance(days=1)
    alice = await ledger.balance(GUILD, ALICE, role_ids=())
    assert (alice.allowance, alice.granted) == (5, 7)  # down to the allowance; grants stay
    # Bob's pending job keeps what it holds of the allowance part, and no more.
    bob = await ledger.balance(GUILD, BOB, role_ids=())
    assert (bob.allowance, bob.granted, bob.held, bob.available) == (30, 7, 30, 7)
    await ledger.settle("bob-job", 30)
    bob = await ledger.balance(GUILD, BOB, role_ids=())
    assert (bob.allowance, bob.granted) == (0, 7)
    clock.advance(days=1)
    bob = await ledger.balance(GUILD, BOB, role_ids=())
    assert (bob.allowance, bob.granted) == (5, 7)
    await assert_consistent(ledger)


async def test_negative_grants_take_granted_credits_first(ledger: Ledger) -> None:
    await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, role_ids=())
    balance = await ledger.grant(
        GUILD, ALICE, -30, actor_id=MOD, reason="refund abuse", role_ids=()
    )
    assert (balance.allowance, balance.granted) == (90, 0)
    with pytest.raises(InsufficientCredits, match="this member's balance has 90 available"):
        await ledger.grant(GUILD, ALICE, -91, actor_id=MOD, role_ids=())
    await ledger.reserve("job-1", GUILD, ALICE, 50, role_ids=())
    with pytest.raises(BalanceInUse) as caught:
        await ledger.grant(GUILD, ALICE, -60, actor_id=MOD, role_ids=())
    assert (caught.value.requested, caught.value.held) == (30, 50)
    await assert_consistent(ledger)


async def test_set_balance_fills_the_allowance_part_then_grants(
    ledger: Ledger, clock: Clock
) -> None:
    balance = await ledger.set_balance(
        GUILD, ALICE, 150, actor_id=MOD, reason="apology", role_ids=()
    )
    assert (balance.allowance, balance.granted) == (100, 50)
    balance = await ledger.set_balance(GUILD, ALICE, 40, actor_id=MOD, role_ids=())
    assert (balance.allowance, balance.granted) == (40, 0)
    clock.advance(days=1)
    assert await available(ledger) == 100
    await ledger.reserve("job-1", GUILD, ALICE, 60, role_ids=())
    with pytest.raises(BalanceInUse, match="60 credits are held"):
        await ledger.set_balance(GUILD, ALICE, 59, actor_id=MOD, role_ids=())
    balance = await ledger.reset_to_allowance(GUILD, ALICE, actor_id=MOD, role_ids=())
    assert (balance.total, balance.held) == (100, 60)
    await assert_consistent(ledger)


# -- blocks and limits ------------------------------------------------------------------------


async def test_blocked_members_cannot_reserve_but_running_jobs_finish(ledger: Ledger) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 10, role_ids=())
    await ledger.block(GUILD, ALICE, actor_id=MOD, reason="spam")
    with pytest.raises(MemberBlocked) as caught:
        await ledger.reserve("job-2", GUILD, ALICE, 10, role_ids=())
    assert str(caught.value) == "You are blocked from generating videos on this server."
    await ledger.settle("job-1", 10)
    await ledger.reserve("bob-1", GUILD, BOB, 10, role_ids=())  # others are unaffected
    await ledger.unblock(GUILD, ALICE, actor_id=MOD, reason="appeal")
    await ledger.reserve("job-2", GUILD, ALICE, 10, role_ids=())


async def test_the_job_cost_limit(ledger: Ledger) -> None:
    await ledger.set_limits(GUILD, Limits(max_job_cost=40), actor_id=MOD)
    with pytest.raises(LimitExceeded) as caught:
        await ledger.reserve("job-1", GUILD, ALICE, 41, role_ids=())
    assert caught.value.limit_name == "job_cost"
    assert str(caught.value) == "This server allows at most 40 credits per job; this one costs 41."
    await ledger.reserve("job-1", GUILD, ALICE, 40, role_ids=())


async def test_the_member_spend_limit_counts_holds_and_charges_per_period(
    ledger: Ledger, clock: Clock
) -> None:
    await ledger.grant(GUILD, ALICE, 1000, actor_id=MOD, role_ids=())
    await ledger.set_limits(
        GUILD, Limits(member_spend=50, member_spend_period=Period.WEEKLY), actor_id=MOD
    )
    await ledger.reserve("job-1", GUILD, ALICE, 30, role_ids=())
    await ledger.reserve("job-2", GUILD, ALICE, 15, role_ids=())
    await ledger.refund("job-2")  # refunds don't count
    await ledger.settle("job-1", 20)  # only the charge counts once settled
    await ledger.reserve("job-3", GUILD, ALICE, 30, role_ids=())
    with pytest.raises(LimitExceeded) as caught:
        await ledger.reserve("job-4", GUILD, ALICE, 1, role_ids=())
    assert (caught.value.limit_name, caught.value.used) == ("member_spend", 50)
    assert "50 credits per week; you have used 50" in str(caught.value)
    await ledger.reserve("bob-1", GUILD, BOB, 50, role_ids=())  # per member
    clock.advance(days=7)
    await ledger.reserve("job-4", GUILD, ALICE, 50, role_ids=())


async def test_the_daily_ceiling_caps_the_whole_server(ledger: Ledger, clock: Clock) -> None:
    await ledger.set_limits(GUILD, Limits(daily_ceiling=120), actor_id=MOD)
    await ledger.reserve("a-1", GUILD, ALICE, 70, role_ids=())
    with pytest.raises(LimitExceeded, match="daily ceiling of 120 credits \\(70 used\\)"):
        await ledger.reserve("b-1", GUILD, BOB, 60, role_ids=())
    await ledger.reserve("b-1", GUILD, BOB, 50, role_ids=())
    await ledger.reserve("x-1", OTHER_GUILD, BOB, 0, role_ids=())  # other servers are not affected
    clock.advance(days=1)
    await ledger.reserve("b-2", GUILD, BOB, 50, role_ids=())


async def test_concurrent_job_limits_count_pending_holds(ledger: Ledger) -> None:
    await ledger.set_limits(GUILD, Limits(member_jobs=2, server_jobs=3), actor_id=MOD)
    await ledger.reserve("a-1", GUILD, ALICE, 1, role_ids=())
    await ledger.reserve("a-2", GUILD, ALICE, 1, role_ids=())
    with pytest.raises(LimitExceeded, match="You already have 2 jobs running"):
        await ledger.reserve("a-3", GUILD, ALICE, 1, role_ids=())
    await ledger.reserve("b-1", GUILD, BOB, 1, role_ids=())
    with pytest.raises(LimitExceeded, match="already has 3 jobs running, its limit is 3"):
        await ledger.reserve("b-2", GUILD, BOB, 1, role_ids=())
    await ledger.settle("a-1", 1)
    await ledger.reserve("b-2", GUILD, BOB, 1, role_ids=())


async def test_limits_are_stored_and_replaced_whole(ledger: Ledger) -> None:
    limits = Limits(max_job_cost=9, member_spend=8, member_spend_period=Period.MONTHLY,
                    daily_ceiling=7, member_jobs=6, server_jobs=5)  # fmt: skip
    await ledger.set_limits(GUILD, limits, actor_id=MOD)
    assert (await ledger.settings(GUILD)).limits == limits
    await ledger.set_limits(GUILD, Limits(), actor_id=MOD)
    assert (await ledger.settings(GUILD)).limits == Limits()
    with pytest.raises(ValueError, match="period"):
        await ledger.set_limits(GUILD, Limits(member_spend_period=Period.NONE), actor_id=MOD)


async def test_updating_limits_changes_only_those_given_and_journals_from_and_to(
    ledger: Ledger,
) -> None:
    await ledger.set_limits(GUILD, Limits(max_job_cost=50, member_jobs=2), actor_id=MOD)

    change = await ledger.update_limits(
        GUILD, actor_id=MOD + 1, reason="busy night", member_jobs=1, server_jobs=4,
        max_job_cost=50,  # given, but the same: not a change
    )  # fmt: skip

    after = Limits(max_job_cost=50, member_jobs=1, server_jobs=4)
    assert (change.before, change.after) == (Limits(max_job_cost=50, member_jobs=2), after)
    assert change.changed == ("member_jobs", "server_jobs")
    assert (await ledger.settings(GUILD)).limits == after
    [entry, *_] = await ledger.audit_log(GUILD)
    assert (entry.kind, entry.actor_id, entry.reason) == ("limits", MOD + 1, "busy night")
    assert entry.detail is not None
    assert entry.detail["changed"] == {"member_jobs": [2, 1], "server_jobs": [None, 4]}
    assert entry.detail["max_job_cost"] == 50 and entry.detail["server_jobs"] == 4

    lifted = await ledger.update_limits(GUILD, actor_id=MOD, member_spend_period="weekly",
                                        max_job_cost=None)  # fmt: skip
    assert lifted.after == Limits(member_spend_period=Period.WEEKLY, member_jobs=1, server_jobs=4)
    assert lifted.changed == ("max_job_cost", "member_spend_period")


async def test_an_update_that_changes_nothing_writes_nothing(ledger: Ledger) -> None:
    await ledger.set_limits(GUILD, Limits(member_jobs=2), actor_id=MOD)
    entries = len(await ledger.audit_log(GUILD))

    same = await ledger.update_limits(GUILD, actor_id=MOD, member_jobs=2)
    none = await ledger.update_limits(GUILD, actor_id=MOD)

    assert same.changed == none.changed == ()
    assert same.after == none.after == Limits(member_jobs=2)
    assert len(await ledger.audit_log(GUILD)) == entries


async def test_a_bad_limits_update_changes_nothing(ledger: Ledger) -> None:
    await ledger.set_limits(GUILD, Limits(member_jobs=2), actor_id=MOD)
    entries = len(await ledger.audit_log(GUILD))

    with pytest.raises(TypeError, match="no such limit: jobs"):
        await ledger.update_limits(GUILD, actor_id=MOD, jobs=3)
    with pytest.raises(InvalidAmount):
        await ledger.update_limits(GUILD, actor_id=MOD, member_jobs=1, server_jobs=-1)
    with pytest.raises(ValueError, match="period"):
        await ledger.update_limits(GUILD, actor_id=MOD, member_spend_period=Period.NONE)

    assert (await ledger.settings(GUILD)).limits == Limits(member_jobs=2)
    assert len(await ledger.audit_log(GUILD)) == entries


async def test_concurrent_updates_of_different_limits_all_survive(ledger: Ledger) -> None:
    """Five moderators change five different limits at the same moment: each update reads
    and writes inside its own transaction, so none overwrites another with a stale read."""
    wanted = {"max_job_cost": 40, "member_spend": 300, "daily_ceiling": 1000,
              "member_jobs": 2, "server_jobs": 6}  # fmt: skip

    changes = await asyncio.gather(*(
        ledger.update_limits(GUILD, actor_id=MOD + n, **{name: value})
        for n, (name, value) in enumerate(wanted.items())
    ))  # fmt: skip

    assert (await ledger.settings(GUILD)).limits == Limits(**wanted)
    assert [change.changed for change in changes] == [(name,) for name in wanted]
    journaled = [e.detail["changed"] for e in await ledger.audit_log(GUILD) if e.kind == "limits"]
    assert sorted(len(change) for change in journaled) == [1] * 5  # each its own change
    merged = {name: fromto for change in journaled for name, fromto in change.items()}
    assert merged == {name: [None, value] for name, value in wanted.items()}
    # Applied one after another: the last update's "after" holds every change.
    final = await ledger.audit_log(GUILD, limit=1)
    assert {name: final[0].detail[name] for name in wanted} == wanted


# -- journal, history, audit and check --------------------------------------------------------


async def test_every_moderator_action_records_who_when_and_why(
    ledger: Ledger, clock: Clock
) -> None:
    clock.advance(minutes=5)
    await ledger.grant(GUILD, ALICE, 5, actor_id=MOD, reason="bug bounty", role_ids=())
    await ledger.set_balance(GUILD, ALICE, 50, actor_id=MOD + 1, reason="fix", role_ids=())
    await ledger.block(GUILD, ALICE, actor_id=MOD, reason="spam")
    await ledger.set_policy(GUILD, FundingPolicy.POOL, actor_id=MOD, reason="pool")
    await ledger.fund_pool(GUILD, 10, actor_id=MOD, reason="seed")
    await ledger.set_limits(GUILD, Limits(max_job_cost=3), actor_id=MOD, reason="cap")
    log = await ledger.audit_log(GUILD)
    by_kind = {e.kind: e for e in log}
    assert [e.kind for e in log] == [
        "limits", "fund", "policy", "block", "set", "grant", "refill", "allowance",
    ]  # fmt: skip
    assert (by_kind["grant"].actor_id, by_kind["grant"].reason) == (MOD, "bug bounty")
    assert (by_kind["grant"].change, by_kind["grant"].available) == (5, 105)
    assert (by_kind["set"].actor_id, by_kind["set"].change) == (MOD + 1, -55)
    assert by_kind["limits"].detail is not None and by_kind["limits"].detail["max_job_cost"] == 3
    assert by_kind["fund"].account == "pool"
    assert all(e.at == clock.current for e in log if e.kind != "allowance")


async def test_history_shows_a_members_own_entries_including_pool_spending(
    ledger: Ledger,
) -> None:
    await ledger.set_policy(GUILD, FundingPolicy.PERSONAL_THEN_POOL, actor_id=MOD)
    await ledger.fund_pool(GUILD, 100, actor_id=MOD)
    await ledger.reserve("a-1", GUILD, ALICE, 120, role_ids=())
    await ledger.settle("a-1", 110)
    await ledger.reserve("b-1", GUILD, BOB, 1, role_ids=())
    history = await ledger.history(GUILD, ALICE)
    assert [(e.kind, e.account, e.change, e.held_change) for e in history] == [
        ("settle", "pool", -10, -20),
        ("settle", "member", -100, -100),
        ("hold", "pool", 0, 20),
        ("hold", "member", 0, 100),
        ("refill", "member", 100, 0),
    ]
    assert {e.user_id for e in await ledger.audit_log(GUILD, BOB)} == {BOB}
    page = await ledger.audit_log(GUILD, limit=2)
    older = await ledger.audit_log(GUILD, limit=2, before=page[-1].id)
    assert len(page) == len(older) == 2 and older[0].id < page[-1].id


async def test_check_catches_a_balance_changed_outside_the_journal(
    ledger: Ledger, store: Store
) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 10, role_ids=())
    await assert_consistent(ledger)
    await store.write(lambda db: db.execute("UPDATE accounts SET granted = granted + 7"))
    report = await ledger.check()
    assert not report.ok
    assert any("!= journal sums 100/0/10" in p for p in report.problems)


async def test_check_catches_a_hold_out_of_step_with_its_account(
    ledger: Ledger, store: Store
) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 10, role_ids=())
    await store.write(
        lambda db: db.execute(
            "INSERT INTO journal (at, guild_id, account_id, kind, job_id, d_held)"
            " VALUES ('2025-01-01', ?, 1, 'hold', 'job-1', 5)",
            [GUILD],
        )
    )
    problems = (await ledger.check()).problems
    assert any("!= journal sums 100/0/15" in p for p in problems)
    assert any("hold job-1 (pending, 10 held" in p and "15 still held" in p for p in problems)


async def test_check_catches_a_settle_charging_the_member_for_the_pools_share(
    ledger: Ledger, store: Store
) -> None:
    await ledger.set_policy(GUILD, FundingPolicy.PERSONAL_THEN_POOL, actor_id=MOD)
    await ledger.fund_pool(GUILD, 50, actor_id=MOD)
    await ledger.reserve("job-0", GUILD, ALICE, 96, role_ids=())
    split = await ledger.reserve("job-1", GUILD, ALICE, 10, role_ids=())
    assert (split.from_personal, split.from_pool) == (4, 6)
    await ledger.refund("job-0")
    await ledger.settle("job-1", 10)
    await assert_consistent(ledger)

    def charge_member_for_pool(db) -> None:
        # Cached balances and journal sums agree, and job-1 still nets 10 charged in all:
        # only the split between the two accounts is wrong.
        member, pool = (
            db.execute(
                "SELECT id FROM accounts WHERE guild_id = ? AND kind = ?", [GUILD, kind]
            ).fetchone()[0]
            for kind in ("member", "pool")
        )
        for account_id, delta in ((member, -6), (pool, 6)):
            db.execute(
                "INSERT INTO journal (at, guild_id, account_id, kind, job_id, d_allowance)"
                " VALUES ('2025-01-01', ?, ?, 'settle', 'job-1', ?)",
                [GUILD, account_id, delta],
            )
            db.execute(
                "UPDATE accounts SET allowance = allowance + ? WHERE id = ?", [delta, account_id]
            )

    await store.write(charge_member_for_pool)
    problems = (await ledger.check()).problems
    assert any("hold job-1 (settled, 4 held, 4 charged on the personal" in p for p in problems)
    assert any("6 held, 6 charged on the pool" in p and "0 charged" in p for p in problems)


async def test_the_database_refuses_to_resolve_a_hold_twice(ledger: Ledger, store: Store) -> None:
    await ledger.reserve("job-1", GUILD, ALICE, 10, role_ids=())
    await ledger.settle("job-1", 10)
    with pytest.raises(integrity_error(store), match="exactly once"):
        await store.write(lambda db: db.execute("UPDATE holds SET state = 'refunded'"))
    with pytest.raises(integrity_error(store), match="never deleted"):
        await store.write(lambda db: db.execute("DELETE FROM holds"))


async def test_every_domain_error_is_a_paddock_error_with_a_readable_message() -> None:
    errors = [
        InsufficientCredits(3, 5),
        BalanceInUse(1, 2),
        MemberBlocked(1, 2),
        LimitExceeded("member_jobs", 2, used=2),
        UnknownHold("j"),
        ConflictingResolution("j", "refunded", "settled for 3 credits"),
        ConflictingReservation("j", "3 credits", "4 credits"),
        InvalidAmount(-1, "it can't be negative"),
    ]
    for error in errors:
        assert isinstance(error, PaddockError)
        text = str(error)
        assert text and "Traceback" not in text and text[0].isupper()
