"""The job store: what it keeps, the state machine, credits per state, queries and the sweep."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from paddock.budget import Period
from paddock.errors import AlreadyFinished, InsufficientCredits, InvalidTransition, JobNotFound
from paddock.jobs import JobState, JobStore
from paddock.ledger import Ledger
from paddock.store import Store
from tests.ledger_support import ALICE, BOB, GUILD, MOD, Clock, open_all

REQUEST = {"prompt": "a horse on a beach", "seconds": 5, "resolution": "720p"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def parts(db_location: Path | str, clock: Clock):
    store, ledger, jobs = await open_all(db_location, clock)
    await ledger.set_allowance(GUILD, 100, Period.DAILY, actor_id=MOD)
    yield store, ledger, jobs
    await store.close()


@pytest.fixture
def ledger(parts) -> Ledger:
    return parts[1]


@pytest.fixture
def jobs(parts) -> JobStore:
    return parts[2]


async def accept(
    jobs: JobStore, user: int = ALICE, credits: int = 30, role_ids: tuple[int, ...] = (), **kw
):
    return await jobs.accept(
        guild_id=GUILD, user_id=user, channel_id=77, request=REQUEST, estimated_credits=credits,
        role_ids=role_ids, **kw,
    )  # fmt: skip


async def test_accept_keeps_what_a_restart_needs_and_holds_the_credits(
    jobs: JobStore, ledger: Ledger, clock: Clock
) -> None:
    expires = clock.current + timedelta(minutes=15)
    accepted = await accept(
        jobs, interaction_token="tok", token_expires_at=expires, provider="joypix",
        idempotency_key="interaction-1", timeout=timedelta(minutes=10),
    )  # fmt: skip
    job = await jobs.get(accepted.job.id)
    assert job == accepted.job and not accepted.duplicate
    assert (job.guild_id, job.channel_id, job.user_id) == (GUILD, 77, ALICE)
    assert (job.interaction_token, job.token_expires_at) == ("tok", expires)
    assert (job.request, job.provider, job.idempotency_key) == (REQUEST, "joypix", "interaction-1")
    assert (job.state, job.estimated_credits, job.charged_credits) == (JobState.ACCEPTED, 30, None)
    assert (job.created_at, job.deadline_at) == (
        clock.current,
        clock.current + timedelta(minutes=10),
    )
    assert job.in_flight and job.delivery_attempts == 0
    assert accepted.reservation.amount == 30 and accepted.reservation.personal_available == 70
    assert (await ledger.hold(job.id)).state == "pending"  # type: ignore[union-attr]


async def test_a_refused_reservation_stores_no_job(jobs: JobStore, ledger: Ledger) -> None:
    with pytest.raises(InsufficientCredits):
        await accept(jobs, credits=101)
    assert await jobs.list_for_member(GUILD, ALICE) == []
    assert await ledger.holds(GUILD) == []


async def test_accept_refills_to_the_allowance_of_the_members_roles(
    jobs: JobStore, ledger: Ledger
) -> None:
    vip = 4242
    await ledger.set_allowance(GUILD, 300, Period.DAILY, role_id=vip, actor_id=MOD)

    accepted = await accept(jobs, user=BOB, credits=250, role_ids=(vip,))

    assert accepted.reservation.personal_available == 50  # the role's 300, not the server's 100
    with pytest.raises(InsufficientCredits):
        await accept(jobs, credits=250, role_ids=())  # Alice has no role: 100 a day


async def test_a_repeated_idempotency_key_returns_the_first_job(
    jobs: JobStore, ledger: Ledger
) -> None:
    first = await accept(jobs, idempotency_key="click-1")
    again = await accept(jobs, idempotency_key="click-1")
    assert again.duplicate and again.job.id == first.job.id
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).held == 30
    assert len(await jobs.list_for_member(GUILD, ALICE)) == 1


async def test_the_happy_path_settles_and_stamps_every_step(
    jobs: JobStore, ledger: Ledger, clock: Clock
) -> None:
    job_id = (await accept(jobs)).job.id
    clock.advance(seconds=1)
    job = await jobs.mark_submitted(job_id, provider_task_id="task-9", provider="wavespeed")
    assert (job.state, job.provider_task_id, job.provider) == (
        JobState.SUBMITTED,
        "task-9",
        "wavespeed",
    )
    assert job.submitted_at == clock.current
    clock.advance(seconds=1)
    assert (await jobs.mark_running(job_id)).started_at == clock.current
    clock.advance(seconds=60)
    job = await jobs.mark_succeeded(job_id, result_url="https://cdn/x.mp4", charged=25)
    assert (job.state, job.charged_credits, job.result_url) == (
        JobState.SUCCEEDED,
        25,
        "https://cdn/x.mp4",
    )
    assert job.finished_at == clock.current
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).available == 75
    job = await jobs.set_progress_message(job_id, 123456)
    assert job.progress_message_id == 123456
    clock.advance(seconds=1)
    job = await jobs.mark_delivered(job_id)
    assert (job.state, job.delivered_at, job.delivery_error) == (
        JobState.DELIVERED,
        clock.current,
        None,
    )
    assert not job.in_flight


async def test_charging_more_than_the_estimate_charges_the_estimate(
    jobs: JobStore, ledger: Ledger
) -> None:
    job_id = (await accept(jobs)).job.id
    await jobs.mark_submitted(job_id, provider_task_id="t")
    await jobs.mark_running(job_id)
    job = await jobs.mark_succeeded(job_id, result_url="u", charged=45)
    assert job.charged_credits == 30
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).available == 70


@pytest.mark.parametrize(
    ("steps", "wanted"),
    [
        ([], "running"),
        ([], "succeeded"),
        ([], "delivered"),
        (["submitted"], "submitted"),
        (["submitted"], "succeeded"),
        (["submitted"], "cancelled"),
        (["submitted", "running"], "running"),
        (["submitted", "running", "succeeded"], "failed"),
        (["submitted", "running", "succeeded", "delivered"], "delivered"),
        (["cancelled"], "submitted"),
    ],
)
async def test_transitions_that_skip_or_repeat_a_state_are_refused(
    jobs: JobStore, ledger: Ledger, steps: list[str], wanted: str
) -> None:
    job_id = (await accept(jobs)).job.id
    moves = {
        "submitted": lambda: jobs.mark_submitted(job_id, provider_task_id="t"),
        "running": lambda: jobs.mark_running(job_id),
        "succeeded": lambda: jobs.mark_succeeded(job_id, result_url="u", charged=10),
        "failed": lambda: jobs.mark_failed(job_id, error="e"),
        "delivered": lambda: jobs.mark_delivered(job_id),
        "cancelled": lambda: jobs.cancel(job_id),
    }
    for step in steps:
        await moves[step]()
    before = await jobs.get(job_id)
    hold_before = await ledger.hold(job_id)
    with pytest.raises(InvalidTransition) as caught:
        await moves[wanted]()
    assert str(caught.value) == f"Job {job_id} is {before.state.value}; it can't become {wanted}."
    assert await jobs.get(job_id) == before
    assert await ledger.hold(job_id) == hold_before  # no credit moved either


async def test_failing_refunds_and_the_failure_still_awaits_delivery(
    jobs: JobStore, ledger: Ledger
) -> None:
    job_id = (await accept(jobs)).job.id
    await jobs.mark_submitted(job_id, provider_task_id="t")
    job = await jobs.mark_failed(job_id, error="content policy")
    assert (job.state, job.error, job.charged_credits) == (JobState.FAILED, "content policy", None)
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).available == 100
    assert [j.id for j in await jobs.list_unfinished()] == [job_id]
    assert (await jobs.mark_delivered(job_id)).state is JobState.DELIVERED
    assert await jobs.list_unfinished() == []


async def test_a_failure_the_provider_billed_can_be_charged(jobs: JobStore, ledger: Ledger) -> None:
    job_id = (await accept(jobs)).job.id
    job = await jobs.mark_failed(job_id, error="billed anyway", charged=5)
    assert job.charged_credits == 5
    assert (await ledger.hold(job_id)).charged == 5  # type: ignore[union-attr]


async def test_cancel_refunds_a_job_that_never_reached_the_provider(
    jobs: JobStore, ledger: Ledger
) -> None:
    job_id = (await accept(jobs)).job.id
    job = await jobs.cancel(job_id)
    assert job.state is JobState.CANCELLED and job.finished_at is not None
    assert (await ledger.hold(job_id)).state == "refunded"  # type: ignore[union-attr]
    assert await jobs.list_unfinished() == []


async def test_cancel_refuses_a_job_whose_submit_may_have_reached_the_provider(
    jobs: JobStore, ledger: Ledger
) -> None:
    job_id = (await accept(jobs)).job.id
    await jobs.mark_submitting(job_id)
    with pytest.raises(InvalidTransition, match="being sent to the provider"):
        await jobs.cancel(job_id)
    assert (await jobs.get(job_id)).state is JobState.ACCEPTED
    assert (await ledger.hold(job_id)).state == "pending"  # type: ignore[union-attr]


async def test_a_submit_attempt_is_recorded_once_and_only_before_submission(
    jobs: JobStore, clock: Clock
) -> None:
    job_id = (await accept(jobs)).job.id
    assert (await jobs.get(job_id)).submit_attempted_at is None
    first = await jobs.mark_submitting(job_id)
    assert first.submit_attempted_at == clock.current
    assert first.state is JobState.ACCEPTED  # still not at the provider, as far as we know
    clock.current += timedelta(seconds=5)
    again = await jobs.mark_submitting(job_id)  # a retry keeps the first mark
    assert again.submit_attempted_at == first.submit_attempted_at
    await jobs.mark_submitted(job_id, provider_task_id="t-1")
    with pytest.raises(InvalidTransition):
        await jobs.mark_submitting(job_id)


async def test_delivery_failures_are_counted_until_delivery_ends(jobs: JobStore) -> None:
    job_id = (await accept(jobs)).job.id
    with pytest.raises(InvalidTransition):
        await jobs.record_delivery_failure(job_id, "too early")
    await jobs.mark_failed(job_id, error="e")
    await jobs.record_delivery_failure(job_id, "403 Missing Access")
    job = await jobs.record_delivery_failure(job_id, "403 Missing Access")
    assert (job.delivery_attempts, job.delivery_error) == (2, "403 Missing Access")
    job = await jobs.mark_delivered(job_id, delivery_error="gave up: channel gone")
    assert (job.state, job.delivery_error) == (JobState.DELIVERED, "gave up: channel gone")


async def test_unknown_jobs_are_reported(jobs: JobStore) -> None:
    with pytest.raises(JobNotFound, match="There is no job nope"):
        await jobs.get("nope")
    with pytest.raises(JobNotFound):
        await jobs.mark_running("nope")
    with pytest.raises(JobNotFound):
        await jobs.set_progress_message("nope", 1)


async def test_queries_for_members_resume_and_counts(jobs: JobStore, clock: Clock) -> None:
    ids = []
    for user in (ALICE, ALICE, BOB, ALICE):
        clock.advance(seconds=1)
        ids.append((await accept(jobs, user=user, credits=5)).job.id)
    await jobs.cancel(ids[0])
    await jobs.mark_submitted(ids[1], provider_task_id="t")
    assert [j.id for j in await jobs.list_for_member(GUILD, ALICE)] == [ids[3], ids[1], ids[0]]
    assert [j.id for j in await jobs.list_for_member(GUILD, ALICE, limit=1)] == [ids[3]]
    assert [j.id for j in await jobs.list_unfinished()] == ids[1:]
    assert await jobs.count_in_flight(GUILD) == 3
    assert await jobs.count_in_flight(GUILD, ALICE) == 2
    assert await jobs.count_in_flight(GUILD + 1) == 0


async def test_the_sweep_fails_and_refunds_stuck_jobs_only(
    jobs: JobStore, ledger: Ledger, clock: Clock
) -> None:
    never = (await accept(jobs, credits=10)).job.id
    late = (await accept(jobs, credits=10, timeout=timedelta(minutes=5))).job.id
    await jobs.mark_submitted(late, provider_task_id="t")
    await jobs.mark_running(late)
    slow_but_fine = (await accept(jobs, credits=10, timeout=timedelta(hours=1))).job.id
    await jobs.mark_submitted(slow_but_fine, provider_task_id="t2")
    await ledger.reserve("no-job", GUILD, BOB, 10, role_ids=())  # a hold nobody will ever resolve
    clock.advance(minutes=5)
    fresh = (await accept(jobs, credits=10)).job.id
    await ledger.reserve("no-job-yet", GUILD, BOB, 10, role_ids=())

    clock.advance(minutes=1)
    report = await jobs.sweep(accept_grace=timedelta(minutes=2))
    assert (report.never_submitted, report.timed_out) == ([never], [late])
    assert report.resolved_stray_holds == ["no-job"]
    for job_id in (never, late):
        job = await jobs.get(job_id)
        assert job.state is JobState.FAILED and "refunded" in (job.error or "")
        assert (await ledger.hold(job_id)).state == "refunded"  # type: ignore[union-attr]
    assert (await jobs.get(fresh)).state is JobState.ACCEPTED
    assert (await jobs.get(slow_but_fine)).state is JobState.SUBMITTED
    assert (await ledger.hold("no-job-yet")).state == "pending"  # type: ignore[union-attr]
    assert (await jobs.sweep(accept_grace=timedelta(minutes=10))).total == 0
    assert (await ledger.check()).problems == ()

    # The provider finishing after the deadline can no longer charge the member.
    with pytest.raises(InvalidTransition):
        await jobs.mark_succeeded(late, result_url="u", charged=10)
    assert (
        await ledger.balance(GUILD, ALICE, role_ids=())
    ).available == 80  # only the two live jobs hold


async def test_the_first_final_state_wins_and_the_other_is_refused_as_already_finished(
    jobs: JobStore, ledger: Ledger, clock: Clock
) -> None:
    swept = (await accept(jobs, credits=10, timeout=timedelta(minutes=5))).job.id
    finished = (await accept(jobs, credits=10, timeout=timedelta(minutes=5))).job.id
    for job_id in (swept, finished):
        await jobs.mark_submitted(job_id, provider_task_id=f"task-{job_id}")
        await jobs.mark_running(job_id)
    await jobs.mark_succeeded(finished, result_url="u", charged=10)  # the provider first
    clock.advance(minutes=6)
    report = await jobs.sweep()  # the sweep first for the other one
    assert report.timed_out == [swept]

    with pytest.raises(AlreadyFinished) as late:
        await jobs.mark_succeeded(swept, result_url="u", charged=10)
    assert (late.value.current, late.value.wanted) == ("failed", "succeeded")
    with pytest.raises(AlreadyFinished):
        await jobs.mark_failed(finished, error="too late")
    with pytest.raises(AlreadyFinished):
        await jobs.mark_running(swept)
    assert (await ledger.hold(swept)).state == "refunded"  # type: ignore[union-attr]
    assert (await ledger.hold(finished)).state == "settled"  # type: ignore[union-attr]
    assert (await jobs.get(finished)).charged_credits == 10
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).available == 90
    assert (await ledger.check()).problems == ()


async def test_the_sweep_leaves_a_job_that_may_be_at_the_provider_until_its_deadline(
    jobs: JobStore, ledger: Ledger, clock: Clock
) -> None:
    sending = (await accept(jobs, credits=10, timeout=timedelta(minutes=30))).job.id
    await jobs.mark_submitting(sending)  # then the bot died before the provider answered
    queued = (await accept(jobs, credits=10, timeout=timedelta(minutes=30))).job.id

    clock.advance(minutes=29)
    report = await jobs.sweep(accept_grace=timedelta(minutes=2))
    assert (report.never_submitted, report.timed_out) == ([queued], [])
    assert (await jobs.get(sending)).state is JobState.ACCEPTED
    assert (await ledger.hold(sending)).state == "pending"  # type: ignore[union-attr]

    clock.advance(minutes=1)  # the deadline: the runner would have settled it by now
    report = await jobs.sweep(accept_grace=timedelta(minutes=2))
    assert (report.never_submitted, report.timed_out) == ([], [sending])
    job = await jobs.get(sending)
    assert job.state is JobState.FAILED and "never confirmed" in (job.error or "")
    assert (await ledger.hold(sending)).state == "refunded"  # type: ignore[union-attr]
    assert (await ledger.check()).problems == ()


async def test_the_sweep_resolves_a_finished_jobs_pending_hold(
    parts, jobs: JobStore, ledger: Ledger
) -> None:
    store: Store = parts[0]
    job_id = (await accept(jobs)).job.id
    # A job finished by hand without its hold (as an older runner might): the sweep settles it.
    await store.write(
        lambda db: db.execute(
            "UPDATE jobs SET state = 'succeeded', charged_credits = 12, result_url = 'u'"
            " WHERE id = ?",
            [job_id],
        )
    )
    report = await jobs.sweep()
    assert report.resolved_stray_holds == [job_id]
    assert (await ledger.hold(job_id)).charged == 12  # type: ignore[union-attr]


async def succeeded(jobs: JobStore, charged: int = 25) -> str:
    job_id = (await accept(jobs)).job.id
    await jobs.mark_submitted(job_id, provider_task_id="t")
    await jobs.mark_running(job_id)
    await jobs.mark_succeeded(job_id, result_url="https://cdn/x.mp4", charged=charged)
    return job_id


async def test_an_undelivered_video_returns_its_charge_once_with_the_reason(
    jobs: JobStore, ledger: Ledger, clock: Clock
) -> None:
    job_id = await succeeded(jobs)
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).available == 75

    job = await jobs.mark_undelivered(job_id, delivery_error="the channel no longer exists")

    assert (job.state, job.charged_credits, job.undelivered_at) == (
        JobState.DELIVERED, None, clock.current)
    assert job.delivery_error == "the channel no longer exists" and job.undelivered
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).available == 100
    [entry, *_] = await ledger.audit_log(GUILD, None, limit=5)
    assert (entry.kind, entry.job_id, entry.change) == ("return", job_id, 25)
    assert entry.reason == "the video could not be posted: the channel no longer exists"
    with pytest.raises(InvalidTransition):
        await jobs.mark_undelivered(job_id, delivery_error="again")
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).available == 100  # not twice
    report = await ledger.check()
    assert report.ok, report.problems


async def test_a_video_that_is_not_one_fails_and_its_charge_comes_back(
    jobs: JobStore, ledger: Ledger
) -> None:
    job_id = await succeeded(jobs)

    job = await jobs.fail_unusable(job_id, error="JoyPix did not send a playable video")

    assert (job.state, job.charged_credits) == (JobState.FAILED, None)
    assert job.error == "JoyPix did not send a playable video"
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).available == 100
    assert [j.id for j in await jobs.list_unfinished()] == [job_id]  # its failure to post
    with pytest.raises(InvalidTransition):
        await jobs.mark_failed(job_id, error="the sweep, too late")  # first terminal wins
    report = await ledger.check()
    assert report.ok, report.problems


async def test_a_return_cut_short_leaves_job_and_credits_as_they_were(
    jobs: JobStore, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await succeeded(jobs)
    before = await jobs.get(job_id)

    def dies(*args, **kwargs):
        raise RuntimeError("killed between the credit and the state change")

    import paddock.jobs

    # The return is written first; the state change after it fails: both or neither.
    monkeypatch.setattr(paddock.jobs, "_transition", dies)
    with pytest.raises(RuntimeError):
        await jobs.mark_undelivered(job_id, delivery_error="gone")

    assert await jobs.get(job_id) == before  # one transaction: nothing half done
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).available == 75


async def test_a_returned_charge_counts_against_no_spending_limit_or_charge_total(
    parts, jobs: JobStore, ledger: Ledger
) -> None:
    from paddock.budget import Limits
    from paddock.errors import LimitExceeded
    from paddock.metrics import read_totals

    await ledger.set_limits(GUILD, Limits(member_spend=40, daily_ceiling=40), actor_id=MOD)
    job_id = await succeeded(jobs, charged=30)
    with pytest.raises(LimitExceeded):
        await accept(jobs, credits=30)  # 30 spent today: 30 more is over 40

    await jobs.mark_undelivered(job_id, delivery_error="the channel no longer exists")

    assert (await accept(jobs, credits=30)).job.state is JobState.ACCEPTED
    store = parts[0]
    totals = await store.read(read_totals)
    assert (totals.settled, totals.held) == (0, 30)
    assert totals.refunded == 30  # the returned charge


# -- provider: auto: moving a job between providers -----------------------------------

ROUTE = [
    {"provider": "wavespeed", "credits": 60, "request": {**REQUEST, "resolution": "1080p"}},
    {"provider": "joypix", "credits": 80, "request": {**REQUEST, "resolution": "1080p"}},
    {"provider": "hiapi", "credits": 75, "request": {**REQUEST, "resolution": "1080p"}},
]


async def test_a_routed_job_moves_only_where_no_task_can_be_alive_and_settles_at_its_price(
    jobs: JobStore, ledger: Ledger
) -> None:
    job = (await accept(jobs, credits=80, provider="wavespeed", route=ROUTE)).job
    assert job.routed and job.price_at("wavespeed") == 60
    await jobs.mark_submitting(job.id)
    moved = await jobs.move(job.id, provider="joypix", outcome="refused", detail="HTTP 503")
    assert (moved.state, moved.provider, moved.submit_attempted_at) == (
        JobState.ACCEPTED, "joypix", None)
    with pytest.raises(InvalidTransition):  # back to a provider already tried
        await jobs.move(job.id, provider="wavespeed", outcome="skipped")
    with pytest.raises(InvalidTransition):  # nowhere outside its route
        await jobs.move(job.id, provider="pixeldojo", outcome="skipped")

    await jobs.mark_submitting(job.id)
    await jobs.mark_submitted(job.id, provider_task_id="t-1")
    with pytest.raises(InvalidTransition):  # a task exists: a refused submit can't move it
        await jobs.move(job.id, provider="hiapi", outcome="refused")
    again = await jobs.move(job.id, provider="hiapi", outcome="render_failed", detail="GPU lost")
    assert (again.state, again.provider, again.provider_task_id) == (
        JobState.ACCEPTED, "hiapi", None)
    await jobs.mark_submitting(job.id)
    await jobs.mark_submitted(job.id, provider_task_id="t-2")
    await jobs.mark_running(job.id)
    done = await jobs.mark_succeeded(job.id, result_url="https://v/1.mp4",
                                     charged=again.price_at("hiapi"))
    assert done.charged_credits == 75
    assert (await ledger.balance(GUILD, ALICE, role_ids=())).available == 25  # 100 - 75
    assert [(a.provider, a.outcome, a.task_id) for a in await jobs.attempts(job.id)] == [
        ("wavespeed", "sent", None), ("wavespeed", "refused", None),
        ("joypix", "sent", None), ("joypix", "accepted", "t-1"),
        ("joypix", "render_failed", "t-1"),
        ("hiapi", "sent", None), ("hiapi", "accepted", "t-2"), ("hiapi", "rendered", "t-2"),
    ]
    assert (await ledger.check()).ok


async def test_a_job_moves_once_after_a_failed_render_and_a_named_provider_never(
    jobs: JobStore
) -> None:
    routed = (await accept(jobs, credits=80, provider="wavespeed", route=ROUTE)).job
    await jobs.mark_submitting(routed.id)
    await jobs.mark_submitted(routed.id, provider_task_id="t-1")
    await jobs.move(routed.id, provider="joypix", outcome="render_failed")
    await jobs.mark_submitting(routed.id)
    await jobs.mark_submitted(routed.id, provider_task_id="t-2")
    with pytest.raises(InvalidTransition):
        await jobs.move(routed.id, provider="hiapi", outcome="render_failed")

    named = (await accept(jobs, user=BOB, credits=70, provider="joypix")).job
    assert not named.routed
    with pytest.raises(InvalidTransition):
        await jobs.move(named.id, provider="wavespeed", outcome="skipped")
    await jobs.mark_submitting(named.id)
    with pytest.raises(InvalidTransition):  # a named provider: not after a refusal either
        await jobs.move(named.id, provider="wavespeed", outcome="refused")
