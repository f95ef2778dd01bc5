"""Animate with HappyHorse and Use as reference: a message's Apps menu, as members use it."""

from __future__ import annotations

from tests.bot.support import available, give_credits, holds
from tests.bot.test_buttons_and_jobs import unsigned
from tests.bot.test_video import finished_post
from tests.fakes.discord import Upload


async def test_animate_makes_an_image_video_from_the_messages_first_picture(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, bob, 200)
    posted = await alice.say("my cat", files=[Upload.blob("notes.txt", 10),
                                              Upload.image("cat.png", 640, 480),
                                              Upload.image("dog.png", 640, 480)])

    registered = fake_discord.command("Animate with HappyHorse")
    assert (registered["type"], registered.get("contexts")) == (3, [0])  # messages, servers
    modal = await (await bob.use_app(posted, "Animate with HappyHorse")).opened_modal()
    assert modal.title == "Animate with HappyHorse"
    reply = await (await bob.submit_modal(
        modal, {"Prompt": "the cat yawns", "Duration (seconds)": "5"})).reply()

    assert not reply.ephemeral
    assert reply.embed.title == "🎬 Image to video"
    assert "the cat yawns" in reply.embed.description
    post = await finished_post(fake_discord, bob)
    [submit] = providers["joypix"].submits()
    [cat] = [a for a in posted.attachments if a.filename == "cat.png"]
    assert [unsigned(u) for u in submit.json["images"]] == [unsigned(cat.url)]
    assert submit.json["prompt"] == "the cat yawns"
    charged = int({f.name: f.value for f in post.embed.fields}["Credits charged"])
    assert charged == 70  # JoyPix 720p, 14 credits/s x 5 s
    assert await available(paddock, bob) == 200 - charged
    assert await holds(paddock) == []


async def test_use_as_reference_takes_up_to_nine_pictures_in_order(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)
    pictures = [Upload.image(f"p{n}.png", 640, 640) for n in range(10)]
    posted = await alice.say("mood board", files=pictures)

    modal = await (await alice.use_app(posted, "Use as reference")).opened_modal()
    reply = await (await alice.submit_modal(
        modal, {"Prompt": "[Image 1] walks past [Image 9]"})).reply()

    assert reply.embed.title == "🎬 Reference to video"
    await finished_post(fake_discord, alice)
    [submit] = providers["joypix"].submits()
    assert [unsigned(u) for u in submit.json["images"]] == [
        unsigned(a.url) for a in posted.attachments[:9]]


async def test_a_message_without_a_picture_is_refused_privately(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    posted = await alice.say("just words", files=[Upload.blob("notes.pdf", 100)])

    for command in ("Animate with HappyHorse", "Use as reference"):
        refused = await (await alice.use_app(posted, command)).reply()
        assert refused.ephemeral and "has no picture" in refused.content
    assert all(emulator.requests == [] for emulator in providers.values())


async def test_a_picture_the_provider_cannot_take_costs_nothing(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    posted = await alice.say("tiny", files=[Upload.image("tiny.png", 200, 200)])

    modal = await (await alice.use_app(posted, "Animate with HappyHorse")).opened_modal()
    refused = await (await alice.submit_modal(modal, {"Prompt": "grow"})).reply()
    assert refused.ephemeral and "shortest side must be at least 300 px" in refused.content

    modal = await (await alice.use_app(posted, "Animate with HappyHorse")).opened_modal()
    refused = await (await alice.submit_modal(
        modal, {"Prompt": "grow", "Duration (seconds)": "40"})).reply()
    assert refused.ephemeral and "from 3 to 15" in refused.content

    assert await available(paddock, alice) == 200
    assert await holds(paddock) == []
    assert all(emulator.requests == [] for emulator in providers.values())
