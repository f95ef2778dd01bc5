"""The whole bot in tests: provider emulators, and settings pointing the bot at them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from hh_api import PollPolicy, ProviderConfig
from paddock.runner import RunnerSettings
from tests.fakes.providers import WORDS, ProviderEmulator

FAST_RUNNER = RunnerSettings(
    provider_slots=8,
    progress_every=0.05,
    poll=PollPolicy(initial=0.01, factor=1.5, maximum=0.05),
    delivery_backoff=0.01,
    sweep_every=3600,
)


@pytest.fixture
async def providers() -> AsyncIterator[dict[str, ProviderEmulator]]:
    """All four provider emulators, each with its own key."""
    started: dict[str, ProviderEmulator] = {}
    try:
        for name in WORDS:
            emulator = ProviderEmulator(name, api_key=f"{name}-key")
            emulator.fetch_pictures = True  # picture links must be live, as for the real ones
            started[name] = await emulator.start()
        yield started
    finally:
        for emulator in started.values():
            await emulator.stop()


@pytest.fixture
def paddock_settings(paddock_settings, providers):
    """The fake Discord's settings plus every provider (JoyPix the default) and fast polls."""
    configs = {
        name: ProviderConfig(name, api_key=emulator.api_key, base_url=emulator.base_url)
        for name, emulator in providers.items()
    }
    return dataclasses.replace(
        paddock_settings, providers=configs, default_provider="joypix", runner=FAST_RUNNER
    )

