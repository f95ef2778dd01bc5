"""/video as members use it: through the fake Discord, to the provider emulators and back."""

from __future__ import annotations

import asyncio

import discord
import pytest

from tests.bot.support import available, decided, give_credits, holds
from tests.fakes.discord import Upload
from tests.fakes.providers import FAKE_MP4

pytestmark = pytest.mark.both_backends  # the whole flow, on SQLite and on PostgreSQL



async def test_the_whole_bot_runs_on_the_store_the_test_names(paddock, backend) -> None:
    """``both_backends`` really runs these flows twice, the second time on PostgreSQL."""
    expected = {"sqlite": "sqlite", "postgres": "postgresql"}[backend]
    assert paddock.services.store.dialect == expected

async def finished_post(fake, member, timeout: float = 10.0):
    """Wait for the message that carries the finished video (or failure) for `member`."""
    channel = fake.channel("general")

    def found():
        for message in channel.visible:
            if message.pings(member) and message.embeds:
                return message
        return None

    await fake.wait_for(lambda: found() is not None, timeout=timeout)
    return found()


async def test_a_text_video_goes_from_command_to_channel_and_is_charged_once(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)

    reply = await decided(await alice.slash("video text", prompt="a horse gallops on a beach",
                                            duration=5))

    assert not reply.ephemeral  # the job is public
    job_embed = reply.embed
    assert "a horse gallops on a beach" in job_embed.description
    fields = {f.name: f.value for f in job_embed.fields}
    assert fields["Cost"] == "70 credits (130 left)"  # JoyPix 720p: 14 credits/s x 5 s
    assert fields["Settings"] == "720p · 16:9 · 5 s"
    assert fields["Status"].startswith("Queued")

    post = await finished_post(fake_discord, alice)
    [video] = [a for a in post.attachments if a.filename.endswith(".mp4")]
    assert video.data == FAKE_MP4
    shown = {f.name: f.value for f in post.embed.fields}
    assert shown["Credits charged"] == "70"
    assert shown["Provider"] == "JoyPix · `happyhorse-1.0-t2v`"
    assert (shown["Resolution"], shown["Aspect ratio"], shown["Duration"]) == (
        "720p", "16:9", "5 s")
    assert shown["Requested by"] == f"<@{alice.user.id}>"
    assert [b.label for b in post.buttons] == ["Re-roll", "Remix", "Delete", "Extend"]

    [submit] = providers["joypix"].submits()
    assert submit.json["prompt"] == "a horse gallops on a beach"
    assert await available(paddock, alice) == 130
    assert await holds(paddock) == []
    done = f"Done: https://discord.com/channels/{fake_discord.guild.id}/"
    await fake_discord.wait_for(lambda: done in (reply.embed.fields[0].value or ""))
    report = await paddock.services.ledger.check()
    assert report.ok, report.problems


# -- every kind of bad input: an ephemeral answer, nothing charged, nothing sent ----------

REFUSALS = [
    ({"command": "video text", "prompt": "x", "duration": 5}, 10,
     "this needs 70 and your balance has 10 available. Try 720p or a shorter video"),
    ({"command": "video image", "prompt": "x", "image": Upload.blob("notes.pdf", 2000)}, 500,
     "image (notes.pdf) is not a picture (application/pdf)"),
    ({"command": "video image", "prompt": "x", "image": Upload.image("tiny.png", 200, 200)},
     500, "shortest side must be at least 300 px"),
    ({"command": "video image", "prompt": "x", "image": Upload.image("strip.png", 1300, 400)},
     500, "aspect ratio must be between 1:2.5 and 2.5:1"),
    ({"command": "video image", "prompt": "x", "image": Upload.image("cat.gif", 640, 480)}, 500,
     "this provider takes JPEG, PNG, BMP, WEBP"),
    ({"command": "video reference", "prompt": "[Image 1] meets [Image 3]",
      "image1": Upload.image("a.png"), "image2": Upload.image("b.png")}, 500,
     "names [Image 3], but you attached 2 pictures"),
    ({"command": "video reference", "prompt": "x", "image1": Upload.image("a.png", 390, 390),
      "provider": "hiapi"}, 500, "shortest side must be at least 400 px"),
    ({"command": "video text", "prompt": "x", "seed": 5, "provider": "hiapi"}, 500,
     "hiapi takes no seed"),
    ({"command": "video text", "prompt": "x", "aspect_ratio": "21:9"}, 500,
     "choose one of 16:9, 9:16, 1:1, 4:3, 3:4"),
    ({"command": "video reference", "prompt": "x", "image1": Upload.image("a.png"),
      "negative_prompt": "blur"}, 500, "joypix takes no negative prompt"),
    ({"command": "video text", "prompt": "x", "provider": "runway"}, 500,
     "'runway' is not a provider this bot can use"),
    ({"command": "video image", "prompt": "x", "image": Upload.image("a.png"),
      "provider": "pixeldojo"}, 500, "PixelDojo does not offer image mode"),
    ({"command": "video text", "prompt": "\u200b\u200c\u200d\u2060\ufeff"}, 500,
     "the prompt has no visible characters"),
    ({"command": "video image", "prompt": "\u00ad\ufe0f \u3000", "image": Upload.image("a.png")},
     500, "the prompt has no visible characters"),
]


