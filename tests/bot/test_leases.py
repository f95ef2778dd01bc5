"""Two `python bot.py` processes on one SQLite file (and, for the SIGKILL, on one
PostgreSQL database too): jobs belong to no process.

Process A accepts the jobs; process B runs beside it on the same database. When A dies
(SIGKILL) or stops answering (SIGSTOP past its lease), B takes A's jobs over once their
leases end: it polls them (never submits again), posts each video once, charges once.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3

import aiohttp

from paddock.store import is_postgres_url
from tests.bot.side_door_support import free_port, metric_samples, sample
from tests.bot.support import decided
from tests.bot.test_restarts import bot_env, grant, ledger_figures
from tests.fakes.discord import bot_process

LEASE = "2"  # seconds: short, so a takeover comes soon after a death
SECRET = "whsec-paddock-tests"


async def metrics(port: int) -> dict:
    async with (aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/metrics") as answer):
        return metric_samples(await answer.text())


def lease_env(fake, providers, database) -> dict[str, str]:
    return {**bot_env(fake, providers, database), "PADDOCK_LEASE_SECONDS": LEASE}


def video_posts(fake, member) -> list:
    return [m for m in fake.channel("general").visible if m.pings(member) and m.attachments]


async def alice_renders_at_joypix(fake_discord, providers, tmp_path):
    """Alice with 100 credits, a database, the lease settings, and JoyPix rendering for
    ever (until the test finishes her task)."""
    database = tmp_path / "paddock.db"
    emulator = providers["joypix"]
    emulator.steps = ["pending"] + ["processing"] * 100000
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 100)
    return database, emulator, alice, lease_env(fake_discord, providers, database)


async def assert_posted_and_charged_once(fake_discord, emulator, database, alice) -> None:
    """One video posted, one submit, one charge of 70, and the ledger's books balance."""
    assert len(video_posts(fake_discord, alice)) == 1
    assert len(emulator.submits()) == 1
    left, pending, settled, report = await ledger_figures(database, fake_discord.guild.id,
                                                          alice.user.id)
    assert (left, pending, [h.charged for h in settled]) == (30, [], [70])
    assert report.ok, report.problems


async def test_jobs_of_a_killed_process_are_taken_over_polled_and_posted_once(
    fake_discord, providers, db_location
) -> None:
    database = db_location  # a SQLite file, or a PostgreSQL server's URL
    emulator = providers["joypix"]
    emulator.steps = ["pending"] + ["processing"] * 100000
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    for member in (alice, bob):
        await grant(database, fake_discord.guild.id, member.user.id, 100)
    env = lease_env(fake_discord, providers, database)
    if is_postgres_url(database):
        env = {**env, "DATABASE_URL": env.pop("DATABASE_PATH")}
    port = free_port()

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="a lighthouse"))
        await decided(await bob.slash("video text", prompt="a windmill"))
        await fake_discord.wait_for(
            lambda: len(emulator.tasks) == 2 and all(t.polls for t in emulator.tasks.values()))
        async with bot_process(fake_discord, env={**env, "PADDOCK_HTTP_PORT": str(port)}
                               ) as second:
            await second.wait_for_output("resumed 0 unfinished job(s) (others' jobs")
            polls_before = len(emulator.polls())
            assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
            # B polls A's tasks once their leases end; it never submits them again.
            await second.wait_for_output("taken over: its lease ended", timeout=30)
            await emulator.wait_for_requests("status", polls_before + 2, timeout=30)
            for task_id in emulator.tasks:
                emulator.finish(task_id)
            await fake_discord.wait_for(
                lambda: video_posts(fake_discord, alice) and video_posts(fake_discord, bob),
                timeout=30)
            assert second.output.count("taken over: its lease ended") == 2
            samples = await metrics(port)
            assert sample(samples, "paddock_lease_takeovers_total") == 2

    assert len(video_posts(fake_discord, alice)) == len(video_posts(fake_discord, bob)) == 1
    assert len(emulator.submits()) == 2
    for member in (alice, bob):
        left, pending, settled, report = await ledger_figures(
            database, fake_discord.guild.id, member.user.id)
        assert (left, pending) == (30, [])
        assert report.ok, report.problems
    _, _, settled, _ = await ledger_figures(database, fake_discord.guild.id, alice.user.id)
    assert sorted(h.charged for h in settled) == [70, 70]  # one charge per job, no more


