"""One bot in two `python bot.py` processes, shards 0 and 1 of 2, on one PostgreSQL
database: either process killed (SIGKILL) mid-render loses nothing, and the other posts
every video exactly once.

Members in a server on each shard start jobs; each process drives the jobs of its own
shard's members. While every job renders at the provider, one process dies. Once the
leases of its jobs end, the other takes them over: it polls their tasks (never submits
them again), posts each video once, in the dead shard's server too (over REST), and each
member is charged once.
"""

from __future__ import annotations

import json
import signal

import pytest

from tests.bot.support import decided, posts_by_job
from tests.bot.test_restarts import bot_env, grant, ledger_figures
from tests.fakes.discord import FakeDiscord, Member, Message, bot_process
from tests.fakes.providers import ProviderEmulator

LEASE = "2"  # seconds: short, so the takeover comes soon after the death
MEMBERS_PER_SERVER = 2
CREDITS = 100  # a 5 s video at 720p costs 70


def cluster_env(fake: FakeDiscord, providers, pg_url: str, tmp_path) -> dict[str, str]:
    """Both processes': one database (PostgreSQL), one token, two shards, short leases."""
    return {
        **bot_env(fake, providers, tmp_path / "unused.db"),
        "DATABASE_URL": pg_url,
        "DEV_GUILD_ID": "",  # commands registered globally, for the servers of both shards
        "DISCORD_SHARD_COUNT": "2",
        "PADDOCK_LEASE_SECONDS": LEASE,
    }


def video_posts(fake: FakeDiscord, member: Member) -> list[Message]:
    channel = fake.channel("general", guild=member.guild)
    return [m for m in channel.visible if m.pings(member) and m.attachments]


def prompt_of(member: Member) -> str:
    return f"a horse for {member.user.name}"


def tasks_of(emulator: ProviderEmulator, members: list[Member]) -> set[str]:
    """The provider's tasks for these members' jobs, found by their prompts."""
    prompts = {prompt_of(member) for member in members}
    return {task_id for task_id, task in emulator.tasks.items()
            if any(prompt in json.dumps(task.received) for prompt in prompts)}


@pytest.mark.postgres
@pytest.mark.parametrize("killed", [0, 1], ids=["shard-0-dies", "shard-1-dies"])
async def test_either_shard_process_killed_mid_render_loses_nothing_on_postgresql(
    fake_discord: FakeDiscord, providers, pg_url: str, tmp_path, killed: int
) -> None:
    fake_discord.max_concurrency = 16  # both shards IDENTIFY at once
    emulator = providers["joypix"]
    emulator.steps = ["pending"] + ["processing"] * 100000  # renders until finish()
    members: dict[int, list[Member]] = {}
    for shard in (0, 1):
        server = fake_discord.add_guild(f"Shard {shard} server", shard=(shard, 2))
        members[shard] = [fake_discord.member(f"member{shard}-{n}", guild=server)
                          for n in range(MEMBERS_PER_SERVER)]
        for member in members[shard]:
            await grant(pg_url, server.id, member.user.id, CREDITS)
    everyone = members[0] + members[1]
    env = cluster_env(fake_discord, providers, pg_url, tmp_path)
    survivor = 1 - killed

    async with (
        bot_process(fake_discord, env={**env, "DISCORD_SHARD_IDS": "0"}, shard=(0, 2)) as zero,
        bot_process(fake_discord, env={**env, "DISCORD_SHARD_IDS": "1"}, shard=(1, 2)) as one,
    ):
        processes = {0: zero, 1: one}
        for member in everyone:
            card = await decided(await member.slash("video text", prompt=prompt_of(member)))
            assert not card.ephemeral, card.text
        await fake_discord.wait_for(
            lambda: len(emulator.tasks) == len(everyone)
            and all(t.polls for t in emulator.tasks.values()), timeout=30)
        dead_tasks = tasks_of(emulator, members[killed])
        assert len(dead_tasks) == MEMBERS_PER_SERVER
        polls_before = len(emulator.polls())

        assert await processes[killed].stop(signal.SIGKILL) == -signal.SIGKILL

        # The survivor takes the dead one's jobs over once their leases end, and polls
        # their tasks: resumed where they were, not sent again.
        def polled_since_the_kill() -> set[str]:
            return {r.path.rsplit("/", 1)[1] for r in emulator.polls()[polls_before:]}

        await processes[survivor].wait_for_output(
            "taken over: its lease ended", timeout=30, count=MEMBERS_PER_SERVER)
        await fake_discord.wait_for(lambda: dead_tasks <= polled_since_the_kill(), timeout=30)
        for task_id in emulator.tasks:
            emulator.finish(task_id)
        await fake_discord.wait_for(
            lambda: all(video_posts(fake_discord, member) for member in everyone), timeout=30)
        await processes[survivor].wait_for_output("delivered (succeeded)", count=len(everyone))

    assert processes[survivor].output.count("taken over") == MEMBERS_PER_SERVER
    posts = posts_by_job(fake_discord)
    assert len(posts) == len(everyone) and set(posts.values()) == {1}, posts
    assert [len(video_posts(fake_discord, member)) for member in everyone] == [1, 1, 1, 1]
    assert len(emulator.submits()) == len(everyone)
    assert sorted(len(tasks_of(emulator, [member])) for member in everyone) == [1, 1, 1, 1]
    for member in everyone:
        left, pending, settled, report = await ledger_figures(pg_url, member.guild.id,
                                                              member.user.id)
        assert (left, pending) == (CREDITS - 70, [])
        assert report.ok, report.problems
    assert sorted(hold.charged for hold in settled) == [70] * len(everyone)
