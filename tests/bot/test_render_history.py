"""What the bot learns about render times outlives a restart."""

from __future__ import annotations

import sqlite3

from tests.bot.support import decided
from tests.bot.test_restarts import bot_env, grant
from tests.bot.test_video import finished_post
from tests.fakes.discord import bot_process


async def test_render_times_are_kept_and_loaded_again_after_a_restart(
    fake_discord, providers, tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 1000)
    env = bot_env(fake_discord, providers, database)

    async with bot_process(fake_discord, env=env) as first:
        assert "render times: 0 kept from earlier runs" in first.output
        for n in range(3):
            before = len(fake_discord.channel("general").files)
            await decided(await alice.slash("video text", prompt=f"a lighthouse, take {n}"))
            await fake_discord.wait_for(
                lambda b=before: len(fake_discord.channel("general").files) > b, timeout=30)
        await decided(await alice.slash("video text", prompt="a lighthouse at 1080p",
                                        resolution="1080p"))
        await finished_post(fake_discord, alice)
        await fake_discord.wait_for(lambda: len(fake_discord.channel("general").files) == 4)

    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT provider, mode, resolution, duration, after <= done_by "
                          "FROM render_times ORDER BY id").fetchall()
    assert rows == [("joypix", "text", "720p", 5, 1)] * 3 + [("joypix", "text", "1080p", 5, 1)]

    async with bot_process(fake_discord, env=env) as second:
        await fake_discord.wait_for(lambda: "render times: 4 kept" in second.output)
