"""Leases on one database shared by two processes' stores: claims, heartbeats, fencing,
and the fair line of a provider over both.

Two `Leases` with different owners stand for two processes; a settable clock moves time
past a lease's end without waiting for it. Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

import pytest

from paddock.budget import Period
from paddock.fair_slots import SlotTaken, admit_in
from paddock.jobs import JobState, JobStore
from paddock.leases import LeaseLost, Leases, RunnerLock
from tests.ledger_support import ALICE, BOB, GUILD, MOD, Clock, open_all

REQUEST = {"mode": "text", "prompt": "a lighthouse", "resolution": "720p", "duration": 5}
TTL = 30.0
OTHER_GUILD, CAROL = 2002, 21


class Seconds:
    """A Unix-time clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def parts(db_location: Path | str):
    store, ledger, jobs = await open_all(db_location, Clock())
    for guild in (GUILD, OTHER_GUILD):
        await ledger.set_allowance(guild, 100, Period.DAILY, actor_id=MOD)
    yield store, ledger, jobs
    await store.close()


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


@pytest.fixture
def two(parts, seconds) -> tuple[Leases, Leases]:
    store = parts[0]
    return (Leases(store, ttl=TTL, clock=seconds, owner="a"),
            Leases(store, ttl=TTL, clock=seconds, owner="b"))


async def accepted_by(jobs: JobStore, leases: Leases, provider: str = "joypix", *,
                      guild: int = GUILD, member: int = ALICE) -> str:
    jobs.lease_new_jobs(leases.new_job_lease)
    accepted = await jobs.accept(guild_id=guild, user_id=member, channel_id=77,
                                 request=REQUEST, estimated_credits=30, role_ids=(),
                                 provider=provider)
    return accepted.job.id


async def test_a_new_job_is_leased_to_the_process_that_accepts_it(parts, two) -> None:
    _, _, jobs = parts
    a, b = two
    job_id = await accepted_by(jobs, a)
    assert await b.claim(job_id) is None  # held, lease not over
    assert await b.claim_lapsed() == []
    assert (await a.claim(job_id)) is not None  # its own: claimed again
    assert (await a.renew()).held == {job_id}


async def test_another_process_takes_a_job_once_its_lease_ends_and_the_first_is_fenced(
    parts, two, seconds
) -> None:
    _, ledger, jobs = parts
    a, b = two
    job_id = await accepted_by(jobs, a)
    driver_a, driver_b = jobs.fenced(a.fence), jobs.fenced(b.fence)
    await driver_a.mark_submitting(job_id)
    await driver_a.mark_submitted(job_id, provider_task_id="task-1")

    seconds.now += TTL + 1  # A stopped renewing (killed, or paused)
    [taken] = await b.claim_lapsed()
    assert (taken.id, taken.state, taken.provider_task_id) == (job_id, JobState.SUBMITTED,
                                                               "task-1")
    # A wakes up: each write it tries is refused, and changes nothing.
    with pytest.raises(LeaseLost):
        await driver_a.mark_running(job_id)
    with pytest.raises(LeaseLost):
        await driver_a.mark_failed(job_id, error="it timed out here")
    with pytest.raises(LeaseLost):
        await a.confirm(job_id)
    assert (await a.renew()).held == frozenset()
    assert (await jobs.get(job_id)).state is JobState.SUBMITTED
    assert [h.state for h in await ledger.holds(GUILD)] == ["pending"]  # nothing charged

    await driver_b.mark_running(job_id)
    await driver_b.mark_succeeded(job_id, result_url="https://x/v.mp4", charged=30)
    await b.confirm(job_id)
    done = await driver_b.mark_delivered(job_id)
    assert done.state is JobState.DELIVERED
    [hold] = await ledger.holds(GUILD)
    assert (hold.state, hold.charged) == ("settled", 30)
    # The end gave the lease up: no heartbeat renews it, no takeover picks it.
    assert (await b.renew()).held == frozenset()
    seconds.now += TTL + 1
    assert await a.claim_lapsed() == []


