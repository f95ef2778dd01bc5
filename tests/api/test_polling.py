"""How often the client asks a provider about a task, before and after it has learned how
long renders take. Time is a fake clock that the client's sleep moves, so the schedule
of status checks the provider receives is exact."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from hh_api import HappyHorse, Mode, PollPolicy, ProviderConfig, VideoRequest
from hh_api.render_times import RenderTimes, RenderWindow
from tests.fakes.providers import ProviderEmulator

DEFAULT = PollPolicy()
REQUEST = VideoRequest(mode=Mode.TEXT, prompt="a horse", resolution="720p", duration=5)


class MovingClock:
    """A monotonic clock that only the client's sleeps move."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def polls_until_done(words: tuple[str, str, str], checks: int) -> list[str]:
    """Emulator steps that say queued, then running, and succeeded at check `checks`."""
    queued, running, done = words
    return [queued] + [running] * (checks - 2) + [done]


@pytest.fixture
async def joypix():
    async with ProviderEmulator("joypix", api_key="k") as emulator:
        yield emulator


def client(emulator: ProviderEmulator, clock: MovingClock) -> HappyHorse:
    config = {"joypix": ProviderConfig("joypix", api_key="k", base_url=emulator.base_url)}
    return HappyHorse(config, sleep=clock.sleep, clock=clock)


def test_render_times_give_no_window_until_enough_renders_were_seen():
    times = RenderTimes(least=5)
    key = RenderTimes.key("joypix", REQUEST)
    for seconds in (30, 31, 29, 32):
        times.record(key, seconds)
    assert times.window(key) is None
    times.record(key, 28)
    assert times.window(key) == RenderWindow(soonest=28.2, latest=31.8)
    longer = dataclasses.replace(REQUEST, duration=10)
    assert times.window(RenderTimes.key("joypix", longer)) is None


def test_render_times_keep_only_the_latest_renders_of_each_kind():
    times = RenderTimes(keep=5, least=5)
    key = RenderTimes.key("wavespeed", REQUEST)
    for seconds in (100, 100, 100, 100, 100, 10, 10, 10, 10, 10):
        times.record(key, seconds)
    assert times.window(key) == RenderWindow(10, 10)


def test_without_a_window_the_pause_grows_from_2_s_to_15_s():
    schedule = DEFAULT.schedule(None)
    assert [schedule.pause(None) for _ in range(8)] == [2, 3, 4.5, 6.75, 10.125, 15, 15, 15]


def test_with_a_window_checks_jump_to_its_start_then_come_every_second_then_grow():
    schedule = DEFAULT.schedule(RenderWindow(soonest=20, latest=30))
    since, pauses = 0.0, []
    while since < 40:
        pauses.append(schedule.pause(since))
        since += pauses[-1]
    # two early checks (2 s, then 3x: 8 s), the rest of the way to the window in one go,
    # one-second checks across it, then growth again
    assert pauses[:3] == [2, 6, 12]
    assert pauses[3:14] == [1.0] * 11
    assert pauses[14:] == [1.5, 2.25, 3.375, 5.0625]


def test_before_a_late_window_checks_thin_out_to_a_minute():
    schedule = DEFAULT.schedule(RenderWindow(soonest=300, latest=320))
    since, pauses = 0.0, []
    while since < 300:
        pauses.append(schedule.pause(since))
        since += pauses[-1]
    assert pauses == [2, 6, 18, 54, 60, 60, 60, 40]


def test_a_wide_window_is_crossed_in_ten_checks_not_one_per_second():
    schedule = DEFAULT.schedule(RenderWindow(soonest=100, latest=200))
    assert schedule.pause(150) == 10.0


