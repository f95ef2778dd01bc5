"""A /video whose HiAPI submit answer is lost: the job's key finds the task again, so the
member gets the video and pays once, and HiAPI made (and bills) one task."""

from __future__ import annotations

from tests.bot.support import available, decided, give_credits, holds
from tests.bot.test_video import finished_post
from tests.fakes.providers import FAKE_MP4


async def test_a_lost_submit_answer_still_ends_in_one_task_one_charge_and_the_video(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["hiapi"]
    emulator.fault(500, on="submit", after_accept=True)  # the task is made, the answer lost
    emulator.in_flight_answers = 1  # the resend: 409 IDEMPOTENCY_KEY_PROCESSING
    emulator.in_flight_retry_after = "1"
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)

    await decided(await alice.slash("video text", prompt="a foal in the snow", duration=3,
                                    provider="hiapi"))
    post = await finished_post(fake_discord, alice)

    [video] = [a for a in post.attachments if a.filename.endswith(".mp4")]
    assert video.data == FAKE_MP4
    [task_id] = emulator.tasks
    submits = emulator.submits()
    assert len(submits) == 3  # lost, 409 PROCESSING, the original task replayed
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.user.id)
    assert {s.headers["Idempotency-Key"] for s in submits} == {job.id}
    assert job.provider_task_id == task_id
    charged = int({f.name: f.value for f in post.embed.fields}["Credits charged"])
    assert charged > 0
    assert [h.charged for h in await holds(paddock, "settled")] == [charged]
    assert await holds(paddock) == []
    assert await available(paddock, alice) == 500 - charged
    posts = [m for m in fake_discord.channel("general").visible
             if m.pings(alice) and m.attachments]
    assert len(posts) == 1
    report = await paddock.services.ledger.check()
    assert report.ok, report.problems


async def test_a_key_still_in_flight_after_hh_apis_retries_is_sent_again_not_refunded(
    fake_discord, paddock, providers
) -> None:
    """hh_api gives up with SubmitOutcomeUnknownError (the task may exist); the runner
    resumes by key instead of refunding a task HiAPI is making."""
    emulator = providers["hiapi"]
    emulator.fault(500, on="submit", after_accept=True)
    emulator.in_flight_answers = 4  # outlasts one submit's 4 attempts
    emulator.in_flight_retry_after = "0"
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)

    await decided(await alice.slash("video text", prompt="a foal in the rain", duration=3,
                                    provider="hiapi"))
    post = await finished_post(fake_discord, alice)

    assert any(a.filename.endswith(".mp4") for a in post.attachments)
    [task_id] = emulator.tasks
    submits = emulator.submits()
    assert len(submits) == 6  # 4 attempts, then the runner's resend: 409, replay
    assert len({s.headers["Idempotency-Key"] for s in submits}) == 1
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.user.id)
    assert job.provider_task_id == task_id
    charged = int({f.name: f.value for f in post.embed.fields}["Credits charged"])
    assert [h.charged for h in await holds(paddock, "settled")] == [charged]
    assert await available(paddock, alice) == 500 - charged
    report = await paddock.services.ledger.check()
    assert report.ok, report.problems
