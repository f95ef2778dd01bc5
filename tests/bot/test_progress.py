"""The public job message while a job runs: edited no more often than
``RunnerSettings.progress_every``, and the latest state always shows in the end.

Checked from what the fake Discord recorded: every edit of the job message (its
``versions``) with the time the fake received it. The bounds below follow from the rule
itself (edits the runner starts at least ``EVERY`` apart, each received after it starts,
all after the command was sent); none is a timing budget.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime

import pytest

from tests.bot.support import RESERVING, decided, give_credits
from tests.fakes.discord import Message

EVERY = 0.3  # seconds between two edits of one job's message

PHASES = ("Queued", "Sent to", "Rendering on", "Done:")


@pytest.fixture
def paddock_settings(paddock_settings):
    runner = dataclasses.replace(paddock_settings.runner, progress_every=EVERY)
    return dataclasses.replace(paddock_settings, runner=runner)


def edits(message: Message) -> list[tuple[float, str]]:
    """Each of the runner's edits of ``message`` (after "Reserving credits…" and the
    reservation's "Queued"), oldest first: when the fake received it, and the Status it
    showed. A version is the message as it was before an edit, so it carries the time of
    the edit before that one."""
    states = [*message.versions[2:], message.payload()]
    return [
        (datetime.fromisoformat(state["edited_timestamp"]).timestamp(), status(state))
        for state in states
    ]


def status(payload: dict) -> str:
    return payload["embeds"][0]["fields"][0]["value"]


def phase(text: str) -> int:
    return next(n for n, start in enumerate(PHASES) if text.startswith(start))


async def test_job_message_edits_are_throttled_and_end_on_the_result(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    # A provider word that changes on every poll: each poll is a new "rendering" update.
    emulator.steps = ["pending"] + ["processing", "running"] * 10_000
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)
    sent_at = fake_discord.clock.now()

    job_message = await decided(await alice.slash("video text", prompt="a horse"))
    await emulator.wait_for_requests("status", 30)
    [task_id] = emulator.tasks
    emulator.finish(task_id)
    await fake_discord.wait_for(lambda: status(job_message.payload()).startswith("Done:"))
    await paddock.runner.wait_idle()

    *progress, (_, final) = edits(job_message)
    assert final.startswith(f"Done: https://discord.com/channels/{fake_discord.guild.id}/")
    # the answer to /video, then the reservation's edit
    assert status(job_message.versions[0]) == RESERVING
    assert status(job_message.versions[1]).startswith("Queued")
    shown = [text for _, text in progress]
    assert shown[0] == "Sent to JoyPix, waiting for it to start"
    assert all(text.startswith("Rendering on JoyPix, started <t:") for text in shown[1:])
    assert [phase(s) for s in shown] == sorted(phase(s) for s in shown)  # never backwards
    # The k-th progress edit started at least (k-1) x EVERY after the first, which started
    # after the command was sent, and the fake received it after it started.
    for k, (received, _) in enumerate(progress, start=1):
        assert k <= math.ceil((received - sent_at) / EVERY) + 1, (k, received - sent_at)
    updates = len(emulator.polls()) - 1  # every poll after the first changed the word
    assert len(progress) < updates  # so most updates were folded into later edits


async def test_a_state_that_arrives_between_edits_still_shows(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    # One change only: "processing" arrives just after the "Sent" edit, inside the window,
    # and no later update follows it (the provider's word stays the same).
    emulator.steps = ["pending", "processing"]
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)

    job_message = await decided(await alice.slash("video text", prompt="a horse"))
    await fake_discord.wait_for(
        lambda: status(job_message.payload()).startswith("Rendering on JoyPix")
    )
    await emulator.wait_for_requests("status", 5)  # polled on, with nothing new to show

    assert [text for _, text in edits(job_message)] == [
        "Sent to JoyPix, waiting for it to start",
        status(job_message.payload()),
    ]
    [task_id] = emulator.tasks
    emulator.finish(task_id)
    await fake_discord.wait_for(lambda: status(job_message.payload()).startswith("Done:"))
    assert len(job_message.versions) == 4  # Reserving → Queued → Sent → Rendering → Done