async def test_a_paused_process_loses_its_job_and_posts_nothing_for_it(
    fake_discord, providers, tmp_path
) -> None:
    database, emulator, alice, env = await alice_renders_at_joypix(
        fake_discord, providers, tmp_path)

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="a lighthouse"))
        await emulator.wait_for_requests("status", 1)
        async with bot_process(fake_discord, env=env) as second:
            await second.wait_for_output("resumed 0 unfinished job(s) (others' jobs")
            first.process.send_signal(signal.SIGSTOP)
            try:
                await second.wait_for_output("taken over: its lease ended", timeout=30)
                [task_id] = emulator.tasks
                emulator.finish(task_id)
                await fake_discord.wait_for(lambda: video_posts(fake_discord, alice),
                                            timeout=30)
            finally:
                first.process.send_signal(signal.SIGCONT)
            # A wakes up, finds at its next write or heartbeat that B holds the job, stops.
            await first.wait_for_output("lost its lease", timeout=30)

    await assert_posted_and_charged_once(fake_discord, emulator, database, alice)


async def test_a_process_that_lost_its_job_while_fetching_the_video_posts_nothing(
    fake_discord, providers, tmp_path
) -> None:
    """The lease is confirmed again just before the post, after the download (and any
    re-encode), not only before them: a process paused past its lease while it fetched
    the video finds, once it wakes, that the job is another's, and posts nothing."""
    database, emulator, alice, env = await alice_renders_at_joypix(
        fake_discord, providers, tmp_path)

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="a lighthouse"))
        await emulator.wait_for_requests("status", 1)
        async with bot_process(fake_discord, env=env) as second:
            await second.wait_for_output("resumed 0 unfinished job(s) (others' jobs")
            emulator.files_held = asyncio.Event()
            [task_id] = emulator.tasks
            emulator.finish(task_id)
            await emulator.wait_for_requests("file", 1)  # A is fetching the video
            first.process.send_signal(signal.SIGSTOP)
            try:
                await second.wait_for_output("taken over: its lease ended", timeout=30)
                emulator.files_held.set()
                await fake_discord.wait_for(lambda: video_posts(fake_discord, alice),
                                            timeout=30)
            finally:
                first.process.send_signal(signal.SIGCONT)
            await first.wait_for_output("lost its lease", timeout=30)

    await assert_posted_and_charged_once(fake_discord, emulator, database, alice)

async def test_a_callback_that_reaches_the_other_process_makes_the_owner_poll(
    fake_discord, providers, tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    hiapi = providers["hiapi"]
    hiapi.callback_secret = SECRET
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 200)
    public = {"PADDOCK_PUBLIC_URL": "https://paddock.example.com",
              "HIAPI_WEBHOOK_SECRET": SECRET}
    env = {**lease_env(fake_discord, providers, database), **public}
    port_a, port_b = free_port(), free_port()

    async with bot_process(fake_discord, env={**env, "PADDOCK_HTTP_PORT": str(port_a)}
                           ) as first:
        message = await decided(await alice.slash("video text", prompt="a harbour",
                                                  provider="hiapi"))
        await fake_discord.wait_for(lambda: "Sent to HiAPI" in message.text)
        [task_id] = hiapi.tasks  # A waits for its callback, polling only every 30 s
        async with bot_process(fake_discord, env={**env, "PADDOCK_HTTP_PORT": str(port_b)}
                               ) as second:
            hiapi.callback_proxy = f"http://127.0.0.1:{port_b}"  # the callback reaches B
            hiapi.finish(task_id)
            await hiapi.wait_for_callbacks(1)
            await fake_discord.wait_for(lambda: video_posts(fake_discord, alice), timeout=20)
            assert "no job is waiting on it here" in second.output
            await first.wait_for_output(f"task={task_id} called back at another process")

    assert [c.status for c in hiapi.callbacks] == [200]
    assert len(hiapi.polls()) == 1  # the one the recorded callback asked A for
    assert len(video_posts(fake_discord, alice)) == 1


async def test_one_slot_at_a_provider_holds_across_two_processes(
    fake_discord, providers, tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    emulator = providers["joypix"]
    emulator.steps = ["pending"] + ["processing"] * 100000
    busy_at_creation: list[int] = []  # tasks still rendering when each new one arrived
    emulator.on_task_created = lambda task: busy_at_creation.append(
        sum(1 for t in emulator.tasks.values() if t is not task and t.finished is None))
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    for member in (alice, bob):
        await grant(database, fake_discord.guild.id, member.user.id, 100)
    env = {**lease_env(fake_discord, providers, database), "PADDOCK_PROVIDER_CONCURRENCY": "1"}

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="a lighthouse"))
        await emulator.wait_for_requests("status", 1)  # A's job holds the only slot
        async with bot_process(fake_discord, env=env) as second:
            await decided(await bob.slash("video text", prompt="a windmill"))  # to B
            await second.wait_for_output("waits for a slot taken by another process")
            assert len(emulator.submits()) == 1
            [alices] = emulator.tasks
            emulator.finish(alices)
            await fake_discord.wait_for(lambda: video_posts(fake_discord, alice), timeout=30)
            await fake_discord.wait_for(lambda: len(emulator.tasks) == 2, timeout=30)
            [bobs] = [t for t in emulator.tasks if t != alices]
            emulator.finish(bobs)
            await fake_discord.wait_for(lambda: video_posts(fake_discord, bob), timeout=30)
            assert f"submitted as task={bobs}" in second.output
            assert f"submitted as task={alices}" in first.output

    assert busy_at_creation == [0, 0]  # never two jobs at the provider at once


