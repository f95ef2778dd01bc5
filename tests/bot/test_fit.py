"""Finished videos fit the server's upload limit: real clips from the provider emulator,
posted through the fake Discord, decoded again as a member's player would."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from paddock.delivery import FitKind, fit_to_limit, plan_encode, probe
from paddock.delivery import fit as fitting
from paddock.delivery.workers import ENCODES_AT_ONCE
from tests.bot.support import decided, give_credits
from tests.bot.test_video import finished_post
from tests.clips import make_clip, play, top_level_boxes

LIMIT = 400_000  # bytes: the fake server's upload limit in these tests


@pytest.fixture(scope="module")
def clip_720p() -> bytes:
    """3 s of 1280x720 at 24 fps with sound, about 2 MB: five times the limit."""
    return make_clip(3, 1280, 720, bitrate=5_000_000)


@pytest.fixture(scope="module")
def clip_short() -> bytes:
    """1 s of 640x360 with sound, about 550 kB: over SHORT_LIMIT, quick to re-encode."""
    return make_clip(1, 640, 360, bitrate=3_000_000)


SHORT_LIMIT = 200_000  # bytes: room for clip_short at 360p


@pytest.fixture(scope="module")
def clip_small() -> bytes:
    """3 s of 480x270, well under the limit."""
    return make_clip(3, 480, 270, bitrate=400_000)


def posted_video(post) -> bytes:
    [video] = [a for a in post.attachments if a.filename.endswith(".mp4")]
    return video.data


async def test_an_oversize_video_is_reencoded_under_the_limit_and_still_plays(
    fake_discord, paddock, providers, clip_720p
) -> None:
    fake_discord.guild.upload_limit = LIMIT
    providers["joypix"].video_bytes = clip_720p
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)

    await decided(await alice.slash("video text", prompt="a horse on a beach"))
    post = await finished_post(fake_discord, alice, timeout=60)

    data = posted_video(post)
    assert len(clip_720p) > LIMIT >= len(data)
    source, shown = play(clip_720p), play(data)
    assert shown.frames == source.frames == 72  # every frame, so the same frame rate
    assert shown.fps == source.fps
    assert abs(shown.duration - source.duration) < 0.05
    assert shown.audio_frames > 0
    assert shown.height < 720  # 720p would not look decent at this bitrate
    assert shown.height >= 360
    assert abs(shown.width / shown.height - 16 / 9) < 0.01  # the shape is kept
    boxes = top_level_boxes(data)
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart: plays while loading
    assert {f.name: f.value for f in post.embed.fields}["Credits charged"] == "70"
    # The provider's original, full-quality file stays reachable while it lives.
    [task_id] = providers["joypix"].tasks
    url = providers["joypix"].video_url(task_id)
    note = post.embed.description.split("\n\n", 1)[1]
    assert note.startswith("Re-encoded to fit this server's")
    assert f"[download the video]({url})" in note and "until <t:" in note
    assert post.button("Full quality").url == url


async def test_a_video_that_fits_is_posted_byte_for_byte(
    fake_discord, paddock, providers, clip_small
) -> None:
    fake_discord.guild.upload_limit = LIMIT
    providers["joypix"].video_bytes = clip_small
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)

    await decided(await alice.slash("video text", prompt="x"))
    post = await finished_post(fake_discord, alice, timeout=30)

    assert posted_video(post) == clip_small
    assert "\n\n" not in post.embed.description  # no note: the file is the provider's own


async def test_a_limit_too_small_for_a_decent_encode_gets_the_link(
    fake_discord, paddock, providers, clip_720p
) -> None:
    fake_discord.guild.upload_limit = 60_000  # 3 s would need ~200 kB even at 360p
    providers["joypix"].video_bytes = clip_720p
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)

    await decided(await alice.slash("video text", prompt="x"))
    post = await finished_post(fake_discord, alice, timeout=30)

    assert post.attachments == []
    [task_id] = providers["joypix"].tasks
    note = post.embed.description.split("\n\n", 1)[1]
    assert "upload limit" in note
    assert f"[download the video]({providers['joypix'].video_url(task_id)})" in note
    assert paddock.services.media.encoding == {}  # nothing was encoded in vain


async def test_members_are_answered_while_videos_are_reencoded(
    fake_discord, paddock, providers, clip_short
) -> None:
    fake_discord.guild.upload_limit = SHORT_LIMIT
    providers["joypix"].video_bytes = clip_short
    members = [fake_discord.member(name) for name in ("alice", "carol", "dave")]
    for member in members:
        await give_credits(paddock, member, 100)
        await decided(await member.slash("video text", prompt="x"))
    media = paddock.services.media
    await fake_discord.wait_for(lambda: len(media.encoding) == ENCODES_AT_ONCE, timeout=30)
    paused = list(media.encoding)
    for pid in paused:  # hold the encodes mid-way, so the answer comes while they run
        os.kill(pid, signal.SIGSTOP)
    try:
        # Three videos to re-encode: ENCODES_AT_ONCE at a time, the others wait their turn.
        await fake_discord.wait_for(lambda: media.waiting == 3 - ENCODES_AT_ONCE, timeout=30)
        assert list(media.encoding) == paused
        bob = fake_discord.member("bob")
        reply = await (await bob.slash("credits balance")).reply()
        assert reply.ephemeral and reply.embed is not None
        assert list(media.encoding) == paused  # still encoding
        assert not any(m.attachments for m in fake_discord.channel("general").visible)
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)

    for member in members:
        post = await finished_post(fake_discord, member, timeout=60)
        assert len(clip_short) > SHORT_LIMIT >= len(posted_video(post))
    await asyncio.wait_for(paddock.runner.wait_idle(), 10)
    assert media.encoding == {} and media.waiting == 0


# -- the plan and the encoder on their own --------------------------------------------------


def test_fifteen_seconds_at_ten_mib_keep_at_least_480_lines() -> None:
    from fractions import Fraction

    from paddock.delivery import VideoInfo

    for width, height, fps in ((1920, 1080, 24), (1920, 1080, 30), (1280, 720, 30),
                               (1080, 1920, 30), (1920, 1080, 60)):
        info = VideoInfo(size=60_000_000, duration=15.0, width=width, height=height,
                         fps=Fraction(fps), frames=15 * fps, video_codec="h264",
                         audio_codec="aac", audio_bitrate=128_000)
        plan = plan_encode(info, 10 * 1024 * 1024)
        assert not isinstance(plan, str), plan
        assert min(plan.width, plan.height) >= 480
        assert plan.width / plan.height == pytest.approx(width / height, rel=0.01)


def test_an_encode_over_the_limit_is_made_again_lower_and_logged(
    tmp_path: Path, clip_720p: bytes, monkeypatch, caplog
) -> None:
    """Aiming 30% over the limit on purpose: the first encode overshoots, the second pass
    runs again lower, and the log says so."""
    from paddock.delivery.workers import _log_result

    source = tmp_path / "source.mp4"
    source.write_bytes(clip_720p)
    monkeypatch.setattr(fitting, "MARGIN", -0.3)
    monkeypatch.setattr(fitting, "CONTAINER_RESERVE", 0)
    result = fit_to_limit(source, LIMIT, tmp_path / "out" / "fitted.mp4")

    assert result.kind is FitKind.REENCODED
    first, second = result.attempts
    assert first.size > LIMIT >= second.size
    assert second.video_bitrate < first.video_bitrate
    assert result.path is not None and result.path.stat().st_size <= LIMIT
    assert probe(result.path).frames == 72
    with caplog.at_level(logging.INFO):
        _log_result(result, len(clip_720p), "job=x")
    assert any(r.levelno == logging.WARNING and "encoded again" in r.getMessage()
               for r in caplog.records)
