"""Fixtures for hh_api tests: provider emulators and clients pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hh_api import HappyHorse, PollPolicy, ProviderConfig, RetryPolicy, Timeouts
from tests.fakes.providers import ProviderEmulator

# Retries and polls fast enough for tests; the rules are the same as in production.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, max_retry_after=0.05)
FAST_POLL = PollPolicy(initial=0.005, factor=1.5, maximum=0.02)
SHORT_TIMEOUTS = Timeouts(connect=1.0, read=0.5, total=1.0, download_total=2.0)


class RecordingSleep:
    """A sleep that records what it was asked to wait, and waits only a moment."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.calls.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def start_emulator() -> AsyncIterator[Callable[..., object]]:
    started: list[ProviderEmulator] = []

    async def start(provider: str, api_key: str = "test-key") -> ProviderEmulator:
        emulator = await ProviderEmulator(provider, api_key=api_key).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        await emulator.stop()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., HappyHorse]]:
    clients: list[HappyHorse] = []

    def make(*emulators: ProviderEmulator, **options: object) -> HappyHorse:
        providers = {
            emu.provider: ProviderConfig(emu.provider, api_key=emu.api_key, base_url=emu.base_url)
            for emu in emulators
        }
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("poll", FAST_POLL)
        options.setdefault("timeouts", SHORT_TIMEOUTS)
        client = HappyHorse(providers, **options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
