"""The free demo provider as a server owner meets it: no provider key at all, every command.

The bot is built from the environment (``Settings.from_env``) with no key, so the demo
is on because nothing else is; renders are made tiny with DEMO_RENDER_SECONDS.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from bot import Settings, SettingsError
from hh_api import demo_video
from tests.bot.conftest import FAST_RUNNER
from tests.bot.support import available, decided, give_credits, holds
from tests.bot.test_restarts import grant
from tests.bot.test_video import finished_post
from tests.fakes.discord import Upload, bot_process

NO_KEYS = {f"{name}_API_KEY": "" for name in ("JOYPIX", "WAVESPEED", "PIXELDOJO", "HIAPI")}


@pytest.fixture
def paddock_settings(fake_discord, tmp_path) -> Settings:
    settings = Settings.from_env({
        **fake_discord.env(guild_ready_timeout=0.01),
        "DATABASE_PATH": str(tmp_path / "paddock.db"),
        "DEMO_RENDER_SECONDS": "0.1",
    })
    return dataclasses.replace(settings, runner=FAST_RUNNER)


async def test_with_no_key_a_text_video_is_the_bundled_clip_and_is_charged(
    fake_discord, paddock
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)

    reply = await decided(await alice.slash("video text", prompt="a horse gallops on a beach"))
    assert not reply.ephemeral
    fields = {f.name: f.value for f in reply.embed.fields}
    assert fields["Cost"] == "70 credits (130 left)"  # the real table: 14 credits/s x 5 s

    post = await finished_post(fake_discord, alice)
    [video] = post.attachments
    assert video.filename.endswith(".mp4") and video.data == demo_video()
    shown = {f.name: f.value for f in post.embed.fields}
    assert shown["Provider"] == "Demo (free) · `paddock-demo-t2v`"
    assert shown["Credits charged"] == "70"
    assert await available(paddock, alice) == 130
    assert await holds(paddock) == []
    report = await paddock.services.ledger.check()
    assert report.ok, report.problems


async def test_a_fail_prompt_posts_the_reason_and_returns_the_credits(
    fake_discord, paddock
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)

    await decided(await alice.slash("video text", prompt="show me a failure #fail"))
    post = await finished_post(fake_discord, alice)

    assert post.embed.title == "Video failed"
    shown = {f.name: f.value for f in post.embed.fields}
    assert "the demo provider was asked to fail: the prompt contains #fail" in (
        shown["What happened"])
    assert shown["Credits"] == "70 credits returned to you"
    assert post.attachments == []
    assert await available(paddock, alice) == 100
    assert await holds(paddock) == []


async def test_an_image_video_runs_and_pictures_are_checked_as_on_joypix(
    fake_discord, paddock
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 300)

    small = await decided(await alice.slash("video image", prompt="x",
                                            image=Upload.image("tiny.png", 200, 200)))
    assert small.ephemeral and "shortest side must be at least 300 px" in small.content

    await decided(await alice.slash("video image", prompt="the horse turns its head",
                                    image=Upload.image("horse.png", 640, 480),
                                    resolution="1080p"))
    post = await finished_post(fake_discord, alice)
    assert [a.data for a in post.attachments] == [demo_video()]
    assert {f.name: f.value for f in post.embed.fields}["Credits charged"] == "120"
    assert await available(paddock, alice) == 180


async def test_members_see_the_demo_as_the_provider_and_in_help(fake_discord, paddock) -> None:
    alice = fake_discord.member("alice")
    choices = await alice.autocomplete("video text", "provider", "")
    assert choices == [{"name": "Demo (free) (default)", "value": "demo"}]

    reply = await (await alice.slash("help")).reply()
    demo = {f.name: f.value for f in reply.embed.fields}["Demo provider"]
    assert "14 credits/s at 720p, 24 at 1080p" in demo and "#fail" in demo


async def test_bot_py_with_no_key_says_it_uses_the_demo_and_delivers(
    fake_discord, tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    env = {**NO_KEYS, "HH_PROVIDER": "", "DATABASE_PATH": str(database),
           "DEMO_RENDER_SECONDS": "0.05", "PADDOCK_POLL_SECONDS": "0.02"}
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 100)

    async with bot_process(fake_discord, env=env) as bot:
        await decided(await alice.slash("video text", prompt="a lighthouse"))
        post = await finished_post(fake_discord, alice)
        assert [a.data for a in post.attachments] == [demo_video()]
    assert "no provider key is set, so videos come from the free demo provider" in bot.output
    assert "demo provider listening on http://127.0.0.1:" in bot.output


# -- which provider is the default ---------------------------------------------------------


def test_no_key_turns_the_demo_on_and_says_so(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="paddock"):
        settings = Settings.from_env({"DISCORD_TOKEN": "t"})
    assert (settings.default_provider, settings.usable_providers) == ("demo", ["demo"])
    assert [r.getMessage() for r in caplog.records if "demo" in r.getMessage()] == [
        "no provider key is set, so videos come from the free demo provider "
        "(a sample clip; credits are charged at real prices)"]


def test_hh_provider_demo_makes_it_the_default_beside_the_keyed_providers(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="paddock"):
        settings = Settings.from_env({"DISCORD_TOKEN": "t", "HH_PROVIDER": "Demo",
                                      "HIAPI_API_KEY": "k", "DEMO_FAIL_RATE": "0.1"})
    assert settings.default_provider == "demo"
    assert settings.usable_providers == ["demo", "hiapi"]
    assert settings.demo.fail_rate == 0.1
    assert caplog.records == []  # chosen, not fallen back to


def test_with_a_key_the_demo_is_not_offered() -> None:
    settings = Settings.from_env({"DISCORD_TOKEN": "t", "WAVESPEED_API_KEY": "k"})
    assert (settings.default_provider, settings.usable_providers) == ("wavespeed", ["wavespeed"])
    assert "demo" not in settings.providers


@pytest.mark.parametrize(("env", "words"), [
    ({"HH_PROVIDER": "runway"}, "HH_PROVIDER must be one of joypix, wavespeed, pixeldojo, "
                                "hiapi, demo, auto, not 'runway'"),
    ({"DEMO_RENDER_SECONDS": "fast"}, "DEMO_RENDER_SECONDS must be a number of seconds"),
    ({"DEMO_FAIL_RATE": "2"}, "DEMO_FAIL_RATE must be a share between 0 and 1, such as 0.2, "
                              "not '2'"),
])
def test_bad_demo_settings_are_refused_with_what_to_set(env, words) -> None:
    with pytest.raises(SettingsError, match=words):
        Settings.from_env({"DISCORD_TOKEN": "t", **env})


async def test_a_video_finished_while_the_bot_was_down_is_posted_from_the_new_backend(
    fake_discord, paddock_settings
) -> None:
    """The demo backend gets a new port at each start, so a finished job's stored link is
    dead after a restart; the runner asks for the current one before posting."""
    from bot import Paddock
    from hh_api import Mode, PollPolicy, VideoRequest
    from paddock.jobs import JobState
    from paddock.services import Services
    from tests.fakes.discord import running_bot

    settings = paddock_settings
    alice = fake_discord.member("alice")
    guild = fake_discord.guild.id
    await grant(settings.database_path, guild, alice.user.id, 200)
    opened = dict(prices=settings.prices, demo=settings.demo)
    async with Services.open(settings.database_path, settings.providers, **opened) as services:
        request = services.hh.validate("demo", VideoRequest("a horse", Mode.TEXT))
        job = (await services.jobs.accept(
            guild_id=guild, user_id=alice.user.id, request=request.to_dict(),
            estimated_credits=70, channel_id=fake_discord.channel("general").id,
            role_ids=(), provider="demo",
        )).job
        await services.jobs.mark_submitting(job.id)
        task = await services.hh.submit("demo", request, idempotency_key=job.id)
        await services.jobs.mark_submitted(job.id, provider_task_id=task.task_id)
        await services.jobs.mark_running(job.id)
        done = await services.hh.wait("demo", task.task_id, poll=PollPolicy(initial=0.05))
        await services.jobs.mark_succeeded(job.id, result_url=done.video_url, charged=70)
    # killed here, before posting: the backend that served that link is gone

    async with (
        Services.open(settings.database_path, settings.providers, **opened) as services,
        running_bot(fake_discord, Paddock(settings, services)) as bot,
    ):
        post = await finished_post(fake_discord, alice)
        assert [a.data for a in post.attachments] == [demo_video()]
        await bot.runner.wait_idle()
        stored = await services.jobs.get(job.id)
    assert stored.state is JobState.DELIVERED and stored.delivery_error is None
    assert stored.result_url != done.video_url
