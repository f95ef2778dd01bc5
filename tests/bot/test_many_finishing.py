"""Many videos finishing at once: each is posted as soon as it is fetched, whatever the
job cards' edits are doing. Discord serves one channel's message edits one at a time (and
discord.py sends them so), so a card edit Discord is slow to answer delays every other
card in that channel; it must not delay the videos themselves."""

from __future__ import annotations

import dataclasses

import pytest

from cogs._delivery import DELIVERIES_AT_ONCE
from tests.bot.support import available, decided, give_credits
from tests.bot.test_progress_after_result import EDIT, shows
from tests.bot.test_video import finished_post

JOBS = DELIVERIES_AT_ONCE + 1  # one more than the videos fetched and posted at a time
JOYPIX_720P_5S = 70


@pytest.fixture
def paddock_settings(paddock_settings):
    runner = dataclasses.replace(paddock_settings.runner, provider_slots=JOBS)
    return dataclasses.replace(paddock_settings, runner=runner)


def status_of(card) -> str:
    return {f.name: f.value for f in card.embed.fields}.get("Status") or ""


async def test_a_job_card_discord_is_slow_to_edit_holds_back_no_finished_video(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    emulator.steps = ["pending"] + ["processing"] * 100000  # rendering until finished
    members = [fake_discord.member(f"member{n}") for n in range(JOBS)]
    cards = []
    for n, member in enumerate(members):
        await give_credits(paddock, member, 100)
        cards.append(await decided(await member.slash("video text", prompt=f"horse {n}",
                                                      duration=5)))
    await fake_discord.wait_for(
        lambda: all(status_of(card).startswith("Rendering") for card in cards))
    # Discord keeps the first "Done" edit of a job card waiting.
    slow_card = fake_discord.hold(EDIT, lambda call: shows(call, "Done:"))

    for task_id in list(emulator.tasks):
        emulator.finish(task_id)

    try:
        posts = [await finished_post(fake_discord, member) for member in members]
        assert slow_card.call is not None  # every video is out while that card waits
        assert all(len(post.attachments) == 1 for post in posts)
        assert sum(status_of(card).startswith("Done:") for card in cards) < JOBS
    finally:
        slow_card.release()
    await fake_discord.wait_for(
        lambda: all(status_of(card).startswith("Done:") for card in cards))
    await paddock.runner.wait_idle()
    for member in members:
        assert await available(paddock, member) == 100 - JOYPIX_720P_5S