@pytest.mark.parametrize(("options", "credits", "words"), REFUSALS,
                         ids=[r[2][:40] for r in REFUSALS])
async def test_bad_input_gets_a_clear_ephemeral_answer_and_costs_nothing(
    fake_discord, paddock, providers, options, credits, words
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, credits)
    options = dict(options)
    reply = await decided(await alice.slash(options.pop("command"), **options))

    assert reply.ephemeral
    assert words in reply.content
    assert fake_discord.member("bob").seen() == []  # nobody else saw anything
    assert await available(paddock, alice) == credits
    assert await holds(paddock) == []
    assert all(emulator.requests == [] for emulator in providers.values())
    assert await paddock.services.jobs.list_for_member(fake_discord.guild.id,
                                                        alice.user.id) == []


async def test_a_blocked_member_is_told_so(fake_discord, paddock, providers) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)
    await paddock.services.ledger.block(fake_discord.guild.id, alice.user.id, actor_id=1,
                                        reason="spam")
    # The command's handler returning is discord.py's "completion"; a handler that raised
    # would not complete, but answer a second time ("something went wrong") from on_error.
    completed = asyncio.ensure_future(paddock.wait_for(
        "app_command_completion", check=lambda i, _: i.user.id == alice.user.id, timeout=10))
    interaction = await alice.slash("video text", prompt="x")
    reply = await decided(interaction)
    assert reply.ephemeral and "blocked" in reply.content.lower()
    await completed
    assert alice.seen() == [reply]  # one answer, not a second "something went wrong"
    assert providers["joypix"].requests == []


# -- failures, limits and the token's life --------------------------------------------------


async def test_a_failed_video_explains_the_reason_and_returns_the_credits(
    fake_discord, paddock, providers
) -> None:
    providers["wavespeed"].fail_with = "Input image violates the content policy"
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)

    await decided(await alice.slash("video text", prompt="x", provider="wavespeed"))
    post = await finished_post(fake_discord, alice)

    assert post.embed.title == "Video failed"
    shown = {f.name: f.value for f in post.embed.fields}
    assert "violates the content policy" in shown["What happened"]
    assert shown["Credits"] == "70 credits returned to you"
    assert "Reword the prompt" in shown["What to try"]
    assert post.attachments == []
    assert await available(paddock, alice) == 100
    assert len(providers["wavespeed"].submits()) == 1  # never resubmitted


async def test_a_video_over_the_upload_limit_is_posted_as_a_link(
    fake_discord, paddock, providers
) -> None:
    fake_discord.guild.upload_limit = 2048  # smaller than the emulator's video
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)
    await decided(await alice.slash("video text", prompt="x"))

    post = await finished_post(fake_discord, alice)
    assert post.attachments == []
    assert "Video" not in {f.name for f in post.embed.fields}  # a field holds 1,024 only
    note = post.embed.description.split("\n\n", 1)[1]
    assert "upload limit" in note
    [task_id] = providers["joypix"].tasks
    url = providers["joypix"].video_url(task_id)
    assert f"[download the video]({url})" in note
    assert "until <t:" in note  # JoyPix keeps outputs 24 hours
    assert post.button("Full quality").url == url  # short enough for a link button
    assert {f.name: f.value for f in post.embed.fields}["Credits charged"] == "70"


async def test_a_job_that_outlives_the_token_replies_in_the_channel(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    emulator.steps = ["pending"] + ["processing"] * 100000
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)
    reply = await decided(await alice.slash("video text", prompt="x"))
    await emulator.wait_for_requests("status", 2)

    fake_discord.clock.advance(16 * 60)  # the interaction token is dead now
    [task_id] = emulator.tasks
    emulator.finish(task_id)

    post = await finished_post(fake_discord, alice)
    assert post.interaction is None  # a message of the bot's own, not a followup
    assert post.replies_to is not None and post.replies_to.id == reply.id
    assert post.pings(alice)
    assert [a.filename.endswith(".mp4") for a in post.attachments] == [True]


