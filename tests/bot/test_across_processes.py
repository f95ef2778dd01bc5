"""Two bot processes on one PostgreSQL database hear each other (LISTEN/NOTIFY).

A moderator's change of the server's settings answered by one process is what the other
enforces at once, though it had the old settings in memory (its listener drops them when
the change commits); a raised member job cap starts the jobs waiting in another process's
line, and a member asking through one process goes before a member with jobs waiting in the
other, woken when the slot frees (not by a timer). A HiAPI callback that reaches the
process not driving the job makes the owner poll at once, not at its next lease renewal.

Discord sends a server's commands to the one process running its shard, so two
processes answer one server only while they overlap on one shard: a rolling restart,
as here, where the newest session gets the commands (the fake does as Discord does).
"""

from __future__ import annotations

import dataclasses
import json
import logging

import psycopg
import pytest

from paddock.ledger import Ledger
from paddock.store.postgres import PostgresStore
from tests.bot.conftest import FAST_RUNNER
from tests.bot.side_door_support import free_port
from tests.bot.support import decided, give_credits
from tests.bot.test_fair_line import prompts
from tests.bot.test_leases import SECRET, grant, video_posts
from tests.bot.test_restarts import bot_env
from tests.fakes.discord import FakeDiscord, bot_process
from tests.fakes.discord.fixtures import running_bot
from tests.fakes.discord.gateway import GatewaySession
from tests.test_credits import MANAGE_GUILD


def interactions_sent(session: GatewaySession) -> set[int]:
    frames = [json.loads(frame) for _seq, frame in session.sent]
    return {int(frame["d"]["id"]) for frame in frames if frame["t"] == "INTERACTION_CREATE"}


async def test_a_channel_allowed_through_one_process_is_enforced_by_the_other(
    fake_discord: FakeDiscord, providers, pg_url: str
) -> None:
    env = bot_env(fake_discord, providers, pg_url)
    env["DATABASE_URL"] = env.pop("DATABASE_PATH")
    mod = fake_discord.member("mod", permissions=MANAGE_GUILD)
    alice = fake_discord.member("alice")
    videos = fake_discord.channel("videos")

    async with bot_process(fake_discord, env=env):
        listed = await mod.slash("quota channels", action="list")
        assert (await listed.reply()).content == "/video runs in every channel."  # in memory
        async with bot_process(fake_discord, env=env) as second:
            allowed = await mod.slash("quota channels", action="allow", video_channel=videos)
            answer = await allowed.reply()
            assert answer.content == f"/video channels: every channel → only {videos.mention}."
            await second.stop()
        refused = await alice.slash("video text", prompt="a lighthouse")  # in #general
        reply = await refused.reply()

    sessions = fake_discord.gateway.identified
    assert [listed.id in interactions_sent(s) for s in sessions] == [True, False]
    assert [allowed.id in interactions_sent(s) for s in sessions] == [False, True]
    assert [refused.id in interactions_sent(s) for s in sessions] == [True, False]
    assert reply.ephemeral
    assert reply.content == f"Videos aren't made in this channel. Use {videos.mention}."


class TestOnPostgres:
    @pytest.fixture
    def paddock_settings(self, paddock_settings, pg_url: str):
        return dataclasses.replace(paddock_settings, database_url=pg_url)

    async def test_a_member_cap_raised_by_another_process_starts_the_jobs_waiting_here(
        self, fake_discord: FakeDiscord, paddock, providers, pg_url: str
    ) -> None:
        joypix = providers["joypix"]
        joypix.steps = ["processing"] * 100_000  # every job renders until finished by hand
        alice = fake_discord.member("alice")
        await give_credits(paddock, alice, 70 * 3)
        for n in range(3):
            await (await alice.slash("video text", prompt=f"alice {n}")).reply()
        await joypix.wait_for_requests("submit", 2)  # her cap: two at once

        elsewhere = await PostgresStore.open(pg_url)  # another process's moderator
        try:
            await Ledger(elsewhere).update_limits(fake_discord.guild.id, actor_id=1,
                                                  member_slots=3)
        finally:
            await elsewhere.close()

        await joypix.wait_for_requests("submit", 3)  # the third starts without a restart
        assert sorted(s.json["prompt"] for s in joypix.submits()) == [
            f"alice {n}" for n in range(3)]

    async def test_after_its_listener_is_dropped_the_runner_reads_every_cap_again(
        self, fake_discord: FakeDiscord, paddock, providers, pg_url: str
    ) -> None:
        joypix = providers["joypix"]
        joypix.steps = ["processing"] * 100_000
        alice = fake_discord.member("alice")
        await give_credits(paddock, alice, 70 * 4)
        for n in range(4):
            await (await alice.slash("video text", prompt=f"alice {n}")).reply()
        await joypix.wait_for_requests("submit", 2)
        listener = paddock.services.store.listener

        # A change whose announcement this process never hears, then its listener dropped.
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO guild_settings (guild_id, member_slots) VALUES (%s, 3)"
                " ON CONFLICT (guild_id) DO UPDATE SET member_slots = 3", [fake_discord.guild.id])
            await conn.execute("SELECT pg_terminate_backend(%s)", [listener.backend_pid])
        await joypix.wait_for_requests("submit", 3)

        # Back, it hears the next change as before.
        await fake_discord.wait_for(lambda: listener.reconnects == 1 and listener.connected)
        elsewhere = await PostgresStore.open(pg_url)
        try:
            await Ledger(elsewhere).update_limits(fake_discord.guild.id, actor_id=1,
                                                  member_slots=4)
        finally:
            await elsewhere.close()
        await joypix.wait_for_requests("submit", 4)


