"""The fake Discord's login, gateway and command registration, as discord.py meets them."""

from __future__ import annotations

import json
from typing import Any

import discord
import pytest

from tests.fakes.discord import FakeDiscord, ProbeBot, running_bot
from tests.fakes.discord.gateway import GatewaySession


def sent_events(session: GatewaySession, event: str) -> list[dict[str, Any]]:
    """The payloads of every ``event`` the fake sent this session, oldest first."""
    frames = [json.loads(frame) for _seq, frame in session.sent]
    return [frame["d"] for frame in frames if frame["t"] == event]


async def test_login_reads_the_bot_and_application(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    assert probe_bot.user is not None
    assert probe_bot.user.id == fake_discord.bot_user.id
    assert probe_bot.user.bot
    assert probe_bot.application_id == fake_discord.application_id
    routes = [call.route for call in fake_discord.calls]
    assert routes[:2] == ["GET /users/@me", "GET /oauth2/applications/@me"]
    assert all(call.status < 400 for call in fake_discord.calls)


async def test_ready_and_guild_create_fill_the_bot_cache(fake_discord: FakeDiscord) -> None:
    mod = fake_discord.role("Moderator", discord.Permissions(manage_guild=True))
    alice = fake_discord.member("alice", roles=[mod])
    fake_discord.enable_privileged_intents(members=True)
    intents = discord.Intents.default()
    intents.members = True
    async with running_bot(fake_discord, ProbeBot(fake_discord.guild.id, intents=intents)) as bot:
        guild = bot.get_guild(fake_discord.guild.id)
        assert guild is not None
        assert guild.name == fake_discord.guild.name
        assert [c.name for c in guild.text_channels] == ["general", "videos"]
        assert {r.name for r in guild.roles} >= {"@everyone", "Moderator", "Paddock"}
        member = guild.get_member(alice.id)
        assert member is not None
        assert member.guild_permissions.manage_guild
        assert guild.chunked
        assert guild.me.guild_permissions.send_messages
    session = fake_discord.gateway.identified[-1]
    [guild_create] = sent_events(session, "GUILD_CREATE")
    assert [m["user"]["id"] for m in guild_create["members"]] == [str(fake_discord.bot_user.id)]
    [chunk] = sent_events(session, "GUILD_MEMBERS_CHUNK")
    assert len(chunk["members"]) == 3


async def test_without_the_members_intent_the_bot_knows_only_itself(
    fake_discord: FakeDiscord,
) -> None:
    """Discord: "If your bot does not have the GUILD_PRESENCES Gateway Intent ... members
    ... returned in this event will only contain your bot and users in voice channels."
    Members reach the bot in full on their interactions and messages instead."""
    mod = fake_discord.role("Moderator", discord.Permissions(manage_guild=True))
    alice = fake_discord.member("alice", roles=[mod])
    seen: list[Any] = []

    async def who(interaction: discord.Interaction[Any], values: dict[str, Any]) -> None:
        seen.append(interaction.user)
        await interaction.response.send_message("ok")

    async with running_bot(fake_discord, ProbeBot(fake_discord.guild.id)) as bot:
        guild = bot.get_guild(fake_discord.guild.id)
        assert guild is not None
        assert guild.get_member(alice.id) is None
        assert guild.get_member(fake_discord.owner.id) is None
        assert guild.me is not None and guild.member_count == 3
        assert not guild.chunked
        bot.behaviour = who
        await (await alice.slash("probe")).reply()
        waiting = bot.loop.create_task(
            bot.wait_for("message", check=lambda m: m.author.id == alice.id, timeout=5)
        )
        said = await alice.say(f"hi {fake_discord.bot_user.mention}")
        received = await waiting

    [member] = seen
    assert isinstance(member, discord.Member)
    assert [r.name for r in member.roles] == ["@everyone", "Moderator"]
    assert member.guild_permissions.manage_guild
    assert received.id == said.id
    assert isinstance(received.author, discord.Member)
    assert [r.name for r in received.author.roles] == ["@everyone", "Moderator"]
    assert [m.id for m in received.mentions] == [fake_discord.bot_user.id]
    assert isinstance(received.mentions[0], discord.Member)
    [guild_create] = sent_events(fake_discord.gateway.identified[-1], "GUILD_CREATE")
    assert [m["user"]["id"] for m in guild_create["members"]] == [str(fake_discord.bot_user.id)]


async def test_with_presences_guild_create_carries_every_member_until_large(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.enable_privileged_intents(presences=True)
    regular = fake_discord.role("Regular")
    fake_discord.member("alice", roles=[regular])
    fake_discord.member("bob")
    intents = discord.Intents.default()
    intents.presences = True
    async with running_bot(fake_discord, ProbeBot(fake_discord.guild.id, intents=intents)):
        pass
    [small] = sent_events(fake_discord.gateway.identified[-1], "GUILD_CREATE")
    assert not small["large"] and len(small["members"]) == 4

    for number in range(250):  # discord.py identifies with large_threshold=250
        fake_discord.member(f"lurker{number}")
    async with running_bot(fake_discord, ProbeBot(fake_discord.guild.id, intents=intents)):
        pass
    [large] = sent_events(fake_discord.gateway.identified[-1], "GUILD_CREATE")
    assert large["large"] and large["member_count"] == 254
    names = {m["user"]["username"] for m in large["members"]}
    assert names == {"paddock", "alice"}


async def test_privileged_intents_not_enabled_for_the_app_close_the_gateway_with_4014(
    fake_discord: FakeDiscord,
) -> None:
    intents = discord.Intents.default()
    intents.members = True
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running_bot(fake_discord, ProbeBot(fake_discord.guild.id, intents=intents)):
            pass
    assert fake_discord.gateway.identified == []


async def test_requesting_every_member_without_the_intent_gets_no_answer(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    """Discord: "GUILD_MEMBERS intent is required to request the entire member list";
    without it the gateway sends nothing back (discord-api-docs#5855, discordrb#53)."""
    alice = fake_discord.member("alice")
    fake_discord.member("albert")
    fake_discord.member("bob")
    guild = probe_bot.get_guild(fake_discord.guild.id)
    assert guild is not None and probe_bot.ws is not None
    session = fake_discord.gateway.current()
    assert session is not None

    await probe_bot.ws.request_chunks(guild.id, query="", limit=0, nonce="everyone")
    by_id = await guild.query_members(user_ids=[alice.id, 1234])
    by_prefix = await guild.query_members("al", limit=5)

    assert [m.id for m in by_id] == [alice.id]
    assert sorted(m.name for m in by_prefix) == ["albert", "alice"]
    chunks = sent_events(session, "GUILD_MEMBERS_CHUNK")
    assert len(chunks) == 2
    assert "everyone" not in [c.get("nonce") for c in chunks]
    assert chunks[0]["not_found"] == ["1234"]


async def test_listing_members_over_rest_needs_the_intent_enabled_for_the_app(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    """Discord: "to use the List Guild Members endpoint, your app must enable the
    GUILD_MEMBERS intent"; fetching one member does not need it."""
    alice = fake_discord.member("alice")
    guild_id = fake_discord.guild.id
    with pytest.raises(discord.Forbidden) as caught:
        await probe_bot.http.get_members(guild_id, 1000, None)
    assert (caught.value.status, caught.value.code) == (403, 50001)

    guild = probe_bot.get_guild(guild_id)
    assert guild is not None
    fetched = await guild.fetch_member(alice.id)
    assert fetched.name == "alice"

    fake_discord.enable_privileged_intents(members=True)
    listed = await probe_bot.http.get_members(guild_id, 1000, None)
    assert {m["user"]["username"] for m in listed} == {"paddock", "owner", "alice"}


async def test_a_wrong_token_is_refused_with_401(fake_discord: FakeDiscord) -> None:
    bot = ProbeBot(fake_discord.guild.id)
    discord.http.Route.BASE, saved = fake_discord.api_base, discord.http.Route.BASE
    try:
        async with bot:
            with pytest.raises(discord.LoginFailure):
                await bot.login("not-the-token")
    finally:
        discord.http.Route.BASE = saved
    assert fake_discord.calls[-1].status == 401
    assert fake_discord.calls[-1].response == {"message": "401: Unauthorized", "code": 0}


async def test_sync_echoes_commands_with_ids_and_keeps_them_on_resync(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    registered = fake_discord.registered_commands(fake_discord.guild.id)
    assert {(c["name"], c["type"]) for c in registered} == {
        ("probe", 1), ("clip", 1), ("pick", 1), ("admin", 1), ("Probe message", 3)}
    assert all(c["guild_id"] == str(fake_discord.guild.id) for c in registered)
    assert all(c["application_id"] == str(fake_discord.application_id) for c in registered)

    synced = await probe_bot.tree.sync(guild=discord.Object(id=fake_discord.guild.id))

    assert {c.name: c.id for c in synced} == {c["name"]: int(c["id"]) for c in registered}
    fetched = await probe_bot.tree.fetch_commands(guild=discord.Object(id=fake_discord.guild.id))
    clip = next(c for c in fetched if c.name == "clip")
    assert {o.name for o in clip.options} == {"make", "edit"}
    admin = next(c for c in fetched if c.name == "admin")
    assert admin.default_member_permissions == discord.Permissions(manage_guild=True)


async def test_reconnect_resumes_the_session(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    session = fake_discord.gateway.current()
    assert session is not None

    fake_discord.request_reconnect()
    await fake_discord.wait_for(lambda: session.resumes == 1 and session.connected, what="a RESUME")
    await fake_discord.wait_for(lambda: probe_bot.events == ["resumed"], what="on_resumed")

    reply = await (await fake_discord.member("alice").slash("probe", text="still here")).reply()
    assert reply.content == "received ['text']"
    assert fake_discord.gateway.connections == 2
    assert len(fake_discord.gateway.identified) == 1


async def test_events_sent_while_the_bot_reconnects_are_replayed(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    session = fake_discord.gateway.current()
    assert session is not None
    await fake_discord.drop_connection()
    await fake_discord.wait_for(lambda: not session.connected, what="the socket to close")

    ix = await fake_discord.member("alice").slash("probe", text="queued")

    assert (await ix.reply()).content == "received ['text']"
    assert session.resumes == 1


async def test_wait_for_bot_sees_a_connected_bot_with_commands(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    session = await fake_discord.wait_for_bot(timeout=1)
    assert session.connected
    assert session.intents == discord.Intents.default().value


async def test_gateway_bot_route_serves_sharded_bots(fake_discord: FakeDiscord) -> None:
    bot = discord.AutoShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.01)
    async with running_bot(fake_discord, bot):
        assert bot.shard_count == 1
        assert bot.get_guild(fake_discord.guild.id) is not None
    assert "GET /gateway/bot" in [c.route for c in fake_discord.calls]


async def test_unknown_routes_are_recorded_as_404(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    with pytest.raises(discord.NotFound) as caught:
        await probe_bot.http.request(discord.http.Route("GET", "/voice/regions"))
    assert caught.value.code == 0
    [call] = fake_discord.calls_to("GET /voice/regions")
    assert not call.known
    assert call.status == 404
