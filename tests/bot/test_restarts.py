"""`python bot.py` killed with SIGKILL mid-job and started again: nothing lost, nothing twice."""

from __future__ import annotations

import signal

import pytest

from paddock.ledger import Ledger
from paddock.store import open_store
from tests.bot.support import decided
from tests.bot.test_video import finished_post
from tests.fakes.discord import bot_process


def bot_env(fake, providers, database) -> dict[str, str]:
    env = {
        "DATABASE_PATH": str(database),
        "PADDOCK_POLL_SECONDS": "0.02",
        "DISCORD_GUILD_READY_TIMEOUT": "0.01",
        "DEV_GUILD_ID": str(fake.guild.id),
        "HH_PROVIDER": "joypix",
    }
    for name, emulator in providers.items():
        env[f"{name.upper()}_API_KEY"] = emulator.api_key
        env[f"{name.upper()}_BASE_URL"] = emulator.base_url
    return env


async def ledger_figures(database, guild_id: int, user_id: int):
    """A member's credits left, the pending and settled holds, and the ledger's check;
    ``database`` a SQLite file or a PostgreSQL URL."""
    store = await open_store(database)
    try:
        ledger = Ledger(store)
        balance = await ledger.balance(guild_id, user_id, role_ids=())
        pending = await ledger.holds(state="pending")
        settled = await ledger.holds(state="settled")
        report = await ledger.check()
        return balance.available, pending, settled, report
    finally:
        await store.close()


async def grant(database, guild_id: int, user_id: int, amount: int) -> None:
    store = await open_store(database)
    try:
        await Ledger(store).grant(guild_id, user_id, amount, actor_id=1, reason="test", role_ids=())
    finally:
        await store.close()


async def test_a_bot_killed_while_rendering_posts_the_video_once_after_restart(
    fake_discord, providers, tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    emulator = providers["joypix"]
    emulator.steps = ["pending"] + ["processing"] * 100000
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 100)
    env = bot_env(fake_discord, providers, database)

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="a lighthouse"))
        await emulator.wait_for_requests("status", 3)
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    [task_id] = emulator.tasks
    emulator.finish(task_id)  # the render ends while the bot is down

    async with bot_process(fake_discord, env=env) as second:
        post = await finished_post(fake_discord, alice, timeout=30)
        assert [a.filename.endswith(".mp4") for a in post.attachments] == [True]
        assert "resumed 1 unfinished job" in second.output

    posts = [m for m in fake_discord.channel("general").visible
             if m.pings(alice) and m.attachments]
    assert len(posts) == 1
    assert len(emulator.submits()) == 1
    left, pending, settled, report = await ledger_figures(database, fake_discord.guild.id,
                                                          alice.user.id)
    assert (left, pending, [h.charged for h in settled]) == (30, [], [70])
    assert report.ok, report.problems


@pytest.mark.parametrize(("provider", "resubmitted"), [("joypix", False), ("hiapi", True)])
async def test_a_bot_killed_mid_submit_never_sends_a_job_twice(
    fake_discord, providers, tmp_path, provider, resubmitted
) -> None:
    database = tmp_path / "paddock.db"
    emulator = providers[provider]
    emulator.fault("hang", on="submit", after_accept=True)  # the task exists; no answer
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 200)
    env = bot_env(fake_discord, providers, database)

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="a harbour", provider=provider))
        await emulator.wait_for_requests("submit", 1)
        await first.stop(signal.SIGKILL)

    async with bot_process(fake_discord, env=env):
        post = await finished_post(fake_discord, alice, timeout=30)

    assert len(emulator.tasks) == 1  # whatever happened, one task at the provider
    left, pending, settled, report = await ledger_figures(database, fake_discord.guild.id,
                                                          alice.user.id)
    assert pending == [] and report.ok
    if resubmitted:  # HiAPI deduplicates by key: the same job, finished and charged once
        first_key, second_key = (s.headers["Idempotency-Key"] for s in emulator.submits())
        assert first_key == second_key
        assert any(a.filename.endswith(".mp4") for a in post.attachments)
        assert (left, [h.charged for h in settled]) == (130, [70])  # 14/s x 5 s at 720p
    else:  # JoyPix cannot tell: refunded and explained, never sent again
        assert len(emulator.submits()) == 1
        assert post.embed.title == "Video failed"
        assert "was not sent again" in post.embed.fields[0].value
        assert left == 200 and settled == []


async def test_buttons_keep_working_after_a_restart(fake_discord, providers, tmp_path) -> None:
    database = tmp_path / "paddock.db"
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 200)
    env = bot_env(fake_discord, providers, database)
    async with bot_process(fake_discord, env=env):
        await decided(await alice.slash("video text", prompt="a mill", seed=3))
        post = await finished_post(fake_discord, alice)

    async with bot_process(fake_discord, env=env):
        reply = await (await alice.press(post, "Re-roll")).reply()
        assert "a mill" in reply.embed.description
        await fake_discord.wait_for(lambda: len(providers["joypix"].submits()) == 2, timeout=30)
    second = providers["joypix"].submits()[1].json
    assert second["prompt"] == "a mill" and second["seed"] != 3


async def test_sigterm_closes_cleanly_and_the_job_finishes_after_restart(
    fake_discord, providers, tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    emulator = providers["wavespeed"]
    emulator.steps = ["created"] + ["processing"] * 100000
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 100)
    env = bot_env(fake_discord, providers, database)

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="a bridge", provider="wavespeed"))
        await emulator.wait_for_requests("status", 2)
        assert await first.stop(signal.SIGTERM) == 0  # a clean exit, not a crash
        assert "runner stopped; unfinished jobs resume at the next start" in first.output
        assert "Traceback" not in first.output
    [task_id] = emulator.tasks
    emulator.finish(task_id)

    async with bot_process(fake_discord, env=env):
        post = await finished_post(fake_discord, alice, timeout=30)
    assert any(a.filename.endswith(".mp4") for a in post.attachments)
    assert len(emulator.submits()) == 1
    left, pending, settled, report = await ledger_figures(database, fake_discord.guild.id,
                                                          alice.user.id)
    assert (left, pending, [h.charged for h in settled]) == (30, [], [70])
    assert report.ok, report.problems
