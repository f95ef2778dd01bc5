"""The first answer comes before the database: members are acknowledged while the single
writer is busy, refusals after a public placeholder are seen by the member alone, and
reads that decide nothing new take no write."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from tests.bot.support import available, give_credits, holds
from tests.bot.test_video import finished_post
from tests.fakes.discord import Upload

CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE = 4, 5


@contextlib.contextmanager
def writer_held(database: Path) -> Iterator[None]:
    """Another process's write transaction on the bot's database: while it lasts, no
    write of the bot's can commit (reads still can: the database is in WAL mode)."""
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_video_is_acknowledged_before_any_credit_is_reserved(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)

    with writer_held(paddock.settings.database_path):
        asked = await alice.slash("video text", prompt="a horse in the snow")
        # acknowledged publicly while no reservation can be written: the answer came first
        assert await asked.acknowledgement() == DEFERRED_CHANNEL_MESSAGE
        assert asked.thinking and not asked.original.ephemeral

    card = await asked.reply()
    assert card is asked.original  # the job card replaced the placeholder
    assert not card.ephemeral and "a horse in the snow" in card.embed.description
    assert card.embed.fields[0].value.startswith("Queued")
    assert [h.amount for h in await holds(paddock)] == [70]
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.user.id)
    assert job.progress_message_id == card.id  # the runner edits the card, not a new one


async def test_a_refused_reservation_removes_the_placeholder_and_answers_privately(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 10)

    asked = await alice.slash("video text", prompt="a horse", duration=5)
    reply = await asked.reply()

    assert await asked.acknowledgement() == DEFERRED_CHANNEL_MESSAGE  # answered first
    assert reply.ephemeral
    assert "this needs 70 and your balance has 10 available" in reply.content
    assert asked.original.deleted  # the public placeholder is gone
    assert fake_discord.member("bob").seen() == []  # nobody else sees anything
    assert alice.seen() == [reply]
    assert await available(paddock, alice) == 10
    assert await holds(paddock) == []
    assert providers["joypix"].requests == []


async def test_a_bad_option_is_answered_at_once_without_a_placeholder(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)

    asked = await alice.slash("video image", prompt="x", image=Upload.image("tiny.png", 200, 200))
    reply = await asked.reply()

    assert await asked.acknowledgement() == CHANNEL_MESSAGE  # the refusal is the first answer
    assert reply.ephemeral and "shortest side must be at least 300 px" in reply.content
    assert fake_discord.member("bob").seen() == []


async def test_a_balance_with_no_refill_due_is_read_without_writing(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 40)
    first = await (await alice.slash("credits balance")).reply()  # creates and fills
    assert "**40 credits** available" in first.embed.description

    with writer_held(paddock.settings.database_path):  # a write would wait for it
        again = await (await alice.slash("credits balance")).reply()
        assert again.ephemeral
        assert "**40 credits** available" in again.embed.description


async def test_a_channel_change_is_seen_by_the_next_video_at_once(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    owner = fake_discord.owner
    videos = fake_discord.channel("videos")
    await give_credits(paddock, alice, 500)
    first = await (await alice.slash("video text", prompt="one", channel="general")).reply()
    assert not first.ephemeral  # allowed everywhere, and now known to the bot

    await (await owner.slash("quota channels", action="allow", video_channel=videos)).reply()
    refused = await (await alice.slash("video text", prompt="two", channel="general")).reply()
    assert refused.ephemeral
    assert refused.content == f"Videos aren't made in this channel. Use <#{videos.id}>."

    await (await owner.slash("quota channels", action="everywhere")).reply()
    again = await (await alice.slash("video text", prompt="three", channel="general")).reply()
    assert not again.ephemeral


async def test_a_reroll_is_acknowledged_before_the_job_is_read_or_reserved(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, alice, 200)
    await give_credits(paddock, bob, 10)  # too few for a second video
    await (await alice.slash("video text", prompt="a fox")).reply()
    post = await finished_post(fake_discord, alice)

    with writer_held(paddock.settings.database_path):
        pressed = await bob.press(post, "Re-roll")
        assert await pressed.acknowledgement() == DEFERRED_CHANNEL_MESSAGE
    reply = await pressed.reply()

    assert reply.ephemeral and "this needs 70 and your balance has 10 available" in reply.content
    assert pressed.original.deleted
    assert pressed.original not in alice.seen()  # nobody else sees the placeholder
    assert await available(paddock, bob) == 10
