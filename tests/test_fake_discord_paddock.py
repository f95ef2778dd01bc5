"""Paddock itself through the fake Discord: /help end to end, in-process and as
``python bot.py``, and the one-line failures of a bot that cannot start."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import discord
import psycopg
import pytest

from bot import Paddock, Settings, SettingsError, route_discord
from paddock.services import Services
from tests.fakes.discord import FakeDiscord, bot_process, running_bot

# Commands these tests expect registered; the other cogs' commands may be there too.
OURS = {"help", "credits", "quota"}


async def test_help_answers_the_member_privately(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")

    reply = await (await alice.slash("help")).reply()

    assert reply.ephemeral
    assert reply.embed is not None and reply.embed.title == "How to use Paddock"
    assert "/video text" in reply.text and "Re-roll" in reply.text
    assert alice.seen() == [reply]
    assert bob.seen() == []


async def test_an_unexpected_error_is_answered_privately(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    @paddock.tree.command(name="broken", guild=discord.Object(fake_discord.guild.id))
    async def broken(interaction: discord.Interaction[Paddock]) -> None:
        """Always fails."""
        raise RuntimeError("boom")

    await paddock.tree.sync(guild=discord.Object(fake_discord.guild.id))
    reply = await (await fake_discord.member("alice").slash("broken")).reply()

    assert reply.ephemeral
    assert reply.content.startswith("Something went wrong on our side")


async def test_commands_sync_globally_without_a_dev_server(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    settings = Settings(discord_token=fake_discord.token, guild_ready_timeout=0.01,
                        database_path=tmp_path / "paddock.db")
    async with (
        Services.open(settings.database_path, settings.providers) as services,
        running_bot(fake_discord, Paddock(settings, services)),
    ):
        assert OURS.issubset(c["name"] for c in fake_discord.registered_commands(None))
        assert fake_discord.registered_commands(fake_discord.guild.id) == []
        reply = await (await fake_discord.member("alice").slash("help")).reply()
    assert reply.embed is not None and reply.embed.title == "How to use Paddock"


async def test_bot_py_runs_against_the_fake(fake_discord: FakeDiscord) -> None:
    async with bot_process(fake_discord) as bot:
        reply = await (await fake_discord.member("alice").slash("help")).reply()
        assert reply.ephemeral and reply.embed is not None
        assert reply.embed.title == "How to use Paddock"
        assert re.search(r"synced \d+ commands to server", bot.output)
    registered = fake_discord.registered_commands(fake_discord.guild.id)
    assert OURS.issubset(c["name"] for c in registered)


async def test_bot_py_killed_and_restarted_serves_again(fake_discord: FakeDiscord) -> None:
    alice = fake_discord.member("alice")
    async with bot_process(fake_discord) as first:
        await (await alice.slash("help")).reply()
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    async with bot_process(fake_discord):
        reply = await (await alice.slash("help")).reply()
    assert [m for m in alice.seen() if m.embed is not None][-1] is reply
    assert len(fake_discord.gateway.identified) == 2


@pytest.mark.postgres
async def test_bot_py_keeps_credits_in_postgresql_when_database_url_is_set(
    fake_discord: FakeDiscord, pg_url: str
) -> None:
    alice = fake_discord.member("alice")
    async with bot_process(fake_discord, env={"DATABASE_URL": pg_url}):
        reply = await (await alice.slash("credits balance")).reply()
    assert reply.ephemeral
    with psycopg.connect(pg_url) as conn:
        accounts = conn.execute("SELECT guild_id, user_id FROM accounts").fetchall()
    assert accounts == [(fake_discord.guild.id, alice.id)]


@pytest.mark.parametrize(
    ("token", "line"),
    [
        (
            "wrong-token",
            "paddock: Discord rejected DISCORD_TOKEN (401 Unauthorized); check the token",
        ),
        ("", "paddock: DISCORD_TOKEN is not set; copy the bot's token from the Developer "
             "Portal (your application > Bot > Reset Token) into the environment or .env"),
    ],
    ids=["rejected", "missing"],
)
async def test_bot_py_explains_a_bad_token_in_one_line(
    fake_discord: FakeDiscord, token: str, line: str
) -> None:
    async with bot_process(fake_discord, env={"DISCORD_TOKEN": token}, wait=False) as bot:
        code = await bot.process.wait()
    assert code == 1
    assert bot.output.splitlines()[-1] == line
    assert "Traceback" not in bot.output


def test_settings_read_the_environment() -> None:
    settings = Settings.from_env(
        {
            "DISCORD_TOKEN": " abc ",
            "DISCORD_API_BASE": "http://proxy.local/api/v10/",
            "DISCORD_GATEWAY_URL": "ws://gateway.local",
            "DEV_GUILD_ID": "42",
            "DISCORD_GUILD_READY_TIMEOUT": "0.1",
            "DATABASE_PATH": "/srv/paddock/paddock.db",
            "WAVESPEED_API_KEY": "ws-key",
            "HIAPI_API_KEY": "hi-key",
            "HH_PROVIDER": "hiapi",
        }
    )
    assert (settings.discord_token, settings.discord_api_base, settings.discord_gateway_url,
            settings.dev_guild_id, settings.guild_ready_timeout) == (
        "abc", "http://proxy.local/api/v10", "ws://gateway.local", 42, 0.1)
    assert settings.database_path == Path("/srv/paddock/paddock.db")
    assert settings.default_provider == "hiapi"
    assert settings.usable_providers == ["hiapi", "wavespeed"]

    bare = Settings.from_env({"DISCORD_TOKEN": "abc"})
    assert (bare.discord_api_base, bare.discord_gateway_url, bare.dev_guild_id) == (None,) * 3
    assert bare.database_path == Path("data/paddock.db")
    assert (bare.default_provider, bare.usable_providers) == ("demo", ["demo"])  # no keys
    first_keyed = Settings.from_env({"DISCORD_TOKEN": "abc", "PIXELDOJO_API_KEY": "k"})
    assert first_keyed.default_provider == "pixeldojo"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"DEV_GUILD_ID": "my-server"}, "DEV_GUILD_ID"),
        ({"HH_PROVIDER": "runway"}, "HH_PROVIDER must be one of"),
        ({"HH_PROVIDER": "joypix"}, "JOYPIX_API_KEY is not set"),
        ({"JOYPIX_BASE_URL": "openapi.joypix.ai"}, "JOYPIX_BASE_URL"),
        ({"HIAPI_PRICE_720P": "free"}, "HIAPI_PRICE_720P"),
    ],
)
def test_settings_refuse_a_bad_environment_with_what_to_set(env, words) -> None:
    with pytest.raises(SettingsError, match=words):
        Settings.from_env({"DISCORD_TOKEN": "abc", **env})


def test_route_discord_points_discord_py_at_proxies_only_when_set() -> None:
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        route_discord(Settings("abc"))
        assert discord.http.Route.BASE == "https://discord.com/api/v10"
        route_discord(Settings("abc", "http://127.0.0.1:9/api/v10", "ws://127.0.0.1:9/gateway"))
        assert discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:9/api/v10/users/@me"
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:9/gateway"
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
