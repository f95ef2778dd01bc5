"""The side door over real HTTP: /healthz and what makes it fail, /metrics after real jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import sqlite3

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from tests.bot.side_door_support import free_port, get, metric_samples, post, sample
from tests.bot.support import decided, give_credits
from tests.bot.test_delivery import start_job
from tests.fakes.discord import bot_process


@pytest.fixture
def paddock_settings(paddock_settings):
    """Every provider, fast polls, and the side door on a free port (no webhook secret)."""
    return dataclasses.replace(paddock_settings, http_port=free_port())


async def test_healthz_is_200_when_all_is_well(paddock) -> None:
    status, body, _ = await get(paddock, "/healthz")
    assert status == 200
    assert body == {"status": "ok",
                    "checks": {"gateway": "ok", "database": "ok", "runner": "ok"}}
    probed = await paddock.services.store.read(
        lambda db: db.execute("SELECT COUNT(*) FROM health_probe").fetchone()[0])
    assert probed == 1  # the database check really wrote


async def test_healthz_is_503_when_the_runner_is_stopped(paddock) -> None:
    await paddock.runner.stop()
    status, body, _ = await get(paddock, "/healthz")
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["runner"] == "the runner is not running (not started yet, or stopped)"
    assert (body["checks"]["gateway"], body["checks"]["database"]) == ("ok", "ok")


async def test_healthz_is_503_while_the_database_takes_no_writes(paddock) -> None:
    paddock.side_door.health.write_timeout = 0.2
    other = sqlite3.connect(paddock.settings.database_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        status, body, _ = await get(paddock, "/healthz")
        assert status == 503
        assert body["checks"]["database"] == "a write did not commit within 0.2 s"
        assert (body["checks"]["gateway"], body["checks"]["runner"]) == ("ok", "ok")
    finally:
        other.execute("ROLLBACK")
        other.close()
    status, body, _ = await get(paddock, "/healthz")
    assert (status, body["checks"]["database"]) == (200, "ok")


async def test_healthz_is_503_when_the_gateway_is_down(fake_discord, paddock) -> None:
    status, _, _ = await get(paddock, "/healthz")
    assert status == 200
    disconnected = asyncio.ensure_future(paddock.wait_for("disconnect", timeout=5))
    await fake_discord.stop()  # Discord is gone: the socket closes and nothing answers
    await disconnected
    status, body, _ = await get(paddock, "/healthz")
    assert status == 503
    assert body["checks"] == {"gateway": "not connected to Discord", "database": "ok",
                              "runner": "ok"}


async def test_callbacks_are_not_served_without_a_webhook_secret(paddock) -> None:
    status, _ = await post(paddock, "/callbacks/hiapi", b"{}")
    assert status == 404


async def test_metrics_count_jobs_credits_and_provider_calls(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    joypix, wavespeed = providers["joypix"], providers["wavespeed"]
    joypix.fault(503, on="status")  # retried: one error, then the job goes on
    wavespeed.fail_with = "content policy"

    await decided(await alice.slash("video text", prompt="a lighthouse"))
    await decided(await alice.slash("video text", prompt="a bridge", provider="wavespeed"))
    channel = fake_discord.channel("general")
    await fake_discord.wait_for(
        lambda: len([m for m in channel.visible if m.pings(alice) and m.embeds]) == 2)
    await paddock.runner.wait_idle()

    status, text, headers = await get(paddock, "/metrics")
    assert status == 200 and headers["Content-Type"] == CONTENT_TYPE_LATEST
    samples = metric_samples(text)

    jobs = {labels: value for (name, labels), value in samples.items() if name == "paddock_jobs"}
    assert {dict(labels)["provider"] for labels in jobs} == {"joypix", "wavespeed"}
    assert sample(samples, "paddock_jobs", state="delivered", provider="joypix") == 1
    assert sample(samples, "paddock_jobs", state="delivered", provider="wavespeed") == 1
    assert sum(jobs.values()) == 2

    ledger = paddock.services.ledger
    settled = await ledger.holds(state="settled")
    refunded = await ledger.holds(state="refunded")
    assert ([h.charged for h in settled], [h.amount for h in refunded]) == ([70], [70])
    assert sample(samples, "paddock_credits_reserved_total") == 140
    assert sample(samples, "paddock_credits_settled_total") == sum(h.charged for h in settled)
    assert sample(samples, "paddock_credits_refunded_total") == sum(h.amount for h in refunded)
    assert sample(samples, "paddock_credits_held") == 0

    def attempts(provider: str, call: str) -> float | None:
        return sample(samples, "paddock_provider_request_seconds_count",
                      provider=provider, call=call)

    downloads = [r for r in joypix.requests if r.kind == "file"]
    assert attempts("joypix", "submit") == len(joypix.submits()) == 1
    assert attempts("joypix", "status") == len(joypix.polls())
    assert attempts("joypix", "download") == len(downloads) == 1
    assert attempts("wavespeed", "submit") == 1
    assert attempts("wavespeed", "status") == len(wavespeed.polls())
    errors = {labels: value for (name, labels), value in samples.items()
              if name == "paddock_provider_errors_total"}
    assert errors == {
        frozenset({("provider", "joypix"), ("call", "status"), ("error", "unavailable")}): 1
    }
    assert sample(samples, "paddock_jobs_in_flight") == 0
    assert sample(samples, "paddock_queue_length", provider="joypix") == 0


async def test_a_video_that_reached_no_one_is_counted_undelivered_not_delivered(
    fake_discord, paddock, providers
) -> None:
    emulator = providers["joypix"]
    alice = fake_discord.member("alice")
    _card, task_id = await start_job(fake_discord, paddock, alice, emulator, channel="videos")
    fake_discord.delete_channel("videos")
    emulator.finish(task_id)
    await fake_discord.wait_for(lambda: alice.direct_messages, timeout=10)  # credits back

    _, text, _ = await get(paddock, "/metrics")
    samples = metric_samples(text)
    assert sample(samples, "paddock_jobs", state="undelivered", provider="joypix") == 1
    assert sample(samples, "paddock_jobs", state="delivered", provider="joypix") == 0
    assert sample(samples, "paddock_credits_settled_total") == 0


async def test_a_side_door_port_in_use_stops_the_bot_in_one_line(fake_discord, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"DATABASE_PATH": str(tmp_path / "paddock.db"), "PADDOCK_HTTP_PORT": str(port)}
        async with bot_process(fake_discord, env=env, wait=False) as bot:
            code = await bot.process.wait()
    assert code == 1
    assert bot.output.splitlines()[-1] == (
        f"paddock: PADDOCK_HTTP_PORT is {port}, but the side door cannot listen on "
        f"127.0.0.1:{port} (Address already in use); check PADDOCK_HTTP_HOST and "
        f"PADDOCK_HTTP_PORT")
    assert "Traceback" not in bot.output
