"""The buttons on a finished video, and /jobs, as members use them."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from tests.bot.support import available, decided, give_credits, holds
from tests.bot.test_video import finished_post
from tests.fakes.discord import Upload


@pytest.mark.both_backends
async def test_reroll_charges_whoever_presses_and_keeps_the_settings_with_a_new_seed(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, alice, 200)
    await give_credits(paddock, bob, 200)
    await decided(await alice.slash("video text", prompt="a fox", resolution="1080p", duration=3,
                                    aspect_ratio="9:16", seed=11))
    post = await finished_post(fake_discord, alice)

    reply = await (await bob.press(post, "Re-roll")).reply()

    assert not reply.ephemeral
    assert f"<@{bob.user.id}>" in {f.name: f.value for f in reply.embed.fields}["Requested by"]
    await finished_post(fake_discord, bob)
    first, second = (s.json for s in providers["joypix"].submits())
    assert {k: v for k, v in first.items() if k != "seed"} == {
        k: v for k, v in second.items() if k != "seed"}
    assert second["resolution"] == "1080p" and second["aspect_ratio"] == "9:16"
    assert first["seed"] == 11 and second["seed"] != 11
    assert await available(paddock, alice) == 200 - 72  # 24 credits/s x 3 s
    assert await available(paddock, bob) == 200 - 72


def unsigned(url: str) -> str:
    """A Discord attachment link without its signature (refreshed links are re-signed)."""
    return url.split("?", 1)[0]


@pytest.mark.both_backends
async def test_remix_changes_only_the_prompt(fake_discord, paddock, providers) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)
    await decided(await alice.slash("video reference", prompt="[Image 1] walks",
                                    image1=Upload.image("knight.png", 640, 640),
                                    aspect_ratio="1:1", provider="wavespeed"))
    post = await finished_post(fake_discord, alice)
    assert any(a.filename == "references.png" for a in post.attachments)  # the sheet

    modal = await (await alice.press(post, "Remix")).opened_modal()
    assert modal.fields[0].value == "[Image 1] walks"
    reply = await (await alice.submit_modal(modal, {"Prompt": "[Image 1] dances"})).reply()

    assert "[Image 1] dances" in reply.embed.description
    await fake_discord.wait_for(lambda: len(providers["wavespeed"].submits()) == 2)
    first, second = (s.json for s in providers["wavespeed"].submits())
    assert second["prompt"] == "[Image 1] dances"
    assert [unsigned(u) for u in second["images"]] == [unsigned(u) for u in first["images"]]
    assert second["aspect_ratio"] == "1:1"


@pytest.mark.both_backends
async def test_a_remix_to_an_invisible_prompt_is_refused_and_costs_nothing(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)
    await decided(await alice.slash("video text", prompt="a horse"))
    post = await finished_post(fake_discord, alice)
    left = await available(paddock, alice)

    modal = await (await alice.press(post, "Remix")).opened_modal()
    reply = await (await alice.submit_modal(modal, {"Prompt": "\u200b\u2060\ufe0f"})).reply()

    assert reply.ephemeral
    assert "the prompt has no visible characters" in reply.content
    assert await available(paddock, alice) == left
    assert len(providers["joypix"].submits()) == 1
    assert len(await paddock.services.jobs.list_for_member(fake_discord.guild.id,
                                                            alice.user.id)) == 1


@pytest.mark.both_backends
async def test_delete_is_for_the_member_who_asked_or_a_moderator(
    fake_discord, paddock, providers
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, alice, 100)
    await decided(await alice.slash("video text", prompt="x"))
    post = await finished_post(fake_discord, alice)

    refused = await (await bob.press(post, "Delete")).reply()
    assert refused.ephemeral and "Only the member who asked" in refused.content
    assert not post.deleted

    await (await alice.press(post, "Delete")).reply()
    assert post.deleted
    assert await available(paddock, alice) == 30  # deleting does not refund a made video


@pytest.mark.both_backends
async def test_jobs_list_shows_a_members_own_jobs(fake_discord, paddock, providers) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await give_credits(paddock, alice, 100)
    empty = await (await alice.slash("jobs list")).reply()
    assert empty.ephemeral and "no jobs yet" in empty.content
    await decided(await alice.slash("video text", prompt="a quiet lake"))
    await finished_post(fake_discord, alice)
    await paddock.runner.wait_idle()

    listing = await (await alice.slash("jobs list")).reply()
    assert listing.ephemeral
    assert "a quiet lake" in listing.embed.description
    assert "**done**" in listing.embed.description
    assert "no jobs yet" in (await (await bob.slash("jobs list")).reply()).content


@pytest.mark.both_backends
async def test_a_queued_job_can_be_cancelled_and_its_credits_return(
    fake_discord, paddock, providers
) -> None:
    paddock.runner.settings = dataclasses.replace(paddock.runner.settings, provider_slots=1)
    emulator = providers["joypix"]
    emulator.steps = ["pending"] * 100000  # the first job holds the only slot
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    await decided(await alice.slash("video text", prompt="first"))
    await emulator.wait_for_requests("status", 1)  # the first job is at the provider
    second = await decided(await alice.slash("video text", prompt="second"))
    assert "position 1" in {f.name: f.value for f in second.embed.fields}["Status"]

    choices = await alice.autocomplete("jobs cancel", "job", "")
    [(name, job_id)] = [(c["name"], c["value"]) for c in choices]
    assert "second" in name

    answer = await (await alice.slash("jobs cancel", job=job_id)).reply()
    assert answer.ephemeral and "70 credits are back" in answer.content
    assert await available(paddock, alice) == 200 - 70  # only the first job is held
    await fake_discord.wait_for(lambda: "Cancelled" in second.embed.fields[0].value)

    [first_job] = [j for j in await paddock.services.jobs.list_for_member(
        fake_discord.guild.id, alice.user.id) if j.id != job_id]
    refused = await (await alice.slash("jobs cancel", job=first_job.id)).reply()
    assert "can no longer be cancelled" in refused.content
    assert len(emulator.submits()) == 1
    assert [h.job_id for h in await holds(paddock)] == [first_job.id]


async def test_a_cancel_that_cannot_be_stored_leaves_the_job_in_line(
    fake_discord, paddock, providers
) -> None:
    paddock.runner.settings = dataclasses.replace(paddock.runner.settings, provider_slots=1)
    emulator = providers["joypix"]
    emulator.steps = ["pending"] * 100000  # the first job holds the only slot
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    await decided(await alice.slash("video text", prompt="first"))
    await emulator.wait_for_requests("status", 1)
    await decided(await alice.slash("video text", prompt="second"))
    [waiting] = [j for j in await paddock.services.jobs.list_for_member(
        fake_discord.guild.id, alice.user.id) if j.request["prompt"] == "second"]

    # Another process holds SQLite's write lock past the busy timeout: the cancel
    # cannot be stored, and the job must stay in line rather than lose its driver.
    blocker = sqlite3.connect(paddock.settings.database_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        answer = await (await alice.slash("jobs cancel", job=waiting.id)).reply()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert answer.ephemeral and "try again" in answer.content.lower()

    [first] = emulator.tasks
    emulator.finish(first)  # the slot frees: the job still in line goes to the provider
    await fake_discord.wait_for(lambda: len(emulator.submits()) == 2, timeout=30)
    assert emulator.submits()[1].json["prompt"] == "second"
