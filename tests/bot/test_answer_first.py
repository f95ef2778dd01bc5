"""The first answer comes before the database: members are acknowledged while the single
writer is busy, refusals after a public placeholder are seen by the member alone, and
reads that decide nothing new take no write."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from tests.bot.support import RESERVING, available, decided, give_credits, holds
from tests.bot.test_video import finished_post
from tests.fakes.discord import Message, Upload

CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE = 4, 5
EPHEMERAL = 1 << 6


def fields(message: Message) -> dict[str, str]:
    return {f.name: f.value for f in message.embed.fields}


def first_answer_held(fake_discord, member):
    """The fake Discord holds `member`'s first answer (its interaction callback) until
    released: a command still on its way to its first answer."""
    return fake_discord.hold("POST /interactions/{interaction_id}/{token}/callback",
                             lambda call: f"<@{member.user.id}>" in json.dumps(call.json))


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


async def test_the_job_card_is_the_first_answer_before_any_credit_is_reserved(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)

    with writer_held(paddock.settings.database_path):
        asked = await alice.slash("video text", prompt="a horse in the snow", seed=7)
        # answered with the job card itself while no reservation can be written
        assert await asked.acknowledgement() == CHANNEL_MESSAGE
        card = await asked.reply()
        assert card is asked.original and not card.ephemeral
        assert "a horse in the snow" in card.embed.description
        shown = fields(card)
        assert shown["Status"] == RESERVING
        assert shown["Settings"] == "720p · 16:9 · 5 s · seed 7"  # the provider's default shape
        assert shown["Cost"] == "70 credits"  # the price table's estimate, from memory
        assert shown["Requested by"] == f"<@{alice.user.id}>"
        assert await holds(paddock) == []  # nothing reserved yet
        assert await paddock.services.jobs.list_for_member(
            fake_discord.guild.id, alice.user.id) == []

    assert await decided(asked) is card  # the reservation fills the same card in
    assert fields(card)["Status"].startswith("Queued")
    assert fields(card)["Cost"] == "70 credits (130 left)"
    assert [h.amount for h in await holds(paddock)] == [70]
    [job] = await paddock.services.jobs.list_for_member(fake_discord.guild.id, alice.user.id)
    assert job.progress_message_id == card.id  # the runner edits the card, not a new one
    assert card.embed.footer.text == f"Job {job.id}"  # the id shown from the first answer
    assert [v["embeds"][0]["footer"]["text"] for v in card.versions][:1] == [f"Job {job.id}"]


async def test_an_auto_routed_card_shows_the_first_provider_and_the_held_price_at_once(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)

    with writer_held(paddock.settings.database_path):
        asked = await alice.slash("video text", prompt="a kite", provider="auto")
        card = await asked.reply()
        reserving = fields(card)
    assert reserving["Status"] == RESERVING
    settled = fields(await decided(asked))
    # the same estimate before and after the reservation, only the balance added
    assert settled["Cost"].startswith(reserving["Cost"] + " (")
    assert "chosen automatically" in reserving["Cost"]


async def test_a_refused_reservation_removes_the_card_and_answers_privately(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 10)

    asked = await alice.slash("video text", prompt="a horse", duration=5)
    reply = await decided(asked)

    assert await asked.acknowledgement() == CHANNEL_MESSAGE  # the card came first
    assert fields(asked.original)["Status"] == RESERVING
    assert reply.ephemeral
    assert "this needs 70 and your balance has 10 available" in reply.content
    assert asked.original.deleted  # the public card is gone
    assert fake_discord.member("bob").seen() == []  # nobody else sees anything now
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
    first = await decided(await alice.slash("video text", prompt="one", channel="general"))
    assert not first.ephemeral  # allowed everywhere, and now known to the bot

    await (await owner.slash("quota channels", action="allow", video_channel=videos)).reply()
    refused = await decided(await alice.slash("video text", prompt="two", channel="general"))
    assert refused.ephemeral
    assert refused.content == f"Videos aren't made in this channel. Use <#{videos.id}>."

    await (await owner.slash("quota channels", action="everywhere")).reply()
    again = await decided(await alice.slash("video text", prompt="three", channel="general"))
    assert not again.ephemeral


async def test_a_reroll_is_acknowledged_before_the_job_is_read_or_reserved(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, alice, 200)
    await give_credits(paddock, bob, 10)  # too few for a second video
    await decided(await alice.slash("video text", prompt="a fox"))
    post = await finished_post(fake_discord, alice)

    with writer_held(paddock.settings.database_path):
        pressed = await bob.press(post, "Re-roll")
        assert await pressed.acknowledgement() == DEFERRED_CHANNEL_MESSAGE
    reply = await pressed.reply()

    assert reply.ephemeral and "this needs 70 and your balance has 10 available" in reply.content
    assert pressed.original.deleted
    assert pressed.original not in alice.seen()  # nobody else sees the placeholder
    assert await available(paddock, bob) == 10


async def test_the_bot_is_not_sent_its_own_job_cards_back(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    await decided(await alice.slash("video text", prompt="a horse"))
    post = await finished_post(fake_discord, alice)  # the card posted, edited, then the video
    assert post.attachments

    [session] = fake_discord.gateway.live_sessions()
    events = {json.loads(frame)["t"] for _, frame in session.sent}
    assert "INTERACTION_CREATE" in events
    # its own posts and edits would each come back to be parsed, with nothing to learn
    assert not events & {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"}


async def test_in_a_burst_a_reservation_waits_for_the_next_members_first_answer(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    for member in (alice, bob):
        await give_credits(paddock, member, 200)
    answering = paddock.get_cog("Video").answering
    answering.patience = 60  # the wait below ends by bob's answer, never by patience

    slow_alice = first_answer_held(fake_discord, alice)
    slow_bob = first_answer_held(fake_discord, bob)
    alices = await alice.slash("video text", prompt="a fox")
    bobs = await bob.slash("video text", prompt="an owl")
    # both commands are on their way to their first answer: a burst of two
    await fake_discord.wait_for(lambda: slow_alice.call and slow_bob.call)
    slow_alice.release()
    card = await alices.reply()
    # alice's reservation either waits for bob's answer, or (without the order) goes on
    await fake_discord.wait_for(
        lambda: answering.waiting == 1 or fields(card)["Status"] != RESERVING)
    assert fields(card)["Status"] == RESERVING and await holds(paddock) == []

    slow_bob.release()  # bob has his answer: alice's reservation goes on
    assert fields(await decided(alices))["Status"].startswith("Queued")
    assert fields(await decided(bobs))["Status"].startswith("Queued")


async def test_in_a_burst_a_reservation_waits_for_a_private_acknowledgement_too(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, alice, 200)
    answering = paddock.get_cog("Video").answering
    answering.patience = 60  # the wait below ends by bob's answer, never by patience
    slow_bob = fake_discord.hold(
        "POST /interactions/{interaction_id}/{token}/callback",
        lambda call: call.json.get("type") == DEFERRED_CHANNEL_MESSAGE
        and bool((call.json.get("data") or {}).get("flags", 0) & EPHEMERAL))

    bobs = await bob.slash("credits balance")
    await fake_discord.wait_for(lambda: slow_bob.call)  # on its way to its first answer
    alices = await alice.slash("video text", prompt="a fox")
    card = await alices.reply()
    # alice's reservation waits for bob's acknowledgement, or (without the order) goes on
    await fake_discord.wait_for(
        lambda: answering.waiting == 1 or fields(card)["Status"] != RESERVING)
    assert fields(card)["Status"] == RESERVING and await holds(paddock) == []

    slow_bob.release()  # bob is acknowledged: alice's reservation goes on
    assert fields(await decided(alices))["Status"].startswith("Queued")
    assert (await bobs.reply()).ephemeral


async def test_in_a_burst_a_balance_waits_for_the_next_members_first_answer(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, alice, 200)
    await give_credits(paddock, bob, 30)
    answering = paddock.get_cog("Video").answering
    answering.patience = 60  # the wait below ends by alice's answer, never by patience
    slow_alice = first_answer_held(fake_discord, alice)

    alices = await alice.slash("video text", prompt="a fox")
    await fake_discord.wait_for(lambda: slow_alice.call)  # on its way to its first answer
    bobs = await bob.slash("credits balance")
    # bob is acknowledged at once; his balance (a read, then the answer that replaces the
    # placeholder) waits for alice's card, or (without the order) goes on
    await fake_discord.wait_for(
        lambda: answering.waiting == 1
        or any(not m.thinking for m in bobs.answered))
    assert bobs.thinking and bobs.original.ephemeral
    assert [m for m in bobs.answered if not m.thinking] == []

    slow_alice.release()  # alice has her card: bob's balance goes on
    balance = await bobs.reply()
    assert balance.ephemeral and balance.embed.title == "Your credits"
    assert balance.embed.description.startswith("**30 credits** available")
    assert fields(await decided(alices))["Status"].startswith("Queued")


async def test_a_balance_held_behind_a_first_answer_that_never_comes_is_sent_after_the_patience(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, alice, 200)
    await give_credits(paddock, bob, 30)
    paddock.get_cog("Video").answering.patience = 0.05
    stuck_alice = first_answer_held(fake_discord, alice)

    alices = await alice.slash("video text", prompt="a fox")
    await fake_discord.wait_for(lambda: stuck_alice.call)  # her card never reaches Discord
    bobs = await bob.slash("credits balance")
    balance = await bobs.reply()  # bob's balance does not wait for it past the patience
    assert balance.ephemeral and balance.embed.description.startswith("**30 credits**")
    assert not alices.answered
    stuck_alice.release()


async def test_in_a_burst_a_delete_waits_for_the_next_members_first_answer(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, alice, 200)
    await give_credits(paddock, bob, 200)
    await decided(await bob.slash("video text", prompt="a hare"))
    post = await finished_post(fake_discord, bob)
    answering = paddock.get_cog("Video").answering
    answering.patience = 60  # the wait below ends by alice's answer, never by patience
    slow_alice = first_answer_held(fake_discord, alice)

    alices = await alice.slash("video text", prompt="a fox")
    await fake_discord.wait_for(lambda: slow_alice.call)  # on its way to its first answer
    pressed = await bob.press(post, "Delete")
    # bob is acknowledged at once; the delete (a read, the post removed, "Deleted.") waits
    # for alice's card, or (without the order) goes on
    await fake_discord.wait_for(
        lambda: answering.waiting == 1 or any(not m.thinking for m in pressed.answered))
    assert pressed.thinking and pressed.original.ephemeral
    assert [m for m in pressed.answered if not m.thinking] == [] and not post.deleted

    slow_alice.release()  # alice has her card: bob's delete goes on
    assert (await pressed.reply()).content == "Deleted."
    assert post.deleted
    assert fields(await decided(alices))["Status"].startswith("Queued")
