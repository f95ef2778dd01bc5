"""Extend is offered only where a provider with a key makes image-to-video."""

from __future__ import annotations

import dataclasses

import pytest

from tests.bot.support import decided, give_credits
from tests.fakes.discord import Upload


@pytest.fixture
def paddock_settings(paddock_settings):
    """PixelDojo alone: it makes reference videos, not image-to-video."""
    return dataclasses.replace(
        paddock_settings, default_provider="pixeldojo",
        providers={"pixeldojo": paddock_settings.providers["pixeldojo"]})


async def test_no_extend_button_without_an_image_mode_provider(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)
    await decided(await alice.slash("video reference", prompt="[Image 1] flies a kite",
                                    image1=Upload.image("hero.png", 800, 800)))

    post = await alice.wait_to_see(lambda m: m.pings(alice) and bool(m.attachments))

    assert [b.label for b in post.buttons] == ["Re-roll", "Remix", "Delete"]
