"""A burst of commands with free slots: its jobs go to the provider a few at a time, so
that the bot's event loop is not taken by a hundred jobs taking each step together while
the next burst's members wait for their first answer (bench/inflight.py at 4,000 jobs)."""

from __future__ import annotations

import dataclasses

import pytest

from paddock.runner import SENDS_AT_ONCE
from tests.bot.conftest import FAST_RUNNER
from tests.bot.support import decided, give_credits

BURST = SENDS_AT_ONCE + 8  # more than hh_api's 20 connections to one provider, too


@pytest.fixture
def paddock_settings(paddock_settings):
    return dataclasses.replace(
        paddock_settings, runner=dataclasses.replace(FAST_RUNNER, provider_slots=BURST))


async def test_a_burst_reaches_the_provider_at_most_sends_at_once_at_a_time(
    fake_discord, paddock, providers
) -> None:
    joypix = providers["joypix"]
    joypix.steps = ["processing"] * 100_000  # every job renders until the test ends
    joypix.latency = 0.05  # each answer takes a while, so sends that go together overlap
    members = [fake_discord.member(f"member{n}") for n in range(BURST)]
    for member in members:
        await give_credits(paddock, member, 70)

    # all at once, as a burst arrives: nobody waits for an answer before the next asks
    burst = [await member.slash("video text", prompt=f"take {n}")
             for n, member in enumerate(members)]

    cards = [await decided(asked) for asked in burst]
    await joypix.wait_for_requests("submit", BURST)
    for card in cards:
        await fake_discord.wait_for(lambda card=card: "Rendering on JoyPix" in card.text)
    assert joypix.most_at_once["submit"] <= SENDS_AT_ONCE
    assert sorted(s.json["prompt"] for s in joypix.submits()) == sorted(
        f"take {n}" for n in range(BURST))