async def test_a_clean_stop_releases_every_lease_at_once(parts, two) -> None:
    _, _, jobs = parts
    a, b = two
    first, second = await accepted_by(jobs, a), await accepted_by(jobs, a)
    assert await a.release_all() == 2
    assert {j.id for j in await b.claim_lapsed()} == {first, second}


async def test_a_callback_at_another_process_is_kept_for_the_owners_heartbeat(
    parts, two
) -> None:
    _, _, jobs = parts
    a, b = two
    job_id = await accepted_by(jobs, a)
    driver_a = jobs.fenced(a.fence)
    await driver_a.mark_submitting(job_id)
    await driver_a.mark_submitted(job_id, provider_task_id="task-7")
    await b.record_wake("task-7")  # the callback reached B
    await b.record_wake("task-7")  # repeated: kept once
    assert (await b.renew()).woken == ()  # not B's task
    assert (await a.renew()).woken == ("task-7",)
    assert (await a.renew()).woken == ()  # taken once


async def test_a_cancel_from_another_process_ends_the_lease(parts, two) -> None:
    _, ledger, jobs = parts
    a, b = two
    job_id = await accepted_by(jobs, a)
    cancelled = await jobs.cancel(job_id)  # any process may cancel a job still in line
    assert cancelled.state is JobState.CANCELLED
    assert (await a.renew()).held == frozenset()
    assert await b.claim_lapsed(every_lease=True) == []
    assert [h.state for h in await ledger.holds(GUILD)] == ["refunded"]


async def test_the_limits_on_jobs_at_once_count_every_process(parts, two) -> None:
    _, _, jobs = parts
    a, b = two
    first = await accepted_by(jobs, a)
    await jobs.fenced(a.fence).mark_submitting(first)  # A's job: its submit is on its way
    second = await accepted_by(jobs, b)
    driver_b = jobs.fenced(b.fence)

    def limits(slots: int, member_cap: int | None):
        return functools.partial(admit_in, owner="b", slots=slots, member_cap=member_cap,
                                 clock=b.clock)

    with pytest.raises(SlotTaken):
        await driver_b.mark_submitting(second, admit=limits(1, None))  # A holds the slot
    with pytest.raises(SlotTaken):
        await driver_b.mark_submitting(second, admit=limits(2, 1))  # Alice's one job is out
    assert (await jobs.get(second)).submit_attempted_at is None  # refused: nothing stored
    sent = await driver_b.mark_submitting(second, admit=limits(2, 2))
    assert sent.submit_attempted_at is not None


async def test_a_runner_alone_on_the_database_knows_it_and_one_beside_another_does_not(
    parts,
) -> None:
    """The lock that lets a restart take every lease back at once: an OS file lock beside
    SQLite, a session advisory lock on PostgreSQL; either is dropped when its holder ends."""
    store = parts[0]
    first, second, third, fourth = (RunnerLock(store) for _ in range(4))
    assert await first.acquire() is True  # nobody else runs: every lease is a dead one's
    await first.share()
    assert await second.acquire() is False  # the first still runs
    await first.release()  # as when its process dies
    assert await third.acquire() is False  # the second still runs
    await second.release()
    await third.release()
    assert await fourth.acquire() is True  # all gone
    await fourth.release()


