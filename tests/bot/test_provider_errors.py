"""A provider that cannot be reached: members read a plain reason, the log keeps where and
why (addresses and OS errors are for the bot's owner, not for a public channel)."""

from __future__ import annotations

import dataclasses
import logging
import socket

import pytest

from hh_api import ProviderConfig
from tests.bot.support import available, decided, give_credits, holds
from tests.bot.test_video import finished_post


@pytest.fixture
def closed_port():
    """A port bound but never listening: connections are refused, and no server started
    during the test can take it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture
def paddock_settings(paddock_settings, closed_port):
    """JoyPix points at a port nobody listens on."""
    providers = dict(paddock_settings.providers)
    providers["joypix"] = ProviderConfig("joypix", api_key="joypix-key",
                                         base_url=f"http://127.0.0.1:{closed_port}")
    # one delivery attempt: a video that cannot be fetched is given up on at once
    runner = dataclasses.replace(paddock_settings.runner, delivery_attempts=1)
    return dataclasses.replace(paddock_settings, providers=providers, runner=runner)


def everything_shown(fake_discord) -> str:
    """Every text any member can read on the server, each message in every version."""
    channel = fake_discord.channel("general")
    return "\n".join(
        [message.text for message in channel.messages]
        + [str(version) for message in channel.messages for version in message.versions]
    )


async def test_an_unreachable_provider_is_explained_without_its_address(
    fake_discord, paddock, providers, caplog, closed_port
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    with caplog.at_level(logging.INFO):
        await decided(await alice.slash("video text", prompt="a horse"))
        post = await finished_post(fake_discord, alice)

    reason = {f.name: f.value for f in post.embed.fields}["What happened"]
    assert reason == "Could not reach JoyPix; it may be down. Try again later."
    shown = everything_shown(fake_discord)
    assert "127.0.0.1" not in shown and str(closed_port) not in shown
    assert "Connect call failed" not in shown and "Errno" not in shown
    assert await available(paddock, alice) == 200
    assert await holds(paddock) == []
    # the owner's log has the address
    refused = [r.getMessage() for r in caplog.records if "submit refused" in r.getMessage()]
    assert len(refused) == 1 and f"127.0.0.1:{closed_port}" in refused[0]


async def test_a_dropped_submit_is_explained_without_details(
    fake_discord, paddock, providers, caplog
) -> None:
    wavespeed = providers["wavespeed"]  # takes no idempotency key: a dropped submit is not resent
    wavespeed.fault("drop", on="submit")
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)
    with caplog.at_level(logging.INFO):
        await decided(await alice.slash("video text", prompt="a horse", provider="wavespeed"))
        post = await finished_post(fake_discord, alice)

    reason = {f.name: f.value for f in post.embed.fields}["What happened"]
    assert reason == (
        "The connection to WaveSpeedAI broke while this job was being sent, so it is not "
        "known whether it arrived. To be sure you are never charged twice it was not sent "
        "again; your credits were returned. Please run the command again."
    )
    assert "disconnected" not in everything_shown(fake_discord).lower()
    assert len(wavespeed.submits()) == 1
    assert await available(paddock, alice) == 500
    refused = [r.getMessage() for r in caplog.records if "failed, refunded" in r.getMessage()]
    assert len(refused) == 1 and "disconnected" in refused[0].lower()


async def test_a_video_link_that_cannot_be_reached_is_explained_without_the_error(
    fake_discord, paddock, providers, caplog, closed_port
) -> None:
    wavespeed = providers["wavespeed"]
    # the provider's finished video sits on a host nobody answers on
    wavespeed.video_url = lambda task_id: f"http://127.0.0.1:{closed_port}/{task_id}.mp4"
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 500)
    with caplog.at_level(logging.INFO):
        reply = await decided(await alice.slash("video text", prompt="a horse",
                                                provider="wavespeed"))
        await fake_discord.wait_for(lambda: "Not posted" in reply.text, timeout=30)
        await paddock.runner.wait_idle()

    shown = everything_shown(fake_discord) + "\n".join(m.text for m in alice.seen())
    assert "could not fetch the video: the video could not be downloaded: the connection " \
           "failed" in reply.text
    for detail in ("Cannot connect", "Connect call failed", "ssl:default", "Errno"):
        assert detail not in shown
    assert await available(paddock, alice) == 500  # nothing posted: the charge came back
    fetched = [r.getMessage() for r in caplog.records
               if "could not fetch the video" in r.getMessage()]
    assert any(f"127.0.0.1:{closed_port}" in line for line in fetched)
