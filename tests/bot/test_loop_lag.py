"""The event loop's lag: measured, served at /metrics, and a WARNING past 250 ms."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest

from tests.bot.side_door_support import free_port, get, metric_samples, sample


@pytest.fixture
def paddock_settings(paddock_settings):
    return dataclasses.replace(paddock_settings, http_port=free_port())


async def test_a_blocked_loop_is_logged_and_counted(fake_discord, paddock, caplog) -> None:
    monitor = paddock.loop_lag
    caplog.set_level(logging.WARNING, logger="paddock.loop_lag")
    time.sleep(0.4)  # noqa: ASYNC251 -- block the loop on purpose, as a decode on it would

    # The monitor's tick was due within 0.1 s of the block's start, so it ran > 0.3 s late.
    # (Waiting on `monitor.worst` alone passed at once when the bot's start, under load,
    # had already blocked the loop that long, before this tick was recorded.)
    await fake_discord.wait_for(lambda: any(
        r.name == "paddock.loop_lag" and r.levelno == logging.WARNING
        and "the event loop was blocked for" in r.getMessage() for r in caplog.records))
    assert monitor.worst > 0.25

    status, text, _ = await get(paddock, "/metrics")
    samples = metric_samples(text)
    assert status == 200
    assert sample(samples, "paddock_event_loop_lag_max_seconds") > 0.25
    ticks = sample(samples, "paddock_event_loop_lag_seconds_count")
    under = sample(samples, "paddock_event_loop_lag_seconds_bucket", le="0.25")
    assert ticks > under  # one tick, at least, came over 250 ms late
