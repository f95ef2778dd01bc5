"""The sweep and the provider ending the same job: the first final state stands, with its
charge or refund, and the other path logs and stops. Both orders, driven step by step:
the bot runs on a settable clock, so the sweep sees a job past its deadline exactly when
the test says so."""

from __future__ import annotations

import logging
from datetime import timedelta

from paddock.jobs import TIMED_OUT, JobState
from tests.bot.support import available, decided, give_credits, holds
from tests.bot.test_video import finished_post
from tests.test_credits import clock, paddock

__all__ = ["clock", "paddock"]  # the bot on a settable clock, from test_credits


async def rendering_job(fake_discord, paddock, providers, alice):
    """Alice's job, rendering at JoyPix until the test finishes it."""
    joypix = providers["joypix"]
    joypix.steps = ["processing"] * 100_000
    await give_credits(paddock, alice, 200)
    reply = await decided(await alice.slash("video text", prompt="a horse"))
    await fake_discord.wait_for(lambda: "Rendering on JoyPix" in reply.text)
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.user.id)
    [task_id] = joypix.tasks
    return reply, job, task_id


async def journal_of(paddock, fake_discord, job_id: str) -> list[str]:
    entries = await paddock.services.ledger.audit_log(fake_discord.guild.id)
    return sorted(e.kind for e in entries if e.job_id == job_id)


async def test_the_sweep_fails_the_job_first_and_the_video_that_then_arrives_is_dropped(
    fake_discord, paddock, providers, clock, caplog
) -> None:
    alice = fake_discord.member("alice")
    reply, job, task_id = await rendering_job(fake_discord, paddock, providers, alice)

    clock.now += timedelta(minutes=31)  # past the job's 30-minute deadline
    with caplog.at_level(logging.INFO, logger="paddock"):
        await paddock.runner.sweep()
        assert (await paddock.services.jobs.get(job.id)).state is JobState.FAILED
        providers["joypix"].finish(task_id)  # ... and now the provider is done

        post = await finished_post(fake_discord, alice)
        await paddock.runner.wait_idle()

    assert post.embed.title == "Video failed"
    assert {f.name: f.value for f in post.embed.fields}["What happened"] == TIMED_OUT
    assert not any(a.filename.endswith(".mp4") for m in fake_discord.channel("general").messages
                   for a in m.attachments)
    await fake_discord.wait_for(lambda: "Failed: see the reply below" in reply.text)
    done = await paddock.services.jobs.get(job.id)
    assert (done.state, done.error, done.charged_credits) == (JobState.DELIVERED, TIMED_OUT, None)
    # refunded once, never charged
    assert await journal_of(paddock, fake_discord, job.id) == ["hold", "refund"]
    assert await available(paddock, alice) == 200
    assert await holds(paddock) == []
    assert (await paddock.services.ledger.check()).ok
    logged = [r.getMessage() for r in caplog.records]
    assert any(f"job={job.id}" in line and "after it was already failed" in line
               for line in logged)
    assert not any("stopped unexpectedly" in line for line in logged)


async def test_the_provider_finishes_first_and_the_sweep_then_leaves_the_job_alone(
    fake_discord, paddock, providers, clock
) -> None:
    alice = fake_discord.member("alice")
    reply, job, task_id = await rendering_job(fake_discord, paddock, providers, alice)

    providers["joypix"].finish(task_id)
    post = await finished_post(fake_discord, alice)
    await paddock.runner.wait_idle()
    clock.now += timedelta(minutes=31)
    await paddock.runner.sweep()

    assert post.embed.title != "Video failed"
    await fake_discord.wait_for(lambda: "Done: https://discord.com/channels/" in reply.text)
    assert any(a.filename.endswith(".mp4") for a in post.attachments)
    done = await paddock.services.jobs.get(job.id)
    assert (done.state, done.error, done.charged_credits) == (JobState.DELIVERED, None, 70)
    assert await journal_of(paddock, fake_discord, job.id) == ["hold", "settle"]
    assert await available(paddock, alice) == 130
    assert await holds(paddock) == []
    assert [m for m in alice.seen() if m.embed and m.embed.title == "Video failed"] == []


async def test_the_sweep_fails_a_job_whose_submit_is_still_on_its_way_and_that_is_posted(
    fake_discord, paddock, providers, clock
) -> None:
    joypix = providers["joypix"]
    joypix.steps = ["processing"] * 100_000
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    joypix.fault("hang", on="submit")  # the submit stays on its way until released
    reply = await decided(await alice.slash("video text", prompt="a horse"))
    await joypix.wait_for_requests("submit", 1)
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.user.id)

    clock.now += timedelta(minutes=31)  # past the deadline, its submit still unanswered
    await paddock.runner.sweep()
    assert (await paddock.services.jobs.get(job.id)).state is JobState.FAILED
    joypix.release_hung()  # answers 503; hh_api sends again, and that one makes a task

    post = await finished_post(fake_discord, alice)
    await paddock.runner.wait_idle()
    assert len(joypix.tasks) == 1  # the provider made it, but the sweep's outcome stands
    assert post.embed.title == "Video failed"
    await fake_discord.wait_for(lambda: "Failed: see the reply below" in reply.text)
    assert await journal_of(paddock, fake_discord, job.id) == ["hold", "refund"]
    assert await available(paddock, alice) == 200
    assert (await paddock.services.ledger.check()).ok
