"""Follow-ups go to a provider with image mode: the video's own, else ``auto`` (the
router's cheapest provider working now)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.bot.support import available, decided, give_credits
from tests.bot.test_extend import CONTINUATION, FIRST, extend, play, video_of
from tests.fakes.discord import Upload


@pytest.fixture
def paddock_settings(paddock_settings):
    """Every provider keyed, PixelDojo (reference only) the default."""
    return dataclasses.replace(paddock_settings, default_provider="pixeldojo")


async def test_extend_goes_to_the_cheapest_image_provider_when_the_videos_has_none(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 1000)
    providers["pixeldojo"].video_bytes = FIRST
    await decided(await alice.slash("video reference", prompt="[Image 1] on a beach", duration=5,
                                    resolution="1080p",
                                    image1=Upload.image("hero.png", 800, 800)))
    post = await alice.wait_to_see(lambda m: m.pings(alice) and bool(m.attachments))
    before = await available(paddock, alice)
    for emulator in providers.values():
        emulator.video_bytes = CONTINUATION

    _, _, result = await extend(fake_discord, alice, post)

    # 1080p: WaveSpeedAI 18.9 credits/s, JoyPix 24: WaveSpeedAI makes it.
    assert providers["joypix"].submits() == []
    [submit] = providers["wavespeed"].submits()
    assert submit.json["image"].startswith(fake_discord.cdn_base)  # the posted frame
    shown = {f.name: f.value for f in result.embed.fields}
    assert shown["Provider"].startswith("WaveSpeedAI")
    # auto holds the dearest (JoyPix, 120) and charges the one that made it: ceil(18.9 x 5)
    assert shown["Credits charged"].startswith("95 (25 of the 120 held came back")
    assert await available(paddock, alice) == before - 95
    assert play(video_of(result)).frames == play(FIRST).frames + play(CONTINUATION).frames - 1


async def test_animate_goes_to_an_image_provider_when_the_default_has_no_image_mode(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    posted = await alice.say("my cat", files=[Upload.image("cat.png", 640, 480)])

    modal = await (await alice.use_app(posted, "Animate with HappyHorse")).opened_modal()
    reply = await (await alice.submit_modal(modal, {"Prompt": "the cat yawns"})).reply()

    assert not reply.ephemeral
    await fake_discord.wait_for(
        lambda: len(providers["joypix"].submits() + providers["wavespeed"].submits()) == 1)
    assert providers["pixeldojo"].submits() == [] and providers["hiapi"].submits() == []
