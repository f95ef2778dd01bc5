"""The video always reaches the member, or the member is told and gets the credits back."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import discord
import pytest

from tests.bot.support import available, decided, give_credits
from tests.bot.test_video import finished_post
from tests.fakes.discord import Upload

pytestmark = pytest.mark.both_backends  # the whole flow, on SQLite and on PostgreSQL

DEMO_MP4 = (Path(__file__).parents[2] / "hh_api" / "assets" / "demo.mp4").read_bytes()
JOYPIX_720P_5S = 70


def refused_calls(fake) -> list:
    """Every call Discord refused with a 4xx, but the fake's own 429s."""
    return [c for c in fake.calls if c.status and 400 <= c.status < 500 and c.status != 429]


def status_of(card) -> str:
    return {f.name: f.value for f in card.embed.fields}.get("Status") or ""


async def start_job(fake, paddock, member, emulator, *, channel: str = "general", **options):
    """A 5 s 720p JoyPix job, started and held at the provider; returns (card, task id)."""
    emulator.steps = ["pending"] + ["processing"] * 100000
    await give_credits(paddock, member, 100)
    card = await decided(await member.slash("video text", channel=channel, duration=5,
                                            **{"prompt": "a horse", **options}))
    await fake.wait_for(lambda: not status_of(card).startswith("Queued"))  # at JoyPix now
    [task_id] = emulator.tasks
    return card, task_id


# -- a "video" that is not one --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "why"),
    [
        (b"<html><body>Access denied</body></html>", "text/html", "text/html, not a video"),
        (DEMO_MP4[: len(DEMO_MP4) // 2], "video/mp4", "cut short"),
        (b"", "video/mp4", "empty file"),
    ],
    ids=["html-page", "truncated-mp4", "zero-bytes"],
)
async def test_a_download_that_is_not_a_video_fails_and_refunds_with_a_plain_reason(
    fake_discord, paddock, providers, body, content_type, why
) -> None:
    emulator = providers["joypix"]
    emulator.video_bytes, emulator.video_content_type = body, content_type
    alice = fake_discord.member("alice")
    card, task_id = await start_job(fake_discord, paddock, alice, emulator)

    emulator.finish(task_id)
    post = await finished_post(fake_discord, alice)

    assert post.embed.title == "Video failed"
    assert post.attachments == []
    shown = {f.name: f.value for f in post.embed.fields}
    assert shown["What happened"].startswith("JoyPix did not send a playable video")
    assert why in shown["What happened"]
    assert shown["Credits"] == f"{JOYPIX_720P_5S} credits returned to you"
    await fake_discord.wait_for(lambda: status_of(card).startswith("Failed"))
    assert "Rendering" not in status_of(card)
    assert await available(paddock, alice) == 100
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.id)
    assert job.error == shown["What happened"] and job.charged_credits is None
    assert job.delivery_attempts == 0  # not retried: retrying cannot make it a video
    listed = await (await alice.slash("jobs list")).reply()
    assert "**failed" in listed.embed.description
    report = await paddock.services.ledger.check()
    assert report.ok, report.problems


# -- links where Discord's limits allow them -------------------------------------------------