async def test_the_client_learns_render_times_and_then_polls_near_the_expected_finish(joypix):
    clock = MovingClock()
    words = ("pending", "processing", "completed")
    async with client(joypix, clock) as hh:
        joypix.steps = polls_until_done(words, 8)  # done at the 8th check
        for _ in range(5):
            submission = await hh.submit("joypix", REQUEST)
            clock.pauses.clear()
            await hh.wait("joypix", submission.task_id)
            # the submit's answer is the first look; checks at 2, 5, ... 56.375, 71.375 s
            assert clock.pauses == [2, 3, 4.5, 6.75, 10.125, 15, 15, 15]
        # each ended after the 7th check (56.375 s: still running) and by the 8th
        key = RenderTimes.key("joypix", REQUEST)
        assert hh.render_times.window(key) == RenderWindow(56.375, 71.375)

        joypix.steps = polls_until_done(words, 10)
        submission = await hh.submit("joypix", REQUEST)
        clock.pauses.clear()
        await hh.wait("joypix", submission.task_id)
        # three early checks, then straight to the window (56.375 s) and every 1.5 s
        # across it (15 s / 10), where the default would have checked every 15 s
        assert clock.pauses == [2, 6, 18, 30.375] + [1.5] * 6
        assert joypix.tasks[submission.task_id].polls == 10


async def test_a_resumed_task_uses_the_window_of_its_request_and_submission_time(joypix):
    clock = MovingClock()
    key = RenderTimes.key("joypix", REQUEST)
    steps = polls_until_done(("pending", "processing", "completed"), 3)
    pauses = {}
    for told in (False, True):
        async with client(joypix, clock) as hh:
            submission = await hh.submit("joypix", REQUEST)
        joypix.steps = steps
        restarted = client(joypix, clock)  # knows nothing of the submission
        for seconds in range(60, 71):
            restarted.render_times.record(key, seconds)
        clock.pauses.clear()
        async with restarted:
            await restarted.wait(
                "joypix", submission.task_id,
                request=REQUEST if told else None,
                submitted_at=datetime.now(UTC) - timedelta(seconds=62) if told else None,
            )
        pauses[told] = list(clock.pauses)
    # 62 s into a render that takes 60-70 s: check every second, not after 2 s then 3 s
    assert pauses == {False: [2, 3], True: [1.0, 1.0]}


def test_a_kind_not_learned_borrows_the_floor_of_renders_that_should_be_no_slower():
    times = RenderTimes(least=5)
    for seconds in (56, 57, 58, 55, 60):
        times.record(RenderTimes.key("joypix", REQUEST), seconds, seconds + 15)
    longer = dataclasses.replace(REQUEST, duration=10)
    sharper = dataclasses.replace(REQUEST, resolution="1080p")
    assert times.floor(RenderTimes.key("joypix", longer)) == RenderWindow(55.2, 55.2)
    assert times.floor(RenderTimes.key("joypix", sharper)) == RenderWindow(55.2, 55.2)
    # a shorter video, another mode or provider may well be quicker: nothing borrowed
    shorter = dataclasses.replace(REQUEST, duration=3)
    image = dataclasses.replace(REQUEST, mode=Mode.IMAGE)
    assert times.floor(RenderTimes.key("joypix", shorter)) is None
    assert times.floor(RenderTimes.key("joypix", image)) is None
    assert times.floor(RenderTimes.key("wavespeed", longer)) is None


async def test_a_longer_video_waits_for_the_shorter_ones_floor_before_checking_often(joypix):
    clock = MovingClock()
    words = ("pending", "processing", "completed")
    longer = dataclasses.replace(REQUEST, duration=10)
    async with client(joypix, clock) as hh:
        joypix.steps = polls_until_done(words, 8)  # 5 s renders: done by the 8th check
        for _ in range(5):
            await hh.wait("joypix", (await hh.submit("joypix", REQUEST)).task_id)
        joypix.steps = polls_until_done(words, 9)
        submission = await hh.submit("joypix", longer)
        clock.pauses.clear()
        await hh.wait("joypix", submission.task_id)
    # no 10 s render seen yet, but no 5 s one ended before 56.375 s: three early checks,
    # straight to there, then growing again; the default took 7 checks to get that far
    assert clock.pauses[:4] == [2, 6, 18, 30.375]
    assert clock.pauses[4:] == [1.0, 1.5, 2.25, 3.375, 5.0625]
    assert sum(clock.pauses[:4]) == 56.375
