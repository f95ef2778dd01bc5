"""/video's autocomplete as a member meets it: the aspect ratios of the provider chosen in
the same command (or of the default one), and only the providers the bot has a key for.

The expected ratio sets are written from the providers' pages (``shared/seeds``), not from
hh_api's tables, so a wrong table shows up here.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.fakes.discord import Upload

# WaveSpeedAI's parameter table (seed 002) and PixelDojo's "Supported Aspect Ratios"
# (seed 003), both for HappyHorse: the same five, in the pages' order.
HAPPYHORSE_RATIOS = ["16:9", "9:16", "1:1", "4:3", "3:4"]
DOCUMENTED = {
    "wavespeed": HAPPYHORSE_RATIOS,
    "pixeldojo": HAPPYHORSE_RATIOS,
    # JoyPix's page (seed 000) names aspect_ratio and its default 16:9 but lists no set; its
    # model, happyhorse-1.0-r2v, is the one PixelDojo documents with the five above.
    "joypix": HAPPYHORSE_RATIOS,
    # HiAPI's enum (seed 004): "16:9 9:16 3:4 4:3 4:5 5:4 1:1 9:21 21:9".
    "hiapi": ["16:9", "9:16", "3:4", "4:3", "4:5", "5:4", "1:1", "9:21", "21:9"],
}
REFERENCE = {"prompt": "[Image 1] on a beach", "image1": Upload.image("hero.png", 800, 800)}


@pytest.fixture
def paddock_settings(paddock_settings, request):
    """Every provider with a key and JoyPix the default; parametrized indirectly with
    ``{"keyless": (...), "default": ...}`` to start the bot without those keys or with
    another default provider."""
    change = getattr(request, "param", {})
    keyless = change.get("keyless", ())
    providers = {
        name: dataclasses.replace(config, api_key=None) if name in keyless else config
        for name, config in paddock_settings.providers.items()
    }
    default = change.get("default", paddock_settings.default_provider)
    return dataclasses.replace(paddock_settings, providers=providers, default_provider=default)


def offered(choices: list[dict]) -> list[str]:
    assert all(choice["name"] == choice["value"] for choice in choices)
    return [choice["value"] for choice in choices]


@pytest.mark.parametrize("provider", ["joypix", "wavespeed", "hiapi"])
async def test_text_offers_the_chosen_providers_aspect_ratios(
    fake_discord, paddock, provider
) -> None:
    alice = fake_discord.member("alice")
    choices = await alice.autocomplete("video text", "aspect_ratio", "", provider=provider,
                                       prompt="a horse")  # fmt: skip
    assert offered(choices) == DOCUMENTED[provider]


@pytest.mark.parametrize("provider", ["joypix", "wavespeed", "pixeldojo", "hiapi"])
async def test_reference_offers_the_chosen_providers_aspect_ratios(
    fake_discord, paddock, provider
) -> None:
    alice = fake_discord.member("alice")
    choices = await alice.autocomplete("video reference", "aspect_ratio", "",
                                       provider=provider, **REFERENCE)  # fmt: skip
    assert offered(choices) == DOCUMENTED[provider]


@pytest.mark.parametrize(
    ("paddock_settings", "default"),
    [({}, "joypix"), ({"default": "hiapi"}, "hiapi")],
    indirect=["paddock_settings"],
)
async def test_without_a_provider_the_default_providers_ratios_are_offered(
    fake_discord, paddock, default
) -> None:
    alice = fake_discord.member("alice")
    assert paddock.settings.default_provider == default

    text = await alice.autocomplete("video text", "aspect_ratio", "", prompt="a horse")
    reference = await alice.autocomplete("video reference", "aspect_ratio", "", **REFERENCE)

    assert offered(text) == offered(reference) == DOCUMENTED[default]


async def test_aspect_ratios_narrow_as_the_member_types(fake_discord, paddock) -> None:
    alice = fake_discord.member("alice")
    typed = await alice.autocomplete("video text", "aspect_ratio", "9:", provider="hiapi")
    assert offered(typed) == ["9:16", "9:21"]
    assert await alice.autocomplete("video text", "aspect_ratio", "7", provider="hiapi") == []


async def test_no_ratios_for_a_provider_without_the_mode_or_unknown(fake_discord, paddock) -> None:
    alice = fake_discord.member("alice")
    # PixelDojo documents reference-to-video only; "runway" is no provider at all.
    for provider in ("pixeldojo", "runway"):
        assert await alice.autocomplete("video text", "aspect_ratio", "", provider=provider) == []


@pytest.mark.parametrize("paddock_settings", [{"keyless": ("wavespeed",)}], indirect=True)
async def test_provider_offers_only_providers_with_a_key_that_offer_the_mode(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")

    reference = await alice.autocomplete("video reference", "provider", "", **REFERENCE)
    text = await alice.autocomplete("video text", "provider", "", prompt="a horse")
    image = await alice.autocomplete("video image", "provider", "", prompt="a horse")

    # WaveSpeedAI has no key here; auto comes first where two or more can make the video,
    # then the default, which says so.
    assert [(c["name"], c["value"]) for c in reference] == [
        ("Auto: the cheapest provider working now", "auto"),
        ("JoyPix (default)", "joypix"), ("PixelDojo", "pixeldojo"), ("HiAPI", "hiapi"),
    ]  # fmt: skip
    assert [c["value"] for c in text] == ["auto", "joypix", "hiapi"]  # PixelDojo: no text
    assert [c["value"] for c in image] == ["joypix"]  # image mode: JoyPix and WaveSpeedAI only
    typed = await alice.autocomplete("video reference", "provider", "Hi", **REFERENCE)
    assert [c["value"] for c in typed] == ["hiapi"]
    assert await alice.autocomplete("video text", "provider", "wave") == []
    assert all(emulator.requests == [] for emulator in providers.values())
