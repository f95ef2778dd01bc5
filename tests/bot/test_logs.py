"""`python bot.py`'s log: a job's life can be followed by its id, and no secret is ever printed.

The bot runs as a subprocess at PADDOCK_LOG_LEVEL=DEBUG (the chattiest level) with a
distinctive Discord token, provider keys and HiAPI webhook secret, through a success with
a retried provider fault, a refused key and a failed render, and signed and forged HiAPI
callbacks. Members' interaction tokens must not show either.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import time

import aiohttp

from hh_api import sign_hiapi
from tests.bot.side_door_support import free_port
from tests.bot.support import decided
from tests.bot.test_restarts import grant
from tests.fakes.discord import FakeDiscord, bot_process
from tests.fakes.providers import emulators

TOKEN = "MTIzNDU2Nzg5.discord-token-never-printed.Zx81"
KEYS = {name: f"sk-{name}-key-never-printed-4f2a" for name in
        ("joypix", "wavespeed", "pixeldojo", "hiapi")}
WEBHOOK_SECRET = "whsec-webhook-secret-never-printed-77"


def job_lines(output: str, job_id: str) -> list[str]:
    return [line for line in output.splitlines() if f"job={job_id} " in line]


async def test_a_jobs_life_is_in_the_log_and_no_secret_is(tmp_path) -> None:
    database = tmp_path / "paddock.db"
    port = free_port()
    async with FakeDiscord(token=TOKEN) as fake, emulators(KEYS) as emus:
        alice = fake.member("alice")
        await grant(database, fake.guild.id, alice.user.id, 500)
        env = {
            "DATABASE_PATH": str(database),
            "PADDOCK_POLL_SECONDS": "0.02",
            "HH_PROVIDER": "joypix",
            "PADDOCK_HTTP_PORT": str(port),
            "HIAPI_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PADDOCK_LOG_LEVEL": "DEBUG",
        }
        for name, emulator in emus.items():
            env[f"{name.upper()}_API_KEY"] = emulator.api_key
            env[f"{name.upper()}_BASE_URL"] = emulator.base_url
        emus["joypix"].fault(500, on="status")  # retried, then the video arrives
        emus["wavespeed"].fault(401, on="submit")  # the key is refused: the job fails
        emus["hiapi"].fail_with = "content policy"  # the render fails at the provider

        async with bot_process(fake, env=env) as bot:
            for provider in ("joypix", "wavespeed", "hiapi"):
                await decided(await alice.slash("video text", prompt=f"a {provider} horse",
                                                provider=provider))
            channel = fake.channel("general")
            await fake.wait_for(
                lambda: len([m for m in channel.visible if m.pings(alice) and m.embeds]) == 3,
                timeout=30)
            with sqlite3.connect(database) as db:
                jobs = dict(db.execute("SELECT provider, id FROM jobs"))
            member = f"member={alice.user.id}"
            for provider, job_id in jobs.items():
                await bot.wait_for_output(f"job={job_id} {member} provider={provider} delivered")
            [task_id] = emus["hiapi"].tasks
            body = json.dumps({"data": {"taskId": task_id, "status": "fail"}}).encode()
            async with aiohttp.ClientSession() as session:
                for secret in (WEBHOOK_SECRET, "forged"):
                    stamp = str(int(time.time()))
                    headers = {"X-HiAPI-Timestamp": stamp,
                               "X-HiAPI-Signature": sign_hiapi(secret, stamp, body)}
                    url = f"http://127.0.0.1:{port}/callbacks/hiapi"
                    async with session.post(url, data=body, headers=headers) as answer:
                        assert answer.status == (200 if secret == WEBHOOK_SECRET else 401)
            assert await bot.stop(signal.SIGTERM) == 0
        output = bot.output

    interaction_tokens = list(fake.interactions_by_token)
    assert len(interaction_tokens) == 3
    for secret in (TOKEN, WEBHOOK_SECRET, *KEYS.values(), *interaction_tokens):
        assert secret not in output
    assert re.search(r" DEBUG +hh_api\.http: ", output)  # PADDOCK_LOG_LEVEL took effect

    joypix = job_lines(output, jobs["joypix"])
    assert all(f"{member} provider=joypix" in line for line in joypix)
    assert [_event(line) for line in joypix] == [
        "accepted", "submitted", "rendering", "succeeded", "delivered"]
    assert re.search(r" WARNING +hh_api\.http: provider=joypix status: retry 1 of 3 .*HTTP 500",
                     output)

    wavespeed = job_lines(output, jobs["wavespeed"])
    assert [_event(line) for line in wavespeed] == ["accepted", "submit refused", "delivered"]
    refused = wavespeed[1]
    assert " ERROR " in refused and "refused the API key (HTTP 401)" in refused

    hiapi = job_lines(output, jobs["hiapi"])
    assert [_event(line) for line in hiapi] == [
        "accepted", "submitted", "rendering", "failed at the provider", "failed", "delivered"]
    assert "content policy" in hiapi[3]
    assert f"provider=hiapi task={task_id} callback received" in output
    assert "provider=hiapi callback refused" in output and "signature is wrong" in output


EVENTS = ("accepted", "submitted", "rendering", "succeeded", "submit refused",
          "failed at the provider", "failed", "delivered")


def _event(line: str) -> str:
    """Which life event a job's log line records (the first match, in EVENTS' order)."""
    message = line.split(" provider=", 1)[1]
    return next(event for event in EVENTS if f" {event}" in message)