async def test_a_1200_character_link_is_posted_without_discord_refusing_anything(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    signature = "&X-Amz-Signature=" + "f" * 1200
    emulator.video_query = "?X-Amz-Credential=abc" + signature
    fake_discord.guild.upload_limit = 1024  # nothing fits: the link is the video
    alice = fake_discord.member("alice")
    _card, task_id = await start_job(fake_discord, paddock, alice, emulator)
    url = emulator.video_url(task_id)
    assert len(url) > 1200

    emulator.finish(task_id)
    post = await finished_post(fake_discord, alice)

    assert post.attachments == []
    assert f"[download the video]({url})" in post.embed.description
    assert "until <t:" in post.embed.description
    assert "a horse" in post.embed.description  # what made it is still there
    shown = {f.name: f.value for f in post.embed.fields}
    assert shown["Credits charged"] == str(JOYPIX_720P_5S)
    assert (shown["Resolution"], shown["Duration"]) == ("720p", "5 s")
    assert [b.label for b in post.buttons] == ["Re-roll", "Remix", "Delete"]  # no link button
    assert refused_calls(fake_discord) == []
    assert await available(paddock, alice) == 100 - JOYPIX_720P_5S


async def test_an_upload_limit_too_small_for_the_video_gives_the_link_and_nothing_is_refused(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    emulator.video_bytes = DEMO_MP4
    fake_discord.guild.upload_limit = 4096  # smaller than any playable encode of this clip
    alice = fake_discord.member("alice")
    card, task_id = await start_job(fake_discord, paddock, alice, emulator)

    emulator.finish(task_id)
    post = await finished_post(fake_discord, alice)

    assert post.attachments == []
    url = emulator.video_url(task_id)
    assert f"[download the video]({url})" in post.embed.description
    assert "upload limit" in post.embed.description
    assert post.button("Full quality").url == url
    await fake_discord.wait_for(lambda: status_of(card).startswith("Done"))
    assert refused_calls(fake_discord) == []


# -- a video Discord takes nowhere ------------------------------------------------------------


async def assert_undelivered_and_refunded(fake, paddock, member, job_id: str) -> None:
    await fake.wait_for(lambda: member.direct_messages, timeout=10)
    [dm] = member.direct_messages
    assert dm.embeds[0].title == "Your video could not be posted"
    text = dm.embeds[0].description
    assert f"{JOYPIX_720P_5S} credits were returned" in text
    assert "[download the video](" in text and "until <t:" in text
    # The credits come back before the member is told, so the DM means they are back.
    assert (await paddock.services.jobs.get(job_id)).undelivered
    assert await available(paddock, member) == 100
    listed = await (await member.slash("jobs list")).reply()
    assert "**undelivered, credits returned**" in listed.embed.description
    assert "**done**" not in listed.embed.description
    mod = fake.member("mod", permissions=discord.Permissions(manage_guild=True))
    log = await (await mod.slash("quota log")).reply()
    assert f"job `{job_id}` of {member.mention}: its charge of {JOYPIX_720P_5S} returned" in (
        log.embed.description)
    assert "could not be posted" in log.embed.description
    report = await paddock.services.ledger.check()
    assert report.ok, report.problems


async def test_a_deleted_channel_means_a_dm_with_the_link_and_the_credits_back(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    alice = fake_discord.member("alice")
    _card, task_id = await start_job(fake_discord, paddock, alice, emulator, channel="videos")
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.id)

    fake_discord.delete_channel("videos")
    emulator.finish(task_id)

    await assert_undelivered_and_refunded(fake_discord, paddock, alice, job.id)


async def test_a_removed_permission_after_the_token_died_means_a_dm_and_the_credits_back(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    alice = fake_discord.member("alice")
    card, task_id = await start_job(fake_discord, paddock, alice, emulator)
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.id)
    fake_discord.clock.advance(16 * 60)  # the interaction's token is dead
    fake_discord.channel("general").set_permissions(
        fake_discord.bot_member, deny=discord.Permissions(send_messages=True))

    emulator.finish(task_id)

    await assert_undelivered_and_refunded(fake_discord, paddock, alice, job.id)
    assert [m for m in fake_discord.channel("general").visible if m.attachments] == []
    assert status_of(card) == ("Not posted: the bot is not allowed to post there any more. "
                               "Credits returned.")  # edits need no Send Messages


async def test_with_dms_closed_nobody_can_be_told_but_the_credits_still_come_back(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    alice = fake_discord.member("alice")
    alice.accepts_dms = False
    _card, task_id = await start_job(fake_discord, paddock, alice, emulator, channel="videos")
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.id)

    fake_discord.delete_channel("videos")
    emulator.finish(task_id)
    await fake_discord.wait_for(
        lambda: any(c.route == "POST /channels/{channel_id}/messages" and c.status == 403
                    for c in fake_discord.calls), timeout=10)  # the refused DM

    listed = await (await alice.slash("jobs list")).reply()
    assert "**undelivered, credits returned**" in listed.embed.description
    assert (await paddock.services.jobs.get(job.id)).undelivered
    assert await available(paddock, alice) == 100


# -- fresh picture links ------------------------------------------------------------------


@pytest.mark.parametrize("button", ["Re-roll", "Remix"])
async def test_an_older_jobs_expired_picture_links_are_refreshed_before_the_provider_gets_them(
    fake_discord, paddock, providers, button
) -> None:
    emulator = providers["joypix"]
    emulator.fetch_pictures = True  # the provider downloads each link, as the real one does
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)
    await decided(await alice.slash("video image", prompt="the cat waves", duration=3,
                                    image=Upload.image("cat.png", 640, 480)))
    post = await finished_post(fake_discord, alice)
    [(first_link, first_status)] = emulator.picture_fetches
    assert first_status == 200

    fake_discord.clock.advance(25 * 3600)  # a day later: Discord's link has expired
    if button == "Re-roll":
        reply = await (await alice.press(post, "Re-roll")).reply()
    else:
        modal = await (await alice.press(post, "Remix")).opened_modal()
        reply = await (await alice.submit_modal(modal, {"Prompt": "the cat jumps"})).reply()
    await emulator.wait_for_picture_fetches(2)

    assert not reply.ephemeral  # accepted
    [_, (second_link, status)] = emulator.picture_fetches
    assert status == 200  # the provider got a live link
    assert second_link != first_link
    assert second_link.split("?")[0] == first_link.split("?")[0]  # the same picture
    assert fake_discord.calls_to("POST /attachments/refresh-urls")
    old = urlsplit(first_link)
    assert fake_discord.cdn.problem(old.path, dict(parse_qsl(old.query))) == "expired"


# -- member text as typed, never rendered, never too long ----------------------------------

MASKED_LINK = "[claim free nitro](https://nitro.example/claim) a horse"


async def test_a_masked_link_in_a_prompt_is_shown_as_typed_not_as_a_link(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)

    card = await decided(await alice.slash("video text", prompt=MASKED_LINK, duration=5))
    post = await finished_post(fake_discord, alice)
    listed = await (await alice.slash("jobs list")).reply()

    escaped = "\\[claim free nitro]\\(https://nitro.example/claim) a horse"
    for shown in (card.versions[0]["embeds"][0]["description"], post.embed.description):
        assert shown == "> " + escaped
        assert "[claim free nitro](" not in shown
    assert "\\[claim free nitro]\\(" in listed.embed.description
    assert "[claim free nitro](" not in listed.embed.description
    [submit] = providers["joypix"].submits()
    assert submit.json["prompt"] == MASKED_LINK  # the provider gets the prompt as typed


async def test_a_5000_character_job_id_gets_a_clipped_specific_answer(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")

    answer = await (await alice.slash("jobs cancel", job="*" * 5000)).reply()

    assert answer.ephemeral
    assert len(answer.content) < 2000
    assert answer.content.startswith("You have no job '" + "\\*" * 19 + "…'")
    assert answer.content.endswith("/jobs list shows yours.")


@pytest.mark.parametrize(
    ("option", "says"),
    [("provider", "is not a provider this bot can use; choose one of: joypix, "),
     ("aspect_ratio", "is not offered by joypix; choose one of 16:9, ")],
)
async def test_a_5000_character_option_value_gets_a_clipped_specific_answer(
    fake_discord, paddock, providers, option, says
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)

    answer = await decided(await alice.slash("video text", prompt="a horse",
                                             **{option: "9" * 5000}))

    assert answer.ephemeral
    assert len(answer.content) < 400
    assert says in answer.content
    assert "9" * 30 in answer.content and "9" * 100 not in answer.content
    assert await available(paddock, alice) == 100
    assert providers["joypix"].submits() == []


# -- a network that fails while the video is posted ----------------------------------------


@pytest.mark.parametrize("token", ["alive", "expired"])
async def test_a_connection_that_breaks_on_every_upload_means_the_member_is_told_and_refunded(
    fake_discord, paddock, providers, token
) -> None:
    emulator = providers["joypix"]
    alice = fake_discord.member("alice")
    card, task_id = await start_job(fake_discord, paddock, alice, emulator)
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.id)
    if token == "expired":
        fake_discord.clock.advance(16 * 60)
    # Every post that carries the video (the followup, or the channel reply) is cut.
    attempts = paddock.runner.settings.delivery_attempts
    fake_discord.cut("POST /webhooks/{application_id}/{token}", lambda c: bool(c.files),
                     times=attempts)
    fake_discord.cut("POST /channels/{channel_id}/messages", lambda c: bool(c.files),
                     times=attempts)

    emulator.finish(task_id)

    if token == "expired":
        await assert_undelivered_and_refunded(fake_discord, paddock, alice, job.id)
    else:  # told by an ephemeral followup on the /video interaction, which still lives
        told = await fake_discord.wait_for(lambda: [
            m for m in fake_discord.channel("general").messages
            if m.ephemeral and m.embeds and m.embeds[0].title == "Your video could not be posted"
        ])
        [message] = told
        assert message.visible_to == alice.id
        assert "Discord could not be reached" in message.embeds[0].description
        assert f"{JOYPIX_720P_5S} credits were returned" in message.embeds[0].description
        assert (await paddock.services.jobs.get(job.id)).undelivered
        assert await available(paddock, alice) == 100
    assert [m for m in fake_discord.channel("general").visible if m.attachments] == []
    assert status_of(card) == "Not posted: Discord could not be reached. Credits returned."


async def test_a_post_that_landed_but_whose_answer_was_lost_is_not_posted_again(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    alice = fake_discord.member("alice")
    card, task_id = await start_job(fake_discord, paddock, alice, emulator)
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.id)
    # The video's post takes effect, then the connection breaks before Discord answers.
    fake_discord.cut("POST /webhooks/{application_id}/{token}", lambda c: bool(c.files),
                     applied=True)

    emulator.finish(task_id)

    await paddock.runner.wait_idle()
    done = await paddock.services.jobs.get(job.id)
    assert done.state.value == "delivered" and not done.undelivered
    videos = [m for m in fake_discord.channel("general").visible
              if any(a.filename.endswith(".mp4") for a in m.attachments)]
    assert len(videos) == 1  # posted once, not again by the retry
    await fake_discord.wait_for(lambda: status_of(card).startswith("Done: https://"))
    assert status_of(card).endswith(f"/{videos[0].id}")
    assert done.charged_credits == JOYPIX_720P_5S
    assert await available(paddock, alice) == 100 - JOYPIX_720P_5S