async def test_a_callback_at_the_process_not_driving_the_job_makes_its_owner_poll_at_once(
    fake_discord: FakeDiscord, providers, pg_url: str
) -> None:
    hiapi = providers["hiapi"]
    hiapi.callback_secret = SECRET
    alice = fake_discord.member("alice")
    await grant(pg_url, fake_discord.guild.id, alice.user.id, 200)
    env = bot_env(fake_discord, providers, pg_url)
    env["DATABASE_URL"] = env.pop("DATABASE_PATH")
    # Leases renewed every 200 s and a first poll 30 s after the submit: only the
    # notification can make the owner poll within the 20 s waited for below.
    env |= {"PADDOCK_LEASE_SECONDS": "600", "PADDOCK_PUBLIC_URL": "https://paddock.example.com",
            "HIAPI_WEBHOOK_SECRET": SECRET}
    port_a, port_b = free_port(), free_port()

    async with bot_process(fake_discord, env={**env, "PADDOCK_HTTP_PORT": str(port_a)}
                           ) as first:
        message = await decided(await alice.slash("video text", prompt="a harbour",
                                                  provider="hiapi"))
        await fake_discord.wait_for(lambda: "Sent to HiAPI" in message.text)
        [task_id] = hiapi.tasks
        async with bot_process(fake_discord, env={**env, "PADDOCK_HTTP_PORT": str(port_b)}
                               ) as second:
            hiapi.callback_proxy = f"http://127.0.0.1:{port_b}"  # the callback reaches B
            hiapi.finish(task_id)
            await hiapi.wait_for_callbacks(1)
            await fake_discord.wait_for(lambda: video_posts(fake_discord, alice), timeout=20)
            assert "no job is waiting on it here" in second.output
            assert f"task={task_id} called back at another process (notified)" in first.output

    assert [c.status for c in hiapi.callbacks] == [200]
    assert len(hiapi.polls()) == 1  # A's, woken by the notification; B never polls it
    assert len(video_posts(fake_discord, alice)) == 1


class TestOneSlotOnPostgres:
    """One slot at JoyPix, and a job told to wait asks again only when woken (its timer
    would wait a minute): the slot's news comes from the database."""

    @pytest.fixture
    def paddock_settings(self, paddock_settings, pg_url: str):
        runner = dataclasses.replace(FAST_RUNNER, provider_slots=1, slot_retry=60.0)
        return dataclasses.replace(paddock_settings, database_url=pg_url, runner=runner)

    async def test_a_member_asking_in_the_second_process_goes_before_the_firsts_waiting_jobs(
        self, fake_discord: FakeDiscord, paddock, paddock_settings, providers, caplog
    ) -> None:
        from bot import Paddock
        from paddock.services import Services

        caplog.set_level(logging.INFO, logger="paddock.runner")
        joypix = providers["joypix"]
        joypix.steps = ["processing"] * 100_000
        alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
        await give_credits(paddock, alice, 70 * 3)
        await give_credits(paddock, bob, 70)
        for n in range(3):  # to process A: one at JoyPix, two waiting in A's line
            await decided(await alice.slash("video text", prompt=f"alice {n}"))
        await joypix.wait_for_requests("submit", 1)

        settings = paddock_settings
        async with (
            Services.open(settings.database, settings.providers, prices=settings.prices,
                          demo=settings.demo) as services,
            running_bot(fake_discord, Paddock.build(settings, services)),  # process B
        ):
            await decided(await bob.slash("video text", prompt="bob"))  # answered by B
            await fake_discord.wait_for(lambda: "waits for a slot taken by another process"
                                        in caplog.text)
            [alices] = joypix.tasks
            joypix.finish(alices)  # A's slot frees: A's next job asks at once, in A
            await joypix.wait_for_requests("submit", 2)
            assert prompts(joypix) == ["alice 0", "bob"]  # bob's turn: he never had one

            [bobs] = [task for task in joypix.tasks if task != alices]
            joypix.finish(bobs)  # freed in B: A's job, told to wait, hears of it
            await joypix.wait_for_requests("submit", 3)
            assert prompts(joypix) == ["alice 0", "bob", "alice 1"]
