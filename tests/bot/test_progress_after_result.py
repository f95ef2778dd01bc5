"""No progress edit of the job message lands after the result's: a state the runner was
holding back (edits are throttled) is dropped once the job has its result."""

from __future__ import annotations

import dataclasses

import pytest

from tests.bot.support import decided, give_credits
from tests.bot.test_progress import edits, phase, status
from tests.fakes.discord import RecordedCall

EVERY = 2.0  # long enough that the held-back state is still waiting when the job ends
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"


@pytest.fixture
def paddock_settings(paddock_settings):
    runner = dataclasses.replace(paddock_settings.runner, progress_every=EVERY)
    return dataclasses.replace(paddock_settings, runner=runner)


def shows(call: RecordedCall, start: str) -> bool:
    embeds = (call.json or {}).get("embeds") or [{}]
    fields = embeds[0].get("fields") or [{}]
    return str(fields[0].get("value", "")).startswith(start)


async def test_a_state_held_back_by_the_throttle_never_lands_after_the_result(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    # "Sent" shows at once; "processing" comes right after, inside the throttle's window,
    # so the runner holds "Rendering" back to show it EVERY seconds after "Sent".
    emulator.steps = ["pending", "processing"]
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)
    # Discord is slow to answer the result's edit, so the held-back state's time comes
    # while the job is still being delivered.
    slow_result = fake_discord.hold(EDIT, lambda call: shows(call, "Done:"))

    job_message = await decided(await alice.slash("video text", prompt="a horse"))
    await fake_discord.wait_for(lambda: status(job_message.payload()).startswith("Sent to"))
    await emulator.wait_for_requests("status", 2)  # "processing" seen: Rendering held back
    [task_id] = emulator.tasks
    emulator.finish(task_id)
    await fake_discord.wait_for(lambda: slow_result.call is not None)
    # The held-back state's time passes (then the runner either shows it or drops it).
    await fake_discord.wait_for(
        lambda: all(t.timer is None for t in paddock.runner._throttles.values()),
        timeout=EVERY + 30,
    )
    slow_result.release()
    await paddock.runner.wait_idle()
    await fake_discord.wait_for(
        lambda: all(call.status is not None for call in fake_discord.calls_to(EDIT)))

    shown = [text for _, text in edits(job_message)]
    assert shown[-1].startswith("Done:"), shown
    assert [phase(text) for text in shown] == sorted(phase(text) for text in shown)
