"""Paddock sharded (DISCORD_SHARD_COUNT, DISCORD_SHARD_IDS) against the fake Discord,
which routes each server's events to the shard Discord's formula gives it: one process
running shards 0 and 1 of 2, and two processes (``python bot.py``) running one shard each
on one database and one token. /healthz is ready only when every shard of the process is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import pytest
import yarl

from bot import Paddock, ShardedPaddock
from paddock.services import Services
from tests.bot.side_door_support import free_port, get, metric_samples, sample
from tests.bot.test_restarts import grant
from tests.fakes.discord import FakeDiscord, Member, Message, bot_process, running_bot
from tests.fakes.discord.gateway import GatewaySession
from tests.fakes.discord.state import Guild
from tests.fakes.waiting import WAIT_LIMIT


@pytest.fixture
def servers(fake_discord: FakeDiscord) -> dict[int, Guild]:
    """A server on each shard of two (besides the fake's first one), by shard id."""
    fake_discord.max_concurrency = 16  # a large bot's: both shards IDENTIFY at once
    return {shard: fake_discord.add_guild(f"Shard {shard} server", shard=(shard, 2))
            for shard in (0, 1)}


@pytest.fixture
def paddock_settings(paddock_settings, servers):
    """Shards 0 and 1 of 2 in this process; commands registered globally, for every server."""
    return dataclasses.replace(paddock_settings, dev_guild_id=None, shard_count=2,
                               shard_ids=(0, 1), http_port=free_port())


def events_of(session: GatewaySession) -> list[tuple[str, dict[str, Any]]]:
    frames = [json.loads(frame) for _seq, frame in session.sent]
    return [(frame["t"], frame["d"]) for frame in frames]


def servers_reached(session: GatewaySession) -> set[int]:
    """Every server an event the fake sent this session was about."""
    found = set()
    for event, data in events_of(session):
        if event == "GUILD_CREATE":
            found.add(int(data["id"]))
        elif isinstance(data, dict) and data.get("guild_id"):
            found.add(int(data["guild_id"]))
    return found


def interactions_sent(session: GatewaySession) -> set[int]:
    return {int(data["id"]) for event, data in events_of(session)
            if event == "INTERACTION_CREATE"}


async def balance(member: Member) -> Message:
    reply = await (await member.slash("credits balance")).reply()
    assert reply.ephemeral and reply.embed is not None, reply.text
    return reply


async def test_one_process_runs_both_shards_and_answers_in_each_server(
    fake_discord: FakeDiscord, servers: dict[int, Guild], paddock: Paddock
) -> None:
    ledger = paddock.services.ledger
    members = {shard: fake_discord.member(f"member{shard}", guild=guild)
               for shard, guild in servers.items()}
    for shard, guild in servers.items():
        await ledger.grant(guild.id, members[shard].id, 10 + shard, actor_id=1, reason="test",
                           role_ids=())

    replies = {shard: await balance(member) for shard, member in members.items()}

    assert isinstance(paddock, ShardedPaddock)
    assert paddock.shard_count == 2 and sorted(paddock.shards) == [0, 1]
    for shard, guild in servers.items():
        assert paddock.get_guild(guild.id).shard_id == shard
        assert replies[shard].embed.description == f"**{10 + shard} credits** available to spend."
    sessions = {s.shard: s for s in fake_discord.gateway.identified}
    assert sorted(sessions) == [(0, 2), (1, 2)]
    for shard, guild in servers.items():
        assert guild.id in servers_reached(sessions[(shard, 2)])
        assert guild.id not in servers_reached(sessions[(1 - shard, 2)])


async def test_without_a_shard_count_the_bot_keeps_one_unsharded_connection(
    fake_discord: FakeDiscord, servers: dict[int, Guild], paddock_settings
) -> None:
    settings = dataclasses.replace(paddock_settings, shard_count=None, shard_ids=None)

    async with (
        Services.open(settings.database_path, settings.providers) as services,
        running_bot(fake_discord, Paddock.build(settings, services)) as bot,
    ):
        assert type(bot) is Paddock
        assert len(bot.guilds) == 3
        for guild in servers.values():
            assert (await balance(fake_discord.member("alice", guild=guild))).embed is not None
    [session] = fake_discord.gateway.identified
    assert (session.shard, session.sharded) == ((0, 1), False)
    assert "GET /gateway/bot" not in [call.route for call in fake_discord.calls]


async def test_two_processes_with_one_shard_each_share_the_database(
    fake_discord: FakeDiscord, servers: dict[int, Guild], tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    members = {shard: fake_discord.member(f"member{shard}", guild=guild)
               for shard, guild in servers.items()}
    await grant(database, servers[0].id, members[0].id, 25)
    await grant(database, servers[1].id, members[1].id, 40)
    env = {"DATABASE_PATH": str(database), "DEV_GUILD_ID": "", "DISCORD_SHARD_COUNT": "2"}

    async with (
        bot_process(fake_discord, env={**env, "DISCORD_SHARD_IDS": "0"}, shard=(0, 2)) as first,
        bot_process(fake_discord, env={**env, "DISCORD_SHARD_IDS": "1"}, shard=(1, 2)) as second,
    ):
        ix1 = await members[1].slash("credits balance")
        on_one = await ix1.reply()
        ix0 = await members[0].slash("credits balance")
        on_zero = await ix0.reply()
        await first.wait_for_output("shards 0 of 2")
        await second.wait_for_output("shards 1 of 2")

    assert on_one.embed.description == "**40 credits** available to spend."
    assert on_zero.embed.description == "**25 credits** available to spend."
    session = {s.shard[0]: s for s in fake_discord.gateway.identified}
    assert sorted(s.shard for s in session.values()) == [(0, 2), (1, 2)]
    # Only the shard-1 process was told of the shard-1 command (its token is in that
    # event alone), and it answered; the same for shard 0.
    assert (ix1.id in interactions_sent(session[1]), ix1.id in interactions_sent(session[0])) \
        == (True, False)
    assert (ix0.id in interactions_sent(session[0]), ix0.id in interactions_sent(session[1])) \
        == (True, False)
    for guild in fake_discord.guilds.values():
        reached = [shard for shard, s in session.items() if guild.id in servers_reached(s)]
        assert reached == [(guild.id >> 22) % 2], guild.name


@contextlib.asynccontextmanager
async def started(fake: FakeDiscord, bot: discord.Client) -> AsyncIterator[None]:
    """Run ``bot`` against ``fake`` without waiting for it to be ready."""
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        async with bot:
            running = bot.loop.create_task(bot.start(fake.token))
            try:
                yield
            finally:
                await bot.close()
                await running
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


async def side_door_when(
    bot: Paddock, path: str, wanted: Callable[[int, Any], bool]
) -> tuple[int, Any]:
    """GET ``path`` on the side door until ``wanted(status, body)``; the last answer."""
    last: list[tuple[int, Any]] = []

    async def ask() -> bool:
        if bot.side_door is None or not bot.side_door.port:
            return False
        status, body, _ = await get(bot, path)
        last[:] = [(status, body)]
        return wanted(status, body)

    loop = bot.loop
    deadline = loop.time() + WAIT_LIMIT
    while not await ask():
        if loop.time() > deadline:
            raise AssertionError(f"{path} never answered as wanted; last: {last}")
        await asyncio.sleep(0.05)  # the side door is asked again; nothing is asserted on time
    return last[0]


async def test_healthz_is_ready_only_when_every_shard_of_the_process_is(
    fake_discord: FakeDiscord, paddock_settings, servers: dict[int, Guild]
) -> None:
    settings = paddock_settings
    for shard in (0, 1):
        fake_discord.gateway.hold_ready(shard)  # Discord is slow to bring the shards up
    async with Services.open(settings.database_path, settings.providers) as services:
        bot = Paddock.build(settings, services)
        async with started(fake_discord, bot):
            await fake_discord.wait_for(lambda: len(fake_discord.gateway.identified) == 2,
                                        what="both shards to IDENTIFY")
            status, body, _ = await get(bot, "/healthz")
            assert (status, body["checks"]["gateway"]) == (
                503, "not connected to Discord: shards 0, 1 of 2 not ready")

            fake_discord.gateway.release_ready(0)

            status, body = await side_door_when(
                bot, "/healthz",
                lambda status, body: body["checks"]["gateway"]
                == "not connected to Discord: shard 1 of 2 not ready")
            assert status == 503
            assert bot.get_guild(servers[0].id) is not None  # shard 0 is up and serving

            fake_discord.gateway.release_ready(1)

            status, body = await side_door_when(bot, "/healthz",
                                                lambda status, body: status == 200)
            assert body["checks"] == {"gateway": "ok", "database": "ok", "runner": "ok"}
            _, text = await side_door_when(
                bot, "/metrics",
                lambda status, text: 'paddock_gateway_latency_seconds{shard="1"}' in text)
            samples = metric_samples(text)
            for shard in ("0", "1"):
                seconds = sample(samples, "paddock_gateway_latency_seconds", shard=shard)
                assert seconds is not None and 0 <= seconds < 5


async def test_healthz_names_the_shards_that_lost_discord(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    status, _, _ = await get(paddock, "/healthz")
    assert status == 200

    await fake_discord.stop()  # Discord is gone: both shards' sockets close

    status, body = await side_door_when(
        paddock, "/healthz", lambda status, body: body["checks"]["gateway"]
        == "not connected to Discord: shards 0, 1 of 2 not ready")
    assert status == 503
    assert (body["checks"]["database"], body["checks"]["runner"]) == ("ok", "ok")