# -- every provider, and the server's own rules ---------------------------------------------


@pytest.mark.parametrize(("provider", "credits"), [
    ("joypix", 70), ("wavespeed", 70), ("pixeldojo", 70), ("hiapi", 70)])
async def test_a_reference_video_works_on_every_provider(
    fake_discord, paddock, providers, provider, credits
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)
    await decided(await alice.slash(
        "video reference", prompt="[Image 1] walks through [Image 2]",
        image1=Upload.image("hero.png", 800, 800), image2=Upload.image("town.jpg", 1200, 800),
        provider=provider))

    post = await finished_post(fake_discord, alice)
    assert any(a.filename.endswith(".mp4") for a in post.attachments)
    assert {f.name: f.value for f in post.embed.fields}["Credits charged"] == str(credits)
    [submit] = providers[provider].submits()
    sent = submit.json.get("input", submit.json)  # HiAPI nests the fields under input
    images = sent.get("images") or sent.get("reference_urls") or sent.get("reference_image")
    assert len(images) == 2 and all(url.startswith("http") for url in images)
    assert await available(paddock, alice) == 100 - credits


async def test_video_is_refused_outside_the_allowed_channels(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)
    videos = fake_discord.channel("videos")
    await paddock.services.config.allow_channel(fake_discord.guild.id, videos.id, actor_id=1)

    refused = await decided(await alice.slash("video text", prompt="x", channel="general"))
    assert refused.ephemeral
    assert f"Videos aren't made in this channel. Use <#{videos.id}>." == refused.content
    accepted = await decided(await alice.slash("video text", prompt="x", channel="videos"))
    assert not accepted.ephemeral
    await fake_discord.wait_for(lambda: any(m.attachments for m in videos.visible))
    assert len(providers["joypix"].submits()) == 1  # only the allowed one reached it


async def test_too_many_jobs_at_once_is_refused_until_one_finishes(
    fake_discord, paddock, providers
) -> None:
    from paddock.budget import Limits

    await paddock.services.ledger.set_limits(fake_discord.guild.id, Limits(member_jobs=1),
                                             actor_id=1)
    emulator = providers["joypix"]
    emulator.steps = ["pending"] * 100000
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)
    await decided(await alice.slash("video text", prompt="one"))

    refused = await decided(await alice.slash("video text", prompt="two"))
    assert refused.ephemeral
    assert refused.content == "You already have 1 jobs running; this server allows 1."
    await emulator.wait_for_requests("submit", 1)
    [task_id] = emulator.tasks
    emulator.finish(task_id)
    await finished_post(fake_discord, alice)
    await paddock.runner.wait_idle()
    again = await decided(await alice.slash("video text", prompt="two"))
    assert not again.ephemeral


# -- first run ------------------------------------------------------------------------------


async def test_the_first_refusal_on_a_new_server_says_what_a_moderator_runs(
    fake_discord, paddock, providers
) -> None:
    owner = fake_discord.member("owner", permissions=discord.Permissions(manage_guild=True))
    bob = fake_discord.member("bob")

    first = await decided(await owner.slash("video text", prompt="a horse"))

    assert first.ephemeral
    assert "this needs 70 and your balance has 0 available" in first.content
    assert "Nobody on this server has credits yet" in first.content
    assert "`/quota allowance amount:100 period:daily`" in first.content
    assert "`/quota grant member:@owner amount:100`" in first.content
    assert await paddock.services.jobs.list_for_member(fake_discord.guild.id,
                                                        owner.user.id) == []
    assert providers["joypix"].requests == []

    # what the answer says works: the owner runs it, and the next /video is accepted
    told = await (await owner.slash("quota allowance", amount=100, period="daily")).reply()
    assert told.ephemeral
    accepted = await decided(await owner.slash("video text", prompt="a horse"))
    assert not accepted.ephemeral and "a horse" in accepted.embed.description
    # once the server has a budget, a short balance gets the ordinary advice
    short = await decided(await bob.slash("video text", prompt="a horse", resolution="1080p"))
    assert short.ephemeral and "Nobody on this server" not in short.content
    assert "Try 720p or a shorter video" in short.content
