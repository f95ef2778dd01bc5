"""Extend under a finished video, as members use it: the last frame goes to the provider,
the continuation comes back joined, credits as for any job. Real H.264 + AAC clips."""

from __future__ import annotations

import io

from PIL import Image

from tests.bot.support import available, decided, give_credits, holds
from tests.bot.test_buttons_and_jobs import unsigned
from tests.clips import make_clip, mean_difference, pictures, play

FPS = 24
FIRST = make_clip(2, 640, 360, fps=FPS, bitrate=1_000_000)
CONTINUATION = make_clip(3, 640, 360, fps=FPS, bitrate=1_000_000)
OTHER_SIZE = make_clip(2, 480, 270, fps=FPS, bitrate=1_000_000, audio=False)


def video_of(message) -> bytes:
    [video] = [a for a in message.attachments if a.filename.endswith(".mp4")]
    return video.data


async def first_video(fake, paddock, providers, member, credits: int = 500):
    providers["joypix"].video_bytes = FIRST
    await give_credits(paddock, member, credits)
    await decided(await member.slash("video text", prompt="a horse on a beach", duration=5))
    return await member.wait_to_see(lambda m: m.pings(member) and bool(m.attachments))


async def extend(fake, member, post, values=None):
    """Press Extend, submit the modal; the post that carries the result (or failure)."""
    modal = await (await member.press(post, "Extend")).opened_modal()
    submitted = await member.submit_modal(modal, values or {})
    assert (await submitted.reply()).ephemeral  # a private word while the frame is taken
    card = await member.wait_to_see(lambda m: not m.ephemeral and bool(m.embeds)
                                    and m.embed.title == "🎬 Image to video",
                                    after=await submitted.reply())
    result = await member.wait_to_see(
        lambda m: m.pings(member) and bool(m.embeds) and m.id > card.id, after=card,
        timeout=15)
    return modal, card, result


async def test_extend_sends_the_last_frame_and_posts_one_joined_clip(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    post = await first_video(fake_discord, paddock, providers, alice)
    assert [b.label for b in post.buttons] == ["Re-roll", "Remix", "Delete", "Extend"]
    before = await available(paddock, alice)
    providers["joypix"].video_bytes = CONTINUATION

    modal, card, result = await extend(fake_discord, alice, post,
                                       {"What happens next": "the horse turns"})

    assert [f.value for f in modal.fields] == ["a horse on a beach", "5"]  # pre-filled
    assert not card.ephemeral and card.embed.title == "🎬 Image to video"
    _, continuation = (s.json for s in providers["joypix"].submits())
    assert continuation["prompt"] == "the horse turns"
    [frame_url] = continuation["images"]
    [frame_post] = [m for m in fake_discord.channel("general").visible
                    if any(a.filename == "last-frame.png" for a in m.attachments)]
    [frame] = frame_post.attachments
    assert unsigned(frame_url) == unsigned(frame.url)
    assert frame_url.startswith(fake_discord.cdn_base)  # a public link, never a local path
    sent = Image.open(io.BytesIO(frame.data)).convert("RGB")
    first_frames = pictures(FIRST)
    assert mean_difference(sent, first_frames[-1]) < 2.0  # the last frame, as decoded
    assert mean_difference(sent, first_frames[-6]) > 2.0

    joined = play(video_of(result))
    first, second = play(FIRST), play(CONTINUATION)
    assert joined.frames == first.frames + second.frames - 1
    assert abs(joined.duration - (first.duration + second.duration - 1 / FPS)) < 0.5 / FPS
    assert joined.audio_frames > 0
    shown = {f.name: f.value for f in result.embed.fields}
    assert shown["Extended"] == f"2 parts · {joined.duration:.1f} s in all"
    assert shown["Credits charged"] == "70"  # the continuation alone: 14 credits/s x 5 s
    assert await available(paddock, alice) == before - 70
    assert post.attachments and video_of(post) == FIRST  # the original stays as it was


async def test_a_chain_of_three_extends_holds_every_part(fake_discord, paddock, providers) -> None:
    alice = fake_discord.member("alice")
    post = await first_video(fake_discord, paddock, providers, alice, credits=1000)
    providers["joypix"].video_bytes = CONTINUATION
    lengths = [play(FIRST).frames]
    for parts in (2, 3, 4):
        _, _, post = await extend(fake_discord, alice, post, {"Duration of the continuation "
                                                              "(seconds)": "3"})
        lengths.append(play(CONTINUATION).frames - 1)
        played = play(video_of(post))
        assert played.frames == sum(lengths)
        shown = {f.name: f.value for f in post.embed.fields}
        assert shown["Extended"] == f"{parts} parts · {played.duration:.1f} s in all"
        assert shown["Credits charged"] == "42"  # 14 credits/s x 3 s, each time
    assert await available(paddock, alice) == 1000 - 70 - 3 * 42
    assert await holds(paddock) == []


async def test_a_continuation_of_another_size_is_joined_by_a_re_encode(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    post = await first_video(fake_discord, paddock, providers, alice)
    providers["joypix"].video_bytes = OTHER_SIZE

    _, _, result = await extend(fake_discord, alice, post)

    played = play(video_of(result))
    assert (played.width, played.height) == (640, 360)
    assert played.frames == play(FIRST).frames + play(OTHER_SIZE).frames - 1


async def test_a_failed_continuation_refunds_and_leaves_the_original(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    post = await first_video(fake_discord, paddock, providers, alice)
    before = await available(paddock, alice)
    original = (post.content, [e for e in post.embed_payloads], video_of(post))
    providers["joypix"].fail_with = "Input image violates the content policy"

    _, _, result = await extend(fake_discord, alice, post)

    assert result.embed.title == "Video failed"
    assert {f.name: f.value for f in result.embed.fields}["Credits"] == (
        "70 credits returned to you")
    assert await available(paddock, alice) == before
    assert await holds(paddock) == []
    assert (post.content, post.embed_payloads, video_of(post)) == original
    assert not post.deleted


async def test_a_member_without_the_credits_is_refused_and_the_frame_removed(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    post = await first_video(fake_discord, paddock, providers, alice)
    await give_credits(paddock, bob, 10)

    modal = await (await bob.press(post, "Extend")).opened_modal()
    submitted = await bob.submit_modal(modal)
    refused = await bob.wait_to_see(lambda m: "your balance" in m.content,
                                    after=await submitted.reply())

    assert refused.ephemeral
    assert "this needs 70 and your balance has 10 available" in refused.content
    carol = fake_discord.member("carol")
    assert not any("balance" in m.content or (m.embeds and m.id > post.id)
                   for m in carol.seen())  # no job card, no refusal in public
    await fake_discord.wait_for(lambda: all(
        m.deleted for m in fake_discord.channel("general").messages
        if any(a.filename == "last-frame.png" for a in m.attachments)))
    assert len(providers["joypix"].submits()) == 1  # the first video's only
    assert await available(paddock, bob) == 10


async def test_a_video_posted_as_a_link_has_no_extend(fake_discord, paddock, providers) -> None:
    fake_discord.guild.upload_limit = 2048  # no decent encode fits: the link is posted
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)
    providers["joypix"].video_bytes = FIRST
    await decided(await alice.slash("video text", prompt="x"))

    post = await alice.wait_to_see(lambda m: m.pings(alice) and bool(m.embeds))

    assert post.attachments == []
    assert [b.label for b in post.buttons] == ["Re-roll", "Remix", "Delete", "Full quality"]
