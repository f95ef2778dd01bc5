"""Jobs that wait: HiAPI callbacks ending a slow poll early, and a provider's line in /metrics.

Polls here are a minute apart, so a job that finishes within the test did so because a
callback woke it; and each provider has one slot, so a second job waits in line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import pytest

from hh_api import PollPolicy, Secret, sign_hiapi
from paddock.jobs import JobState
from tests.bot.conftest import FAST_RUNNER
from tests.bot.side_door_support import free_port, get, metric_samples, post, sample
from tests.bot.support import decided, give_credits
from tests.bot.test_video import finished_post

SECRET = "whsec-paddock-tests"
SLOW_ONE_SLOT = dataclasses.replace(
    FAST_RUNNER, provider_slots=1, poll=PollPolicy(initial=60, factor=1, maximum=60)
)


@pytest.fixture
def paddock_settings(paddock_settings, providers):
    """The side door public on a free port, HiAPI signing callbacks with SECRET."""
    port = free_port()
    hiapi = providers["hiapi"]
    hiapi.callback_secret = SECRET
    hiapi.require_https_callback = False  # the test's side door is plain http on 127.0.0.1
    return dataclasses.replace(
        paddock_settings, runner=SLOW_ONE_SLOT, http_port=port,
        public_url=f"http://127.0.0.1:{port}", hiapi_webhook_secret=Secret(SECRET),
    )


async def hiapi_job(fake_discord, paddock, providers, prompt: str = "a lighthouse"):
    """A HiAPI job submitted (its message says so) and now waiting a minute for its first
    poll; its task id."""
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    message = await decided(await alice.slash("video text", prompt=prompt, provider="hiapi"))
    await fake_discord.wait_for(lambda: "Sent to HiAPI" in message.text)
    [task_id] = providers["hiapi"].tasks
    return alice, task_id


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    return {"X-HiAPI-Timestamp": stamp, "X-HiAPI-Signature": sign_hiapi(secret, stamp, body),
            "Content-Type": "application/json"}


async def job_state(paddock, task_id: str) -> JobState:
    [job] = [j for j in await paddock.services.jobs.list_unfinished()
             if j.provider_task_id == task_id] or [None]
    return job.state if job is not None else JobState.DELIVERED


async def test_a_callback_finishes_the_job_without_waiting_for_the_next_poll(
    fake_discord, paddock, providers
) -> None:
    hiapi = providers["hiapi"]
    alice, task_id = await hiapi_job(fake_discord, paddock, providers)
    [submit] = hiapi.submits()
    assert submit.json["callback"] == {
        "url": f"{paddock.settings.public_url}/callbacks/hiapi", "when": "final"}

    hiapi.finish(task_id)  # HiAPI posts its signed callback to the side door
    post_ = await finished_post(fake_discord, alice, timeout=30)

    assert any(a.filename.endswith(".mp4") for a in post_.attachments)
    assert [c.status for c in hiapi.callbacks] == [200]
    assert len(hiapi.polls()) == 1  # the one the callback asked for


async def test_bad_callbacks_get_401_or_413_and_change_nothing(
    fake_discord, paddock, providers, caplog
) -> None:
    hiapi = providers["hiapi"]
    alice, task_id = await hiapi_job(fake_discord, paddock, providers)
    body = json.dumps({"code": 200, "data": {"taskId": task_id, "status": "success"}}).encode()
    route = "/callbacks/hiapi"

    refusals = [
        await post(paddock, route, body, signed(body, secret="not-the-secret")),
        await post(paddock, route, body, {"Content-Type": "application/json"}),
        await post(paddock, route, body, signed(body, at=time.time() - 600)),
        await post(paddock, route, body.replace(b"success", b"fail"), signed(body)),
        await post(paddock, route, body, {**signed(body), "X-HiAPI-Signature": "é" * 64}),
    ]
    assert refusals == [
        (401, {"error": "the callback signature is wrong"}),
        (401, {"error": "the callback is not signed"}),
        (401, {"error": "the callback is older than 300 s (or from the future)"}),
        (401, {"error": "the callback signature is wrong"}),
        (401, {"error": "the callback signature is wrong"}),
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    huge = json.dumps({"data": {"taskId": task_id}, "pad": "x" * 70_000}).encode()
    assert (await post(paddock, route, huge, signed(huge)))[0] == 413
    assert await hiapi.send_callback(task_id, secret="forged") == 401
    assert await job_state(paddock, task_id) is JobState.SUBMITTED

    hiapi.finish(task_id)  # the genuine callback is still taken: none of the above counted
    await finished_post(fake_discord, alice, timeout=30)
    assert [c.status for c in hiapi.callbacks] == [401, 200]
    assert len(hiapi.polls()) == 1  # no refused callback made the runner ask HiAPI


async def test_a_repeated_callback_does_nothing_more(fake_discord, paddock, providers) -> None:
    hiapi = providers["hiapi"]
    alice, task_id = await hiapi_job(fake_discord, paddock, providers)
    body = json.dumps({"code": 200, "data": {"taskId": task_id, "status": "success"}}).encode()

    first = await post(paddock, "/callbacks/hiapi", body, signed(body))
    await hiapi.wait_for_requests("status", 1)  # woken: asked at once (still rendering)
    again = await post(paddock, "/callbacks/hiapi", body, signed(body))
    hiapi.finish(task_id)  # HiAPI's own callback for the same task: a repeat too
    await hiapi.wait_for_callbacks(1)

    assert (first, again) == ((200, {"status": "accepted"}), (200, {"status": "duplicate"}))
    assert [c.status for c in hiapi.callbacks] == [200]
    assert len(hiapi.polls()) == 1  # the finished task waits for the next regular poll
    assert not any(m.pings(alice) for m in fake_discord.channel("general").visible)


async def test_metrics_show_a_job_waiting_in_line(fake_discord, paddock, providers) -> None:
    joypix = providers["joypix"]
    joypix.steps = ["processing"] * 1000
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    await decided(await alice.slash("video text", prompt="first"))
    await joypix.wait_for_requests("submit", 1)
    await decided(await alice.slash("video text", prompt="second"))  # the one slot is taken

    _, text, _ = await get(paddock, "/metrics")
    samples = metric_samples(text)
    assert sample(samples, "paddock_queue_length", provider="joypix") == 1
    assert sample(samples, "paddock_jobs_in_flight") == 2
    assert sample(samples, "paddock_jobs", state="submitted", provider="joypix") == 1
    assert sample(samples, "paddock_jobs", state="accepted", provider="joypix") == 1
    assert sample(samples, "paddock_credits_held") == 140
    assert sample(samples, "paddock_credits_reserved_total") == 140
    assert len(joypix.submits()) == 1


async def test_a_callback_that_arrives_before_the_submit_answer_is_not_lost(
    fake_discord, paddock, providers
) -> None:
    hiapi = providers["hiapi"]
    hiapi.latency = 0.3  # HiAPI's answer to the submit is slow; its callback is not
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    await decided(await alice.slash("video text", prompt="a quick one", provider="hiapi"))
    await hiapi.wait_for_requests("submit", 1)
    task_id = "tsk_000001"  # the id the emulator gives its first task
    body = json.dumps({"code": 200, "data": {"taskId": task_id, "status": "success"}}).encode()
    assert await post(paddock, "/callbacks/hiapi", body, signed(body)) == (
        200, {"status": "accepted"})

    await fake_discord.wait_for(lambda: task_id in hiapi.tasks)
    hiapi.latency = 0.0
    hiapi.finish(task_id)
    await finished_post(fake_discord, alice, timeout=30)  # not a minute later, at the poll
    assert len(hiapi.polls()) == 1