async def test_a_lease_taken_by_a_write_that_waited_in_line_lasts_from_when_it_ran(
    parts, two, seconds
) -> None:
    """In a burst, writes wait behind each other; a lease whose end was counted before its
    write waited would be short by that wait, and another process would take a live job."""
    store, _, jobs = parts
    a, b = two
    job_id = await accepted_by(jobs, a)
    seconds.now += TTL + 1  # a's lease ended: b may take the job
    line = threading.Event()
    ahead = asyncio.ensure_future(store.write(lambda db: line.wait(30)))  # a long write
    claim = asyncio.ensure_future(b.claim(job_id))
    await asyncio.sleep(0)  # both writes are asked for, in this order
    seconds.now += 20  # the claim waits this long in line
    line.set()
    await ahead
    assert (await claim) is not None
    until = await store.read(lambda db: db.execute(
        "SELECT lease_until FROM jobs WHERE id = ?", [job_id]).fetchone()[0])
    assert until == seconds.now + TTL


def asks_for_a_slot(jobs: JobStore, leases: Leases, slots: int):
    """`job_id` asks for one of `slots` slots at its provider as `leases`' process does."""
    driver = jobs.fenced(leases.fence)
    admit = functools.partial(admit_in, owner=leases.owner, slots=slots, member_cap=None,
                              clock=leases.clock)
    return lambda job_id: driver.mark_submitting(job_id, admit=admit)


async def test_a_server_that_asked_second_in_another_process_goes_before_a_third_job(
    parts, two
) -> None:
    """Process A has three jobs of one server; process B, one of a server that asked after
    them. Two slots: A's first two go, and when a slot frees B's server has its turn before
    A's third job, though A asks first (each process retries on its own)."""
    _, _, jobs = parts
    a, b = two
    first, second, third = [await accepted_by(jobs, a, member=m) for m in (ALICE, BOB, ALICE)]
    carols = await accepted_by(jobs, b, guild=OTHER_GUILD, member=CAROL)
    ask_a, ask_b = asks_for_a_slot(jobs, a, 2), asks_for_a_slot(jobs, b, 2)
    await ask_a(first)
    await ask_a(second)
    with pytest.raises(SlotTaken, match="all 2 of joypix's slot"):
        await ask_b(carols)  # told to wait, and kept in the line
    with pytest.raises(SlotTaken):
        await ask_a(third)

    await jobs.fenced(a.fence).mark_failed(first, error="the render failed")  # a slot frees
    with pytest.raises(SlotTaken, match="go first"):
        await ask_a(third)  # A asks first, but it is the other server's turn
    assert (await ask_b(carols)).submit_attempted_at is not None
    await jobs.fenced(a.fence).mark_failed(second, error="the render failed")
    assert (await ask_a(third)).submit_attempted_at is not None


async def test_a_job_asking_in_a_process_that_died_or_stopped_holds_nobody_back(
    parts, two, seconds
) -> None:
    """A dead process's job drops out of the line when its lease ends; a clean stop's at
    once (it gives its leases up)."""
    _, _, jobs = parts
    a, b = two
    held, mine, later = [await accepted_by(jobs, a, member=m) for m in (ALICE, ALICE, BOB)]
    carols = await accepted_by(jobs, b, guild=OTHER_GUILD, member=CAROL)
    ask_a, ask_b = asks_for_a_slot(jobs, a, 1), asks_for_a_slot(jobs, b, 1)
    await ask_a(held)
    with pytest.raises(SlotTaken):
        await ask_b(carols)
    await jobs.fenced(a.fence).mark_failed(held, error="the render failed")
    with pytest.raises(SlotTaken, match="go first"):
        await ask_a(mine)  # carol's server has not had a turn: hers is next

    seconds.now += TTL + 1  # B died: its lease ended (A's own is renewed)
    await a.renew()
    assert (await ask_a(mine)).submit_attempted_at is not None

    c = Leases(parts[0], ttl=TTL, clock=seconds, owner="c")
    carols_again = await accepted_by(jobs, c, guild=OTHER_GUILD, member=CAROL)
    with pytest.raises(SlotTaken):
        await asks_for_a_slot(jobs, c, 1)(carols_again)
    await c.release_all()  # C stops cleanly
    await jobs.fenced(a.fence).mark_failed(mine, error="the render failed")
    assert (await ask_a(later)).submit_attempted_at is not None
