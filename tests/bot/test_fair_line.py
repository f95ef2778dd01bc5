"""The line in front of a provider is fair: a member who asks while another has ten jobs
waiting is next, one member has at most two jobs at a provider at once unless moderators
change it with /quota limits, and the line survives a restart in the same order."""

from __future__ import annotations

import dataclasses
import signal

import discord
import pytest

from paddock.jobs import JobState
from tests.bot.conftest import FAST_RUNNER
from tests.bot.support import decided, give_credits
from tests.bot.test_restarts import bot_env, grant
from tests.fakes.discord import bot_process


def prompts(emulator) -> list[str]:
    return [submit.json["prompt"] for submit in emulator.submits()]


async def test_bob_who_asks_once_goes_before_alices_ten(fake_discord, paddock, providers) -> None:
    assert paddock.runner.settings.provider_slots == 8
    joypix = providers["joypix"]
    joypix.steps = ["processing"] * 100_000  # every job renders until finished by hand
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, alice, 70 * 10)
    await give_credits(paddock, bob, 70)
    for n in range(10):
        await decided(await alice.slash("video text", prompt=f"alice {n}"))
    await joypix.wait_for_requests("submit", 2)  # her two at once, though 8 slots are free

    asked = await decided(await bob.slash("video text", prompt="bob"))

    await joypix.wait_for_requests("submit", 3)
    first_two, third = prompts(joypix)[:2], prompts(joypix)[2]  # the two go out together
    assert (sorted(first_two), third) == (["alice 0", "alice 1"], "bob")
    await fake_discord.wait_for(lambda: "Rendering on JoyPix" in asked.text)
    jobs = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.user.id)
    assert [job.state for job in jobs].count(JobState.ACCEPTED) == 8

    # one of alice's jobs finishes: the next in her own order takes her slot
    joypix.finish(next(iter(joypix.tasks)))
    await joypix.wait_for_requests("submit", 4)
    assert prompts(joypix)[3] == "alice 2"


class TestOneSlot:
    @pytest.fixture
    def paddock_settings(self, paddock_settings):
        return dataclasses.replace(
            paddock_settings, runner=dataclasses.replace(FAST_RUNNER, provider_slots=1))

    async def test_with_one_slot_bob_is_next_and_told_so(
        self, fake_discord, paddock, providers
    ) -> None:
        joypix = providers["joypix"]
        joypix.steps = ["processing"] * 100_000
        alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
        await give_credits(paddock, alice, 70 * 10)
        await give_credits(paddock, bob, 70)
        replies = [await decided(await alice.slash("video text", prompt=f"alice {n}"))
                   for n in range(10)]
        await joypix.wait_for_requests("submit", 1)
        await fake_discord.wait_for(lambda: "Queued (position 9)" in replies[-1].text)

        asked = await decided(await bob.slash("video text", prompt="bob"))

        assert "Queued (position 1)" in asked.text
        await fake_discord.wait_for(lambda: "Queued (position 10)" in replies[-1].text)
        joypix.finish(next(iter(joypix.tasks)))
        await joypix.wait_for_requests("submit", 2)
        assert prompts(joypix) == ["alice 0", "bob"]


async def test_moderators_change_a_members_jobs_at_once_with_quota_limits(
    fake_discord, paddock, providers
) -> None:
    joypix = providers["joypix"]
    joypix.steps = ["processing"] * 100_000
    alice = fake_discord.member("alice")
    mod = fake_discord.member("mod", permissions=discord.Permissions(manage_guild=True))
    await give_credits(paddock, alice, 70 * 5)
    for n in range(5):
        await decided(await alice.slash("video text", prompt=f"alice {n}"))
    await joypix.wait_for_requests("submit", 2)

    raised = await (await mod.slash("quota limits", member_slots=4)).reply()

    assert raised.ephemeral
    assert "jobs at the provider at once per member: 2 → 4" in raised.content
    await joypix.wait_for_requests("submit", 4)  # the new cap lets two more start at once
    assert sorted(prompts(joypix)) == [f"alice {n}" for n in range(4)]
    lifted = await (await mod.slash("quota limits", remove="jobs at the provider at once per "
                                                           "member")).reply()
    assert "4 → no limit" in lifted.content
    await joypix.wait_for_requests("submit", 5)
    assert prompts(joypix)[4] == "alice 4"


async def test_the_fair_line_is_the_same_after_a_restart(fake_discord, providers,
                                                          tmp_path) -> None:
    database = tmp_path / "paddock.db"
    joypix = providers["joypix"]
    joypix.steps = ["processing"] * 100_000
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await grant(database, fake_discord.guild.id, alice.user.id, 70 * 3)
    await grant(database, fake_discord.guild.id, bob.user.id, 70)
    env = {**bot_env(fake_discord, providers, database), "PADDOCK_PROVIDER_CONCURRENCY": "1"}

    async with bot_process(fake_discord, env=env) as first:
        for n in range(3):
            await decided(await alice.slash("video text", prompt=f"alice {n}"))
        await joypix.wait_for_requests("submit", 1)
        asked = await decided(await bob.slash("video text", prompt="bob"))
        assert "Queued (position 1)" in asked.text
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL

    async with bot_process(fake_discord, env=env):
        for done in range(1, 4):  # finish what is at JoyPix; the next one goes
            joypix.finish(list(joypix.tasks)[-1])
            await joypix.wait_for_requests("submit", done + 1, timeout=15)
    assert prompts(joypix) == ["alice 0", "bob", "alice 1", "alice 2"]
