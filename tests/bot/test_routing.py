"""provider: auto, as members see it: the cheapest working provider, safe failover, refunds.

Every provider emulator has a key here and ``HH_PROVIDER=auto``. At 1080p WaveSpeed's 18.9
credits/s (95 credits for 5 s) beats the 24 credits/s (120) of JoyPix and of the two
providers without a published price, which are charged the highest known rate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from decimal import Decimal

import pytest

from hh_api import PriceTable
from tests.bot.support import available, decided, give_credits, holds
from tests.bot.test_restarts import bot_env, grant, ledger_figures
from tests.bot.test_video import finished_post
from tests.fakes.discord import CommandHidden, Upload, bot_process
from tests.test_check import TOKEN, run_check
from tests.test_credits import MANAGE_GUILD


@pytest.fixture
def paddock_settings(paddock_settings, request):
    """HH_PROVIDER=auto; parametrized indirectly with ``{"slots": n}`` for fewer slots and
    ``{"prices": {(provider, resolution): rate}}`` for other prices."""
    change = getattr(request, "param", {})
    slots = change.get("slots", paddock_settings.runner.provider_slots)
    runner = dataclasses.replace(paddock_settings.runner, provider_slots=slots)
    prices = PriceTable(change.get("prices", {}))
    return dataclasses.replace(paddock_settings, default_provider="auto", runner=runner,
                               prices=prices)


def fields(embed) -> dict[str, str]:
    return {f.name: f.value for f in embed.fields}


def tasks_created(providers) -> dict[str, int]:
    return {name: len(emulator.tasks) for name, emulator in providers.items()}


async def test_a_1080p_job_goes_to_the_cheapest_provider_and_the_difference_comes_back(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)

    reply = await decided(await alice.slash("video text", prompt="a kite over dunes",
                                            resolution="1080p", duration=5))

    assert not reply.ephemeral
    assert fields(reply.embed)["Cost"] == (
        "95 credits at WaveSpeedAI, chosen automatically (120 held; the rest comes back)"
        " (80 left)")
    post = await finished_post(fake_discord, alice)
    shown = fields(post.embed)
    assert shown["Provider"].startswith("WaveSpeedAI")
    assert shown["Provider"].endswith("chosen automatically")
    assert shown["Credits charged"].startswith("95 (25 of the 120 held came back")
    assert tasks_created(providers) == {"joypix": 0, "wavespeed": 1, "pixeldojo": 0, "hiapi": 0}
    assert providers["wavespeed"].submits()[0].json["resolution"] == "1080p"
    assert await available(paddock, alice) == 105
    [settled] = await holds(paddock, "settled")
    assert (settled.amount, settled.charged) == (120, 95)
    report = await paddock.services.ledger.check()
    assert report.ok, report.problems


async def test_a_503_moves_the_job_on_with_exactly_one_task_and_the_next_job_skips_the_cooling_one(
    fake_discord, paddock, providers
) -> None:
    wavespeed = providers["wavespeed"]
    wavespeed.fault(503, on="submit", times=4)  # every try of the first submit
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 300)

    await decided(await alice.slash("video text", prompt="a storm at sea", resolution="1080p"))
    post = await finished_post(fake_discord, alice)

    assert fields(post.embed)["Provider"].startswith("JoyPix")
    assert fields(post.embed)["Credits charged"] == "120"
    assert len(wavespeed.submits()) == 4 and wavespeed.tasks == {}
    assert tasks_created(providers) == {"joypix": 1, "wavespeed": 0, "pixeldojo": 0, "hiapi": 0}
    assert await available(paddock, alice) == 180
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.user.id)
    assert [(a.provider, a.outcome) for a in await paddock.services.jobs.attempts(job.id)] == [
        ("wavespeed", "sent"), ("wavespeed", "refused"),
        ("joypix", "sent"), ("joypix", "accepted"), ("joypix", "rendered"),
    ]

    # WaveSpeed is cooling down now: the next job never goes near it.
    await decided(await alice.slash("video text", prompt="a calm sea", resolution="1080p"))
    await fake_discord.wait_for(lambda: len(providers["joypix"].tasks) == 2)
    await paddock.runner.wait_idle()
    assert len(wavespeed.submits()) == 4
    assert await available(paddock, alice) == 60
    text = await paddock.metrics.render()
    assert b'paddock_provider_failovers_total{provider="wavespeed"} 1.0' in text
    assert b'paddock_provider_cooldowns_total{provider="wavespeed"} 1.0' in text


@pytest.mark.parametrize("paddock_settings", [{"slots": 1}], indirect=True)
async def test_a_job_whose_turn_comes_while_its_provider_cools_goes_elsewhere_unsent(
    fake_discord, paddock, providers
) -> None:
    wavespeed = providers["wavespeed"]
    wavespeed.steps = ["created"] + ["processing"] * 100000  # the first job holds the slot
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 400)
    for prompt in ("first", "second", "third"):  # all three wait for WaveSpeedAI's one slot
        await decided(await alice.slash("video text", prompt=prompt, resolution="1080p"))
    await wavespeed.wait_for_requests("status", 1)
    wavespeed.fault(503, on="submit", times=4)
    [holder] = wavespeed.tasks
    wavespeed.finish(holder)

    await fake_discord.wait_for(lambda: len(providers["joypix"].tasks) == 2)
    await paddock.runner.wait_idle()
    assert len(wavespeed.submits()) == 1 + 4  # the first job, then the second's four tries
    assert list(wavespeed.tasks) == [holder]
    jobs = sorted(await paddock.services.jobs.list_for_member(fake_discord.guild.id,
                                                             alice.user.id),
                  key=lambda job: job.request["prompt"])
    attempts = {job.request["prompt"]: [(a.provider, a.outcome) for a in
                                        await paddock.services.jobs.attempts(job.id)]
                for job in jobs}
    assert attempts["second"][:2] == [("wavespeed", "sent"), ("wavespeed", "refused")]
    assert attempts["third"][:2] == [("wavespeed", "skipped"), ("joypix", "sent")]
    assert await available(paddock, alice) == 400 - 95 - 120 - 120


@pytest.mark.parametrize("paddock_settings", [{"prices": {("hiapi", "1080p"): Decimal(10)}}],
                         indirect=True)
async def test_a_keyed_submit_whose_outcome_is_unknown_never_moves_and_finds_its_one_task(
    fake_discord, paddock, providers
) -> None:
    hiapi = providers["hiapi"]  # the cheapest now: 50 credits for 5 s at 1080p
    hiapi.fault(500, on="submit", after_accept=True)  # the task exists; its answer is lost
    hiapi.fault(503, on="submit", times=7)  # the rest of that send, and all of the next
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)

    await decided(await alice.slash("video text", prompt="a lantern", resolution="1080p"))
    post = await finished_post(fake_discord, alice)

    assert fields(post.embed)["Provider"].startswith("HiAPI")
    assert tasks_created(providers) == {"joypix": 0, "wavespeed": 0, "pixeldojo": 0, "hiapi": 1}
    keys = {s.headers["Idempotency-Key"] for s in hiapi.submits()}
    assert len(hiapi.submits()) == 9 and len(keys) == 1
    assert await available(paddock, alice) == 150


async def test_a_429_moves_the_job_at_once_and_rests_the_provider_as_long_as_it_asks(
    fake_discord, paddock, providers
) -> None:
    wavespeed = providers["wavespeed"]
    wavespeed.fault(429, on="submit", retry_after="600")
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 300)

    await decided(await alice.slash("video text", prompt="a heron", resolution="1080p"))
    post = await finished_post(fake_discord, alice)

    assert fields(post.embed)["Provider"].startswith("JoyPix")
    assert len(wavespeed.submits()) == 1  # not retried there: another provider could take it
    assert paddock.router.health.cooling_for("wavespeed") > 500  # Retry-After: 600


async def test_an_explicit_choice_is_never_moved_and_is_refunded_when_it_fails(
    fake_discord, paddock, providers
) -> None:
    providers["wavespeed"].fault(503, on="submit", times=4)
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)

    await decided(await alice.slash("video text", prompt="a harbour", resolution="1080p",
                                    provider="wavespeed"))
    post = await finished_post(fake_discord, alice)

    assert post.embed.title == "Video failed"
    assert fields(post.embed)["Credits"] == "95 credits returned to you"
    assert sum(tasks_created(providers).values()) == 0
    assert [len(e.submits()) for e in providers.values()] == [0, 4, 0, 0]
    assert await available(paddock, alice) == 200
    assert await holds(paddock) == []


async def test_a_render_that_fails_at_the_provider_moves_once_but_not_for_the_members_fault(
    fake_discord, paddock, providers
) -> None:
    wavespeed = providers["wavespeed"]
    wavespeed.fail_with = "internal error: GPU worker lost"
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 300)

    await decided(await alice.slash("video text", prompt="a waterfall", resolution="1080p"))
    post = await finished_post(fake_discord, alice)

    assert fields(post.embed)["Provider"].startswith("JoyPix")
    assert [t.finished or "failed" for t in wavespeed.tasks.values()] == ["failed"]
    assert tasks_created(providers) == {"joypix": 1, "wavespeed": 1, "pixeldojo": 0, "hiapi": 0}
    assert await available(paddock, alice) == 180

    # A render refused for its content is the member's: refunded, not sent elsewhere.
    wavespeed.fail_with = "content policy violation"
    bob = fake_discord.member("bob")
    await give_credits(paddock, bob, 300)
    await decided(await bob.slash("video text", prompt="something", resolution="1080p"))
    refused = await finished_post(fake_discord, bob)
    assert refused.embed.title == "Video failed"
    assert "content policy violation" in fields(refused.embed)["What happened"]
    assert tasks_created(providers) == {"joypix": 1, "wavespeed": 2, "pixeldojo": 0, "hiapi": 0}
    assert await available(paddock, bob) == 300


async def test_when_every_provider_rests_the_member_is_told_and_nothing_is_charged(
    fake_discord, paddock, providers
) -> None:
    for name in providers:
        paddock.router.health.submit_failed(name, retry_after=120)
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)

    reply = await decided(await alice.slash("video text", prompt="a fox"))

    assert reply.ephemeral
    assert "Every provider that can make this video is resting" in reply.content
    assert "try again in about 120 seconds" in reply.content
    assert await available(paddock, alice) == 200
    assert all(emulator.requests == [] for emulator in providers.values())


async def test_auto_keeps_to_providers_that_offer_every_option_given(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    # A seed rules out HiAPI, a negative prompt everyone but PixelDojo.
    await decided(await alice.slash("video reference", prompt="[Image 1] dances",
                                    image1=Upload.image("a.png"),
                                    negative_prompt="blur", seed=7))
    post = await finished_post(fake_discord, alice)
    assert fields(post.embed)["Provider"].startswith("PixelDojo")
    assert tasks_created(providers) == {"joypix": 0, "wavespeed": 0, "pixeldojo": 1, "hiapi": 0}


async def test_autocomplete_offers_auto_first_as_the_default_and_every_providers_ratios(
    fake_discord, paddock
) -> None:
    alice = fake_discord.member("alice")
    choices = await alice.autocomplete("video text", "provider", "", prompt="a horse")
    assert (choices[0]["name"], choices[0]["value"]) == (
        "Auto: the cheapest provider working now (default)", "auto")
    assert [c["value"] for c in choices[1:]] == ["joypix", "wavespeed", "hiapi"]
    ratios = await alice.autocomplete("video text", "aspect_ratio", "", prompt="a horse")
    # auto may pick any of them: HiAPI's own ratios (seed 004) come after the common five
    assert [c["value"] for c in ratios] == [
        "16:9", "9:16", "1:1", "4:3", "3:4", "4:5", "5:4", "9:21", "21:9"]


async def test_a_restart_in_the_middle_of_a_failover_neither_loses_nor_repeats_the_job(
    fake_discord, providers, tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    wavespeed, joypix = providers["wavespeed"], providers["joypix"]
    wavespeed.fault(503, on="submit", times=4)
    joypix.steps = ["pending"] + ["processing"] * 100000
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 200)
    env = {**bot_env(fake_discord, providers, database), "HH_PROVIDER": "auto"}
    for name in ("pixeldojo", "hiapi"):  # two providers: WaveSpeedAI, then JoyPix
        del env[f"{name.upper()}_API_KEY"]

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="a ferry", resolution="1080p"))
        await joypix.wait_for_requests("status", 2, timeout=15)  # moved, and rendering
        await first.stop(signal.SIGKILL)
    [task_id] = joypix.tasks
    joypix.finish(task_id)

    async with bot_process(fake_discord, env=env) as second:
        post = await finished_post(fake_discord, alice, timeout=15)
        assert "resumed 1 unfinished job" in second.output

    assert fields(post.embed)["Provider"].startswith("JoyPix")
    assert len(wavespeed.submits()) == 4 and wavespeed.tasks == {}  # not tried again
    assert len(joypix.submits()) == 1 and len(joypix.tasks) == 1
    posts = [m for m in fake_discord.channel("general").visible
             if m.pings(alice) and m.attachments]
    assert len(posts) == 1
    left, pending, settled, report = await ledger_figures(database, fake_discord.guild.id,
                                                          alice.user.id)
    assert (left, pending, [h.charged for h in settled]) == (80, [], [120])
    assert report.ok, report.problems


async def test_moderators_see_each_providers_state_prices_and_record(
    fake_discord, paddock, providers
) -> None:
    providers["wavespeed"].fault(503, on="submit", times=4)
    paddock.router.health.key_refused("hiapi", "hiapi refused the API key (HTTP 401)")
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 300)
    await decided(await alice.slash("video text", prompt="a mill", resolution="1080p"))
    await finished_post(fake_discord, alice)
    mod = fake_discord.member("mod", permissions=MANAGE_GUILD)

    answer = await (await mod.slash("quota providers")).reply()

    assert answer.ephemeral
    text = answer.embed.description
    joypix, wavespeed, pixeldojo, hiapi = text.split("\n\n")
    assert joypix.startswith("**JoyPix**: ok\n720p 14/s · 1080p 24/s credits · 100% of the "
                             "last 2 submits and renders ok · median render")
    assert wavespeed.startswith("**WaveSpeedAI**: cooling down until <t:")
    assert "720p 14/s · 1080p 18.9/s credits · 0% of the last 1" in wavespeed
    assert pixeldojo.startswith("**PixelDojo**: ok\n")
    assert hiapi.startswith("**HiAPI**: key refused: jobs skip it until HIAPI_API_KEY is "
                            "replaced")
    assert "Default: auto" in answer.embed.footer.text
    with pytest.raises(CommandHidden):
        await alice.slash("quota providers")


async def test_a_refused_key_moves_the_job_on_and_check_tells_the_owner_until_it_changes(
    fake_discord, paddock, paddock_settings, providers
) -> None:
    wavespeed = providers["wavespeed"]
    refused_key = wavespeed.api_key
    wavespeed.api_key = "rotated-at-the-provider"  # the bot's key is refused from now on
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 300)

    await decided(await alice.slash("video text", prompt="an owl", resolution="1080p"))
    post = await finished_post(fake_discord, alice)
    assert fields(post.embed)["Provider"].startswith("JoyPix")
    assert len(wavespeed.submits()) == 1  # a 401 is not retried
    await decided(await alice.slash("video text", prompt="an owl again", resolution="1080p"))
    await fake_discord.wait_for(lambda: len(providers["joypix"].tasks) == 2)
    assert len(wavespeed.submits()) == 1  # out of auto routing now

    env = {"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": str(paddock_settings.database_path),
           "HH_PROVIDER": "auto", "JOYPIX_API_KEY": "joypix-key",
           "WAVESPEED_API_KEY": refused_key}
    same = await asyncio.to_thread(run_check, env)
    assert same.code == 1
    [line] = [line for line in same.lines if line.startswith("FAIL  provider wavespeed:")]
    assert "wavespeed refused this key at " in line
    assert line.endswith("(wavespeed refused the API key (HTTP 401): invalid or missing API "
                         "key); replace WAVESPEED_API_KEY")
    assert same.has("ok    default provider: auto (HH_PROVIDER): the cheapest working one of "
                    "joypix, wavespeed")
    replaced = await asyncio.to_thread(run_check, {**env, "WAVESPEED_API_KEY": "a-new-key"})
    assert not any(line.startswith("FAIL") for line in replaced.lines), replaced.lines


async def test_a_re_roll_of_an_automatic_job_is_automatic_too(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 300)
    await decided(await alice.slash("video text", prompt="a lark", resolution="1080p"))
    post = await finished_post(fake_discord, alice)
    providers["wavespeed"].fault(503, on="submit", times=4)

    reply = await (await alice.press(post, "Re-roll")).reply()

    assert "chosen automatically" in fields(reply.embed)["Cost"]
    await fake_discord.wait_for(lambda: len(providers["joypix"].tasks) == 1)
    await paddock.runner.wait_idle()
    jobs = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.user.id)
    assert [job.provider for job in jobs] == ["joypix", "wavespeed"]  # newest first
    assert all(job.routed for job in jobs)
