"""The fake gateway shards as Discord documents it (events/gateway, "Sharding"): a server
belongs to shard ``(guild_id >> 22) % num_shards``, whose session alone receives its
GUILD_CREATE and its events; DMs go to shard 0; each shard resumes its own session.
Real discord.py clients connect to it: one ``AutoShardedClient``, or one client per shard.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from tests.fakes.discord import FakeDiscord, ProbeBot, running_bot
from tests.fakes.discord.gateway import CLOSE_INVALID_SHARD, GatewaySession
from tests.fakes.discord.state import Guild


def sent(session: GatewaySession, event: str) -> list[dict[str, Any]]:
    """The payloads of every ``event`` the fake sent this session, oldest first."""
    frames = [json.loads(frame) for _seq, frame in session.sent]
    return [frame["d"] for frame in frames if frame["t"] == event]


def guilds_of(session: GatewaySession) -> set[int]:
    """Every server any event sent to this session was about."""
    found = set()
    for _seq, frame in session.sent:
        event, data = json.loads(frame)["t"], json.loads(frame)["d"]
        if event == "GUILD_CREATE":
            found.add(int(data["id"]))
        elif isinstance(data, dict) and data.get("guild_id"):
            found.add(int(data["guild_id"]))
    return found


def session_of(fake: FakeDiscord, shard: tuple[int, int]) -> GatewaySession:
    [session] = [s for s in fake.gateway.live_sessions() if s.shard == shard]
    return session


class QuickShards(discord.AutoShardedClient):
    """An AutoShardedClient that identifies its shards at once (the fake does not limit
    IDENTIFYs; discord.py's default hook waits 5 s before each after the first)."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


@contextlib.asynccontextmanager
async def shard_bots(fake: FakeDiscord, guilds: list[Guild]) -> AsyncIterator[list[ProbeBot]]:
    """Two probe bots, one per shard of two, each with /probe in every server."""
    bots = [ProbeBot(fake.guild.id, shard_id=shard, shard_count=2) for shard in (0, 1)]
    for bot in bots:
        bot.guild_ids = [guild.id for guild in guilds]
    async with running_bot(fake, bots[0]), running_bot(fake, bots[1]):
        yield bots


@pytest.mark.parametrize("shard", [0, 1, 2])
async def test_a_server_added_for_a_shard_has_an_id_that_maps_to_it(
    fake_discord: FakeDiscord, shard: int
) -> None:
    guild = fake_discord.add_guild("Elsewhere", shard=(shard, 3))

    assert (guild.id >> 22) % 3 == shard
    assert fake_discord.guilds[guild.id] is guild
    assert [c.name for c in guild.channels.values()] == ["general", "videos"]


async def test_an_unsharded_bot_gets_every_server(fake_discord: FakeDiscord) -> None:
    second = fake_discord.add_guild("Second", shard=(1, 2))
    async with running_bot(fake_discord, ProbeBot(fake_discord.guild.id)) as bot:
        assert {g.id for g in bot.guilds} == {fake_discord.guild.id, second.id}
        third = fake_discord.add_guild("Third")
        await fake_discord.wait_for(lambda: bot.get_guild(third.id), what="the third server")
    [session] = fake_discord.gateway.identified
    assert session.shard == (0, 1)
    assert "shard" not in sent(session, "READY")[0]


async def test_gateway_bot_recommends_shards_and_each_gets_only_its_servers(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.recommended_shards = 2
    zero = fake_discord.add_guild("Zero", shard=(0, 2))
    one = fake_discord.add_guild("One", shard=(1, 2))
    everything = {fake_discord.guild.id, zero.id, one.id}

    bot = QuickShards(intents=discord.Intents.default(), guild_ready_timeout=0.01)
    async with running_bot(fake_discord, bot):
        assert bot.shard_count == 2
        assert {g.id for g in bot.guilds} == everything
        assert all(g.shard_id == (g.id >> 22) % 2 for g in bot.guilds)
        for shard in (0, 1):
            session = session_of(fake_discord, (shard, 2))
            mine = {g for g in everything if (g >> 22) % 2 == shard}
            assert sent(session, "READY")[0]["shard"] == [shard, 2]
            assert {int(g["id"]) for g in sent(session, "READY")[0]["guilds"]} == mine
            assert {int(g["id"]) for g in sent(session, "GUILD_CREATE")} == mine


async def test_an_interaction_reaches_only_the_shard_of_its_server(
    fake_discord: FakeDiscord,
) -> None:
    zero = fake_discord.add_guild("Zero", shard=(0, 2))
    one = fake_discord.add_guild("One", shard=(1, 2))
    async with shard_bots(fake_discord, [zero, one]) as (bot0, bot1):
        alice = fake_discord.member("alice", guild=one)
        reply = await (await alice.slash("probe", text="hi")).reply()

        assert reply.content == "received ['text']"
        assert (len(bot0.received), len(bot1.received)) == (0, 1)
        bob = fake_discord.member("bob", guild=zero)
        assert (await (await bob.slash("probe")).reply()).content == "received []"
        assert (len(bot0.received), len(bot1.received)) == (1, 1)
        await alice.say("hello from One")
        await bob.say("hello from Zero")

    session0, session1 = fake_discord.gateway.identified
    assert guilds_of(session1) == {one.id} | (
        {fake_discord.guild.id} if (fake_discord.guild.id >> 22) % 2 == 1 else set())
    assert one.id not in guilds_of(session0) and zero.id not in guilds_of(session1)
    said = {session: [m for m in sent(session, "MESSAGE_CREATE")
                      if m["author"]["id"] != str(fake_discord.bot_user.id)]
            for session in (session0, session1)}
    assert [m["guild_id"] for m in said[session0]] == [str(zero.id)]
    assert [m["guild_id"] for m in said[session1]] == [str(one.id)]


async def test_direct_message_events_go_to_shard_zero_only(fake_discord: FakeDiscord) -> None:
    async with shard_bots(fake_discord, [fake_discord.guild]):
        alice = fake_discord.member("alice").user.payload()
        dm = {"id": "1", "channel_id": "2", "type": 0, "content": "", "author": alice,
              "timestamp": fake_discord.clock.iso(), "edited_timestamp": None, "tts": False,
              "mention_everyone": False, "mentions": [], "mention_roles": [],
              "attachments": [], "embeds": [], "pinned": False}
        fake_discord.dispatch("MESSAGE_CREATE", dm)

    session0, session1 = fake_discord.gateway.identified
    assert (session0.shard, session1.shard) == ((0, 2), (1, 2))
    assert sent(session0, "MESSAGE_CREATE") == [dm]
    assert sent(session1, "MESSAGE_CREATE") == []


async def test_each_shard_resumes_its_own_session(fake_discord: FakeDiscord) -> None:
    one = fake_discord.add_guild("One", shard=(1, 2))
    async with shard_bots(fake_discord, [one]) as (_bot0, bot1):
        sessions = fake_discord.gateway.live_sessions()
        await fake_discord.drop_connection()
        await fake_discord.wait_for(lambda: not any(s.connected for s in sessions),
                                    what="both sockets to close")

        ix = await fake_discord.member("alice", guild=one).slash("probe", text="queued")

        assert (await ix.reply()).content == "received ['text']"
        await fake_discord.wait_for(lambda: all(s.resumes == 1 for s in sessions),
                                    what="both shards to resume")
        assert len(fake_discord.gateway.identified) == 2
        assert len(bot1.received) == 1


async def test_a_shard_id_not_below_the_count_is_closed_with_4010(
    fake_discord: FakeDiscord,
) -> None:
    bot = ProbeBot(fake_discord.guild.id, shard_id=2, shard_count=2)

    with pytest.raises(discord.ConnectionClosed) as closed:
        async with running_bot(fake_discord, bot, timeout=5):
            pass

    assert closed.value.code == CLOSE_INVALID_SHARD
    assert fake_discord.gateway.identified == []
