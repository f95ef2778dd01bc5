"""A long line at one provider: the first places see their place move, the rest wait
quietly (editing every message of a long line would run into Discord's rate limits)."""

from __future__ import annotations

import dataclasses

import pytest

from paddock.runner import SHOWN_PLACES
from tests.bot.conftest import FAST_RUNNER
from tests.bot.support import decided, give_credits


@pytest.fixture
def paddock_settings(paddock_settings):
    return dataclasses.replace(
        paddock_settings, runner=dataclasses.replace(FAST_RUNNER, provider_slots=1))


async def test_only_the_first_places_in_a_long_line_are_updated(
    fake_discord, paddock, providers
) -> None:
    joypix = providers["joypix"]
    joypix.steps = ["processing"] * 100_000  # every job renders until finished by hand
    alice = fake_discord.member("alice")
    lined_up = SHOWN_PLACES + 2
    await give_credits(paddock, alice, 70 * (lined_up + 1))
    messages = []
    for n in range(lined_up + 1):
        interaction = await alice.slash("video text", prompt=f"take {n}")
        messages.append(await decided(interaction))
    await joypix.wait_for_requests("submit", 1)
    last = messages[-1]
    await fake_discord.wait_for(lambda: "Queued (position 27)" in last.text)
    await fake_discord.wait_for(lambda: "Queued (position 26)" in messages[-2].text)

    for moves in (1, 2):  # the line moves up by one, twice
        joypix.finish(list(joypix.tasks)[-1])
        await joypix.wait_for_requests("submit", moves + 1)
        await fake_discord.wait_for(
            lambda m=moves: f"Queued (position {26 - m})" in messages[-2].text)
    # the last one was beyond the places shown after the first move (26th): never edited;
    # after the second move it is 25th and shows it (wait for that edit: the runner makes
    # it after the one to messages[-2] that the loop waited for)
    await fake_discord.wait_for(lambda: "Queued (position 25)" in last.text)
    # Reserving credits…, then its place once: never edited again until it moved up
    assert ["Queued (position 27)" in str(v) for v in last.versions] == [False, True]
