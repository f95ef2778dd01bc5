"""The server-wide jobs-at-once limit, as a moderator sets it and members meet it."""

from __future__ import annotations

import discord

from tests.bot.support import available, decided, give_credits, holds
from tests.bot.test_video import finished_post


async def test_the_server_jobs_limit_refuses_the_next_member_until_a_job_finishes(
    fake_discord, paddock, providers
) -> None:
    mod = fake_discord.member("mod", permissions=discord.Permissions(manage_guild=True))
    limit = await (await mod.slash("quota limits", server_jobs=2)).reply()
    assert limit.content.startswith("Changed jobs at once per server: no limit → 2.")
    emulator = providers["joypix"]
    emulator.steps = ["pending"] * 100000  # jobs stay running until finished by hand
    alice, bob, carol = (fake_discord.member(name) for name in ("alice", "bob", "carol"))
    for member in (alice, bob, carol):
        await give_credits(paddock, member, 500)
    for member in (alice, bob):
        accepted = await decided(await member.slash("video text", prompt=f"{member.name}'s"))
        assert not accepted.ephemeral
    await emulator.wait_for_requests("submit", 2)

    refused = await decided(await carol.slash("video text", prompt="carol's"))

    assert refused.ephemeral
    assert refused.content == "This server already has 2 jobs running, its limit is 2."
    assert carol.ephemerals() == [refused] and alice.ephemerals() == bob.ephemerals() == []
    assert await available(paddock, carol) == 500  # nothing reserved
    assert sorted(h.user_id for h in await holds(paddock)) == sorted([alice.id, bob.id])
    assert await paddock.services.jobs.list_for_member(fake_discord.guild.id, carol.id) == []
    assert len(emulator.submits()) == 2  # no provider request for carol

    [alices_job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.id)
    emulator.finish(alices_job.provider_task_id)
    await finished_post(fake_discord, alice)  # charged before it is posted: one job runs now

    again = await decided(await carol.slash("video text", prompt="carol's"))
    assert not again.ephemeral
    await emulator.wait_for_requests("submit", 3)
    assert sorted(h.user_id for h in await holds(paddock)) == sorted([bob.id, carol.id])
    assert await available(paddock, carol) == 500 - 70