async def test_a_video_posted_just_before_its_process_died_is_not_posted_again(
    fake_discord, providers, tmp_path
) -> None:
    database, emulator, alice, env = await alice_renders_at_joypix(
        fake_discord, providers, tmp_path)
    bob = fake_discord.member("bob")
    # A posts the video, then Discord is slow to take its edit of the job card: A dies
    # there, with the video in the channel and the job not yet marked delivered.
    closing = fake_discord.hold("PATCH /channels/{channel_id}/messages/{message_id}",
                                lambda call: "Done:" in str(call.json))

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="a lighthouse"))
        await emulator.wait_for_requests("status", 1)
        async with bot_process(fake_discord, env=env) as second:
            await second.wait_for_output("resumed 0 unfinished job(s) (others' jobs")
            [task_id] = emulator.tasks
            emulator.finish(task_id)
            await fake_discord.wait_for(lambda: closing.call is not None, timeout=30)
            assert len(video_posts(fake_discord, alice)) == 1
            for n in range(60):  # a busy channel: the post leaves its latest 50 messages
                await bob.say(f"what a horse {n}")
            await first.stop(signal.SIGKILL)
            # B finds the post A made, closes the card, and posts nothing.
            await second.wait_for_output("result already posted", timeout=30)
            await second.wait_for_output("delivered (succeeded)", timeout=30)
        closing.release()

    await assert_posted_and_charged_once(fake_discord, emulator, database, alice)



