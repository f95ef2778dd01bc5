"""The fake Discord's login, gateway and command registration, as discord.py meets them."""

from __future__ import annotations

import discord
import pytest

from tests.fakes.discord import FakeDiscord, ProbeBot, running_bot


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
    assert {c["name"] for c in registered} == {"probe", "clip", "pick", "admin"}
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
