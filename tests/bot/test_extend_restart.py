"""`python bot.py` killed between posting a video's last frame and the provider's answer to
the continuation's submit, then started again: nothing made or charged twice."""

from __future__ import annotations

import signal

from tests.bot.support import decided
from tests.bot.test_extend import FIRST
from tests.bot.test_restarts import bot_env, grant, ledger_figures
from tests.fakes.discord import bot_process


async def test_a_restart_between_the_frame_and_the_submit_does_not_submit_twice(
    fake_discord, providers, tmp_path
) -> None:
    database = tmp_path / "paddock.db"
    emulator = providers["joypix"]
    emulator.video_bytes = FIRST
    alice = fake_discord.member("alice")
    await grant(database, fake_discord.guild.id, alice.user.id, 200)
    env = bot_env(fake_discord, providers, database)
    general = fake_discord.channel("general")

    def frame_posts() -> list:
        return [m for m in general.visible
                if any(a.filename == "last-frame.png" for a in m.attachments)]

    async with bot_process(fake_discord, env=env) as first:
        await decided(await alice.slash("video text", prompt="a lighthouse", duration=5))
        post = await alice.wait_to_see(lambda m: m.pings(alice) and bool(m.attachments),
                                       timeout=15)
        emulator.fault("hang", on="submit")  # the continuation's submit gets no answer
        modal = await (await alice.press(post, "Extend")).opened_modal()
        await alice.submit_modal(modal, {"What happens next": "the light turns"})
        await emulator.wait_for_requests("submit", 2, timeout=15)
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL

    async with bot_process(fake_discord, env=env):
        failed = await alice.wait_to_see(
            lambda m: m.pings(alice) and bool(m.embeds) and m.embed.title == "Video failed",
            timeout=15)

    assert "credits returned" in {f.name: f.value for f in failed.embed.fields}["Credits"]
    assert len(frame_posts()) == 1  # the frame was posted once
    _, continuation = (s.json for s in emulator.submits())
    assert len(emulator.submits()) == 2  # the continuation was sent once, never again
    [frame] = frame_posts()[0].attachments
    assert [u.split("?")[0] for u in continuation["images"]] == [frame.url.split("?")[0]]
    left, pending, settled, report = await ledger_figures(database, fake_discord.guild.id,
                                                          alice.user.id)
    assert (left, pending, [h.charged for h in settled]) == (200 - 70, [], [70])
    assert report.ok, report.problems