async def test_a_posted_video_whose_record_the_database_refused_is_not_posted_again(
    fake_discord, providers, tmp_path
) -> None:
    """The post went out, then storing "delivered" failed (another program held the write
    lock past the busy timeout; on PostgreSQL, a ledger busy with serialization failures):
    the driver keeps the job and stores it once the database answers, rather than set it
    aside for its next driver to find the post, or miss it, and post again."""
    database, emulator, alice, env = await alice_renders_at_joypix(
        fake_discord, providers, tmp_path)
    env = {**env, "PADDOCK_SQLITE_BUSY_SECONDS": "0.5"}
    bob = fake_discord.member("bob")
    closing = fake_discord.hold("PATCH /channels/{channel_id}/messages/{message_id}",
                                lambda call: "Done:" in str(call.json))

    async with bot_process(fake_discord, env=env) as bot:
        await decided(await alice.slash("video text", prompt="a lighthouse"))
        await emulator.wait_for_requests("status", 1)
        [task_id] = emulator.tasks
        emulator.finish(task_id)
        await fake_discord.wait_for(lambda: closing.call is not None, timeout=30)
        assert len(video_posts(fake_discord, alice)) == 1
        for n in range(60):  # the channel moves on: the post leaves its latest 50
            await bob.say(f"what a horse {n}")
        blocker = sqlite3.connect(database, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            closing.release()  # the card is closed; next, "delivered" is stored
            await bot.wait_for_output("StoreBusy", timeout=30)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await bot.wait_for_output("delivered (succeeded)", timeout=30)

    assert "taken over" not in bot.output  # never set aside: its driver stored it
    await assert_posted_and_charged_once(fake_discord, emulator, database, alice)


async def test_a_job_the_provider_took_while_the_database_refused_is_still_made(
    fake_discord, providers, tmp_path
) -> None:
    """JoyPix took the job, then storing its task failed (the write lock held past the
    busy timeout): the driver stores it once the database answers and the video comes.
    Were it to stop driving the job, its next driver would find a send of unknown
    outcome, which JoyPix cannot be asked about, and refund it with no video."""
    database, emulator, alice, env = await alice_renders_at_joypix(
        fake_discord, providers, tmp_path)
    env = {**env, "PADDOCK_SQLITE_BUSY_SECONDS": "0.5"}
    blocker = sqlite3.connect(database, isolation_level=None)
    # The lock is taken as JoyPix makes the task, before it answers the submit.
    emulator.on_task_created = lambda task: blocker.execute("BEGIN IMMEDIATE")

    async with bot_process(fake_discord, env=env) as bot:
        try:
            await decided(await alice.slash("video text", prompt="a lighthouse"))
            await bot.wait_for_output("StoreBusy", timeout=30)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await emulator.wait_for_requests("status", 1)
        [task_id] = emulator.tasks
        emulator.finish(task_id)
        await fake_discord.wait_for(lambda: video_posts(fake_discord, alice), timeout=30)
        await bot.wait_for_output("delivered (succeeded)", timeout=30)

    await assert_posted_and_charged_once(fake_discord, emulator, database, alice)


async def test_a_video_whose_lease_the_database_would_not_renew_before_its_post_is_posted(
    fake_discord, providers, tmp_path
) -> None:
    """The video is downloaded and about to be posted, and renewing the lease first is
    refused (the write lock held past the busy timeout): the driver renews it once the
    database answers and posts. It counted as a failed delivery attempt (a few of those and
    the video is given up); refused before the download, it set the job aside until its
    lease ran out."""
    database, emulator, alice, env = await alice_renders_at_joypix(
        fake_discord, providers, tmp_path)
    env = {**env, "PADDOCK_SQLITE_BUSY_SECONDS": "0.5"}
    emulator.files_held = asyncio.Event()

    async with bot_process(fake_discord, env=env) as bot:
        await decided(await alice.slash("video text", prompt="a lighthouse"))
        await emulator.wait_for_requests("status", 1)
        [task_id] = emulator.tasks
        emulator.finish(task_id)
        await emulator.wait_for_requests("file", 1)  # stored as done, lease renewed
        blocker = sqlite3.connect(database, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            emulator.files_held.set()  # downloaded; next, the lease is renewed for the post
            await bot.wait_for_output("renewing its lease before the post failed", timeout=30)
            assert video_posts(fake_discord, alice) == []
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await bot.wait_for_output("delivered (succeeded)", timeout=30)

    # neither a failed delivery attempt (of a few, after which the video is given up and
    # its credits returned) nor set aside: its driver posted it
    assert "delivery attempt" not in bot.output and "taken over" not in bot.output
    await assert_posted_and_charged_once(fake_discord, emulator, database, alice)


async def test_a_job_waiting_in_one_process_is_cancelled_through_the_other(
    fake_discord, providers, tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    emulator = providers["joypix"]
    emulator.steps = ["pending"] + ["processing"] * 100000
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 200)
    env = {**lease_env(fake_discord, providers, database), "PADDOCK_PROVIDER_CONCURRENCY": "1"}

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="first"))
        await emulator.wait_for_requests("status", 1)
        second_card = await decided(await alice.slash("video text", prompt="second"))
        assert "position 1" in second_card.text  # in A's line
        async with bot_process(fake_discord, env=env):
            choices = await alice.autocomplete("jobs cancel", "job", "")  # answered by B
            [job_id] = [c["value"] for c in choices]
            answer = await (await alice.slash("jobs cancel", job=job_id)).reply()
            assert "70 credits are back" in answer.content
            [task_id] = emulator.tasks
            emulator.finish(task_id)  # A's slot frees: the cancelled job's turn comes
            await first.wait_for_output(f"job={job_id} member={alice.user.id} provider=joypix "
                                        "was cancelled while it waited in line; not sent")
            await fake_discord.wait_for(lambda: video_posts(fake_discord, alice))

    assert len(emulator.submits()) == 1
    left, pending, settled, report = await ledger_figures(database, fake_discord.guild.id,
                                                          alice.user.id)
    assert (left, pending, [h.charged for h in settled]) == (130, [], [70])
    assert report.ok, report.problems


async def test_a_job_whose_driver_stopped_on_a_database_fault_is_resumed_when_its_lease_ends(
    fake_discord, providers, tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    emulator = providers["joypix"]
    emulator.steps = ["pending"] + ["processing"] * 100000
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 100)
    # A lease longer than the fault (a write gives up after the 0.5 s busy timeout): it is
    # still running when the fault ends, so only leaving it unrenewed lets the job be taken
    # over.
    env = {**lease_env(fake_discord, providers, database), "PADDOCK_LEASE_SECONDS": "3",
           "PADDOCK_SQLITE_BUSY_SECONDS": "0.5"}

    async with bot_process(fake_discord, env=env) as bot:
        await decided(await alice.slash("video text", prompt="a lighthouse"))
        await emulator.wait_for_requests("status", 1)
        # Another program holds the write lock past the busy timeout just as the render
        # ends: the runner cannot store "running" and stops driving the job.
        blocker = sqlite3.connect(database, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            [task_id] = emulator.tasks
            emulator.finish(task_id)
            await bot.wait_for_output("stopped unexpectedly in state", timeout=30)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        # Its lease is no longer renewed; once it ends the job is taken over and posted.
        await fake_discord.wait_for(lambda: video_posts(fake_discord, alice), timeout=30)
        assert "taken over: its lease ended" in bot.output

    await assert_posted_and_charged_once(fake_discord, emulator, database, alice)
