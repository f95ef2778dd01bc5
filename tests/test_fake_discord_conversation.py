"""The conversation as members see it: responses, followups, edits, buttons, modals,
attachments, channel posts, mentions and rate limits, driven by the real discord.py."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import discord
import pytest

from tests.fakes.discord import (
    CommandHidden,
    CommandNotFound,
    FakeDiscord,
    OptionRejected,
    ProbeBot,
    ProbeButton,
    ProbeModal,
    Upload,
    WaitTimeout,
    button_view,
    running_bot,
)

Interaction = discord.Interaction[Any]


async def test_a_deferred_answer_thinks_then_is_replaced_by_the_first_followup(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    gate = asyncio.Event()

    async def slow(interaction: Interaction, values: dict[str, Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await gate.wait()
        await interaction.followup.send("first, as JSON")
        await interaction.followup.send(
            "second, with a file", file=discord.File(io.BytesIO(b"abc"), "notes.txt")
        )

    probe_bot.behaviour = slow
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    ix = await alice.slash("probe")
    await fake_discord.wait_for(lambda: ix.thinking, what="the thinking state")

    assert alice.last_seen() is ix.original
    assert alice.last_seen().thinking  # type: ignore[union-attr]
    gate.set()
    first, second = await ix.followup(0), await ix.followup(1)

    assert first is ix.original
    assert (first.content, first.ephemeral, first.thinking, first.edited_at) == (
        "first, as JSON",
        True,
        False,
        None,
    )
    assert (second.content, second.ephemeral) == ("second, with a file", False)
    assert [(a.filename, a.data, a.content_type) for a in second.attachments] == [
        ("notes.txt", b"abc", "text/plain")
    ]
    assert alice.seen() == [first, second]
    assert bob.seen() == [second]
    followups = fake_discord.calls_to("POST /webhooks/{application_id}/{token}")
    assert [(c.json["content"], [name for name, _ in c.files]) for c in followups] == [
        ("first, as JSON", []),
        ("second, with a file", ["notes.txt"]),
    ]
    assert all(c.query["wait"] == "1" for c in followups)


async def test_edits_of_the_original_and_of_followups_are_kept_as_versions(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def edit_everything(interaction: Interaction, values: dict[str, Any]) -> None:
        await interaction.response.send_message("queued")
        await interaction.edit_original_response(
            content="rendering", embed=discord.Embed(title="Job 7")
        )
        note = await interaction.followup.send("progress 10%", wait=True)
        await note.edit(content="progress 90%")
        await interaction.followup.send("scratch", wait=True)
        await interaction.delete_original_response()

    probe_bot.behaviour = edit_everything
    alice = fake_discord.member("alice")
    ix = await alice.slash("probe")
    await fake_discord.wait_for(
        lambda: ix.original is not None and ix.original.deleted, what="the deletion"
    )

    original, progress, scratch = ix.original, ix.followups[0], ix.followups[1]
    assert original is not None
    assert original.content == "rendering"
    assert [v["content"] for v in original.versions] == ["queued"]
    assert original.embed is not None and original.embed.title == "Job 7"
    assert progress.content == "progress 90%" and progress.edited_at is not None
    assert alice.seen() == [progress, scratch]
    assert fake_discord.default_channel.visible == [progress, scratch]


async def test_ephemeral_answers_are_seen_only_by_their_member(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def secret(interaction: Interaction, values: dict[str, Any]) -> None:
        await interaction.response.send_message(
            f"secret for {interaction.user.name}", ephemeral=True
        )

    probe_bot.behaviour = secret
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    reply = await (await alice.slash("probe")).reply()

    assert reply.ephemeral and reply.content == "secret for alice"
    assert alice.ephemerals() == [reply]
    assert bob.seen() == []
    assert fake_discord.default_channel.visible == []


async def test_options_reach_the_bot_resolved(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    mod = fake_discord.role("Moderator")
    bob = fake_discord.member("bob", roles=[mod])
    videos = fake_discord.channel("videos")

    await fake_discord.member("alice").slash(
        "probe",
        text="hi",
        count=3,
        ratio=1.5,
        loud=True,
        who=bob,
        role=mod,
        where=videos,
        flavour="chocolate",
    )
    await fake_discord.wait_for(lambda: probe_bot.received, what="the command")

    [values] = probe_bot.received
    assert (
        values["text"] == "hi"
        and values["count"] == 3
        and values["ratio"] == 1.5
        and values["loud"] is True
    )
    assert isinstance(values["who"], discord.Member) and values["who"].id == bob.id
    assert [r.name for r in values["who"].roles[1:]] == ["Moderator"]
    assert values["role"].id == mod.id and values["where"].id == videos.id
    assert values["flavour"] == "chocolate"


async def test_subcommand_groups_resolve(fake_discord: FakeDiscord, probe_bot: ProbeBot) -> None:
    alice = fake_discord.member("alice")
    await alice.slash("clip make", prompt="a horse")
    await alice.slash("clip edit trim", start=2)
    await fake_discord.wait_for(lambda: len(probe_bot.received) == 2, what="both commands")

    assert probe_bot.received == [
        {"path": "clip make", "prompt": "a horse", "seconds": 5},
        {"path": "clip edit trim", "start": 2},
    ]


@pytest.mark.parametrize(
    ("command", "options", "problem"),
    [
        ("probe", {"count": 11}, "between 1 and 10"),
        ("probe", {"flavour": "mint"}, "must be one of"),
        ("probe", {"colour": "red"}, "has no option"),
        ("clip make", {}, "needs option 'prompt'"),
        ("clip", {"prompt": "x"}, "needs a subcommand"),
        ("probe", {"picture": b"raw bytes"}, "takes an Upload"),
    ],
)
async def test_what_the_discord_client_would_not_send_is_refused(
    fake_discord: FakeDiscord,
    probe_bot: ProbeBot,
    command: str,
    options: dict[str, Any],
    problem: str,
) -> None:
    with pytest.raises(OptionRejected, match=problem):
        await fake_discord.member("alice").slash(command, **options)
    assert fake_discord.interactions == {}


async def test_default_permissions_hide_a_command(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    with pytest.raises(CommandHidden):
        await fake_discord.member("alice").slash("admin")
    with pytest.raises(CommandNotFound):
        await fake_discord.member("alice").slash("nope")

    mod = fake_discord.member("mod", permissions=discord.Permissions(manage_guild=True))
    reply = await (await mod.slash("admin")).reply()
    assert reply.content == "received ['admin']"


async def test_members_cannot_use_commands_in_a_channel_they_cannot_see(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    staff = fake_discord.channel("staff")
    staff.set_permissions(fake_discord.guild.everyone, deny=discord.Permissions(view_channel=True))
    alice = fake_discord.member("alice")

    with pytest.raises(CommandHidden, match="#staff"):
        await alice.slash("probe", channel=staff)
    assert (await (await alice.slash("probe", channel="general")).reply()).content == "received []"


async def test_attachment_options_carry_discord_metadata_and_bytes(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    upload = Upload.image("horse.jpg", 800, 450)
    downloaded: list[bytes] = []

    async def read(interaction: Interaction, values: dict[str, Any]) -> None:
        downloaded.append(await values["picture"].read())
        await interaction.response.send_message("got it")

    probe_bot.behaviour = read
    await (await fake_discord.member("alice").slash("probe", picture=upload)).reply()

    picture = probe_bot.received[0]["picture"]
    assert isinstance(picture, discord.Attachment)
    assert (picture.filename, picture.content_type, picture.size) == (
        "horse.jpg",
        "image/jpeg",
        upload.size,
    )
    assert (picture.width, picture.height, picture.ephemeral) == (800, 450, True)
    assert downloaded == [upload.data]


async def test_buttons_update_their_message_and_survive_a_restart(
    fake_discord: FakeDiscord,
) -> None:
    async def post_buttons(interaction: Interaction, values: dict[str, Any]) -> None:
        view = button_view(ProbeButton(7, "Re-roll"), ProbeButton(8, "Delete"))
        await interaction.response.send_message("Job 7 is done", view=view)

    async def on_press(interaction: Interaction, values: dict[str, Any]) -> None:
        await interaction.response.edit_message(content=f"pressed {values['button']}", view=None)

    alice = fake_discord.member("alice")
    async with running_bot(fake_discord, ProbeBot(fake_discord.guild.id)) as first:
        first.behaviour = post_buttons
        message = await (await alice.slash("probe")).reply()
    assert [b.label for b in message.buttons] == ["Re-roll", "Delete"]
    assert message.button("Re-roll").custom_id == "probe:7"

    async with running_bot(fake_discord, ProbeBot(fake_discord.guild.id)) as second:
        second.behaviour = on_press
        press = await alice.press(message, "Re-roll")
        updated = await press.reply()

    assert updated is message
    assert (message.content, message.buttons) == ("pressed 7", [])
    assert second.received == [{"button": 7}]


async def test_a_deferred_update_then_an_edit_changes_the_pressed_message(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def behaviour(interaction: Interaction, values: dict[str, Any]) -> None:
        if "button" not in values:
            await interaction.response.send_message("ready", view=button_view(ProbeButton(1)))
            return
        await interaction.response.defer()
        await interaction.edit_original_response(content="working on it")

    probe_bot.behaviour = behaviour
    alice = fake_discord.member("alice")
    message = await (await alice.slash("probe")).reply()
    press = await alice.press(message, "Press 1")

    assert await press.reply() is message
    assert message.content == "working on it"
    assert press.followups == []


async def test_a_modal_opens_and_its_values_reach_the_bot(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def behaviour(interaction: Interaction, values: dict[str, Any]) -> None:
        if "button" in values:
            await interaction.response.send_modal(ProbeModal())
        elif "prompt" in values:
            await interaction.response.send_message(
                f"remixing: {values['prompt']} ({values['note']})"
            )
        else:
            await interaction.response.send_message(
                "done", view=button_view(ProbeButton(3, "Remix"))
            )

    probe_bot.behaviour = behaviour
    alice = fake_discord.member("alice")
    message = await (await alice.slash("probe")).reply()
    press = await alice.press(message, "Remix")
    modal = await press.opened_modal()

    assert modal.title == "Remix"
    assert [(f.label, f.required, f.value) for f in modal.fields] == [
        ("Prompt", True, None),
        ("Note", False, "keep the seed"),
    ]
    with pytest.raises(OptionRejected, match="required"):
        await alice.submit_modal(modal)
    with pytest.raises(OptionRejected, match="0 to 100 characters"):
        await alice.submit_modal(modal, {"Prompt": "x" * 101})

    submitted = await alice.submit_modal(modal, {"Prompt": "a faster horse"})
    reply = await submitted.reply()

    assert reply.content == "remixing: a faster horse (keep the seed)"


async def test_autocomplete_offers_the_bots_choices(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    choices = await fake_discord.member("alice").autocomplete("pick", "provider", "p")
    assert choices == [{"name": "pixeldojo", "value": "pixeldojo"}]


async def test_channel_posts_reply_and_mention_as_allowed(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def behaviour(interaction: Interaction, values: dict[str, Any]) -> None:
        message = await (await interaction.response.send_message("Job 9 queued")).resource.fetch()  # type: ignore[union-attr]
        channel = interaction.channel
        assert isinstance(channel, discord.TextChannel)
        await channel.send(f"{interaction.user.mention} your video is ready", reference=message)
        await channel.send(
            f"{interaction.user.mention} quietly", allowed_mentions=discord.AllowedMentions.none()
        )

    probe_bot.behaviour = behaviour
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    ix = await alice.slash("probe")
    quiet = await bob.wait_to_see(lambda m: "quietly" in m.content)

    job, ready = fake_discord.default_channel.visible[:2]
    assert ready.replies_to is job and ready.reference is not None
    assert ready.pings(alice) and not ready.pings(bob)
    assert not quiet.pings(alice)
    assert alice.pinged_in() == [ready]
    assert job.interaction is ix and ready.interaction is None
    sent = fake_discord.calls_to("POST /channels/{channel_id}/messages")
    assert int(sent[0].json["message_reference"]["message_id"]) == job.id


async def test_replying_to_a_missing_message_fails_like_discord(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    channel = probe_bot.get_channel(fake_discord.default_channel.id)
    assert isinstance(channel, discord.TextChannel)
    gone = discord.MessageReference(
        message_id=12345, channel_id=channel.id, fail_if_not_exists=True
    )
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send("reply", reference=gone)
    assert (caught.value.status, caught.value.code) == (400, 50035)

    lenient = discord.MessageReference(
        message_id=12345, channel_id=channel.id, fail_if_not_exists=False
    )
    sent = await channel.send("reply anyway", reference=lenient)
    assert sent.reference is None


async def test_bot_deletions_disappear_for_members(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    channel = probe_bot.get_channel(fake_discord.default_channel.id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("temporary")
    alice = fake_discord.member("alice")
    assert [m.content for m in alice.seen()] == ["temporary"]

    await sent.delete()

    assert alice.seen() == []
    assert fake_discord.messages[sent.id].deleted


async def test_files_posted_by_the_bot_are_served_by_the_cdn(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    channel = probe_bot.get_channel(fake_discord.channel("videos").id)
    assert isinstance(channel, discord.TextChannel)
    picture = Upload.image("thumbs.png", 300, 200)
    sent = await channel.send(file=discord.File(io.BytesIO(picture.data), "thumbs.png"))

    [stored] = fake_discord.channel("videos").files
    assert (stored.filename, stored.width, stored.height, stored.content_type) == (
        "thumbs.png",
        300,
        200,
        "image/png",
    )
    assert sent.attachments[0].url == stored.url
    async with aiohttp.ClientSession() as session, session.get(stored.url) as response:
        assert response.content_type == "image/png"
        assert await response.read() == picture.data


@pytest.mark.parametrize("is_global", [False, True])
async def test_429_carries_retry_after_and_discord_py_retries(
    fake_discord: FakeDiscord, probe_bot: ProbeBot, is_global: bool
) -> None:
    fake_discord.rate_limit(
        "POST /channels/{channel_id}/messages", retry_after=0.01, is_global=is_global
    )
    channel = probe_bot.get_channel(fake_discord.default_channel.id)
    assert isinstance(channel, discord.TextChannel)

    await channel.send("eventually")

    limited, sent = fake_discord.calls_to("POST /channels/{channel_id}/messages")
    assert (limited.status, sent.status) == (429, 200)
    assert limited.response == {
        "message": "You are being rate limited.",
        "retry_after": 0.01,
        "global": is_global,
    }
    assert [m.content for m in fake_discord.default_channel.visible] == ["eventually"]


async def test_followups_are_rate_limited_through_the_webhook_adapter(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    fake_discord.rate_limit("POST /webhooks/{application_id}/{token}", retry_after=0.01, times=2)

    async def behaviour(interaction: Interaction, values: dict[str, Any]) -> None:
        await interaction.response.defer()
        await interaction.followup.send("after two 429s")

    probe_bot.behaviour = behaviour
    reply = await (await fake_discord.member("alice").slash("probe")).reply()

    assert reply.content == "after two 429s"
    statuses = [c.status for c in fake_discord.calls_to("POST /webhooks/{application_id}/{token}")]
    assert statuses == [429, 429, 200]


async def test_member_messages_reach_the_bot_without_content_unless_intended(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    alice = fake_discord.member("alice")
    waiting = probe_bot.loop.create_task(probe_bot.wait_for("message", timeout=5))
    said = await alice.say("hello everyone")
    received = await waiting

    assert received.id == said.id and received.author.id == alice.id
    assert received.content == ""
    assert [m.content for m in fake_discord.member("bob").seen()] == ["hello everyone"]


async def test_select_menus_send_the_chosen_values(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    class Ratio(discord.ui.View):
        @discord.ui.select(
            custom_id="ratio",
            placeholder="Aspect ratio",
            options=[discord.SelectOption(label=r, value=r) for r in ("16:9", "9:16", "1:1")],
        )
        async def ratio(self, interaction: Interaction, select: discord.ui.Select[Ratio]) -> None:
            await interaction.response.send_message(f"ratio {select.values[0]}", ephemeral=True)

    async def offer(interaction: Interaction, values: dict[str, Any]) -> None:
        await interaction.response.send_message("choose", view=Ratio())

    probe_bot.behaviour = offer
    alice = fake_discord.member("alice")
    message = await (await alice.slash("probe")).reply()

    assert [o["value"] for o in message.selects[0].options] == ["16:9", "9:16", "1:1"]
    with pytest.raises(OptionRejected, match="offers"):
        await alice.choose(message, "Aspect ratio", ["4:3"])
    reply = await (await alice.choose(message, "Aspect ratio", ["9:16"])).reply()
    assert (reply.content, reply.ephemeral) == ("ratio 9:16", True)


async def test_a_wait_that_times_out_shows_what_the_member_saw(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def ignore(interaction: Interaction, values: dict[str, Any]) -> None:
        pass

    probe_bot.behaviour = ignore
    ix = await fake_discord.member("alice").slash("probe")
    await fake_discord.wait_for(lambda: probe_bot.received, what="the command")
    fake_discord.clock.advance(3.5)

    assert ix.failed
    with pytest.raises(WaitTimeout, match="did not respond in time"):
        await ix.reply(timeout=0.1)


async def test_without_embed_links_the_bots_channel_posts_lose_their_embeds(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    """Discord drops the embeds of a bot lacking Embed Links without an error (an
    embed-only message is then empty: 400 50006); interaction responses keep theirs."""
    general = fake_discord.default_channel
    general.set_permissions(fake_discord.bot_member, deny=discord.Permissions(embed_links=True))
    channel = probe_bot.get_channel(general.id)
    assert isinstance(channel, discord.TextChannel)

    sent = await channel.send("Job 7 is ready", embed=discord.Embed(title="Job 7"))
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send(embed=discord.Embed(title="Job 8"))

    assert sent.content == "Job 7 is ready" and sent.embeds == []
    assert general.last_message is not None and general.last_message.embeds == []
    assert (caught.value.status, caught.value.code) == (400, 50006)
    edited = await sent.edit(content="Job 7 is done", embed=discord.Embed(title="Job 7"))
    assert edited.embeds == []

    async def answer(interaction: Interaction, values: dict[str, Any]) -> None:
        await interaction.response.send_message(embed=discord.Embed(title="Job 9"))

    probe_bot.behaviour = answer
    reply = await (await fake_discord.member("alice").slash("probe")).reply()
    assert reply.embed is not None and reply.embed.title == "Job 9"


async def test_history_pages_as_discord_does(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    channel = probe_bot.get_channel(fake_discord.default_channel.id)
    assert isinstance(channel, discord.TextChannel)
    alice = fake_discord.member("alice")
    said = [await alice.say(f"message {n}") for n in range(150)]

    latest = [m.content async for m in channel.history(limit=3)]
    after = [m.content async for m in channel.history(limit=120, after=discord.Object(said[9].id))]
    before = [m.content async for m in channel.history(limit=2, before=discord.Object(said[9].id))]

    assert latest == ["message 149", "message 148", "message 147"]
    assert after == [f"message {n}" for n in range(10, 130)]  # next to it, over two pages
    assert before == ["message 8", "message 7"]
