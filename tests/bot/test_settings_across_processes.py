"""Two `python bot.py` processes on one PostgreSQL database: a moderator's change of the
server's settings answered by one process is what the other enforces at once, though it
had the old settings in memory (its listener drops them when the change commits).

Discord sends a server's commands to the one process running its shard, so two
processes answer one server only while they overlap on one shard: a rolling restart,
as here, where the newest session gets the commands (the fake does as Discord does).
"""

from __future__ import annotations

import json

from tests.bot.test_restarts import bot_env
from tests.fakes.discord import FakeDiscord, bot_process
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
