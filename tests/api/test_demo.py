"""The demo provider: hh_api's client against the DemoBackend, over real HTTP on 127.0.0.1.

The backend's clock is a hand-moved one, and the client's sleep moves it: a wait that
would take ten seconds of polling takes none, and every status the client sees is the
one the timeline says.
"""

from __future__ import annotations

import asyncio
import logging
import re
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from hh_api import (
    AuthenticationError,
    ConfigurationError,
    DemoBackend,
    DemoSettings,
    DownloadError,
    HappyHorse,
    InvalidRequestError,
    Mode,
    PollPolicy,
    PriceTable,
    ProviderConfig,
    Status,
    TaskFailedError,
    TaskNotFoundError,
    TaskState,
    VideoRequest,
    demo_video,
)
from tests.api.conftest import FAST_RETRY, SHORT_TIMEOUTS
from tests.api.test_validation import BAD

PICTURE = "https://cdn.example/rider.png"
REQUESTS = {
    Mode.TEXT: VideoRequest("a horse gallops along a beach", Mode.TEXT, duration=5, seed=7),
    Mode.IMAGE: VideoRequest("the horse turns its head", Mode.IMAGE, (PICTURE,)),
    Mode.REFERENCE: VideoRequest("[Image 1] rides through [Image 2]", Mode.REFERENCE,
                                 (PICTURE, "https://cdn.example/castle.png"),
                                 resolution="1080p", aspect_ratio="9:16"),
}


class ManualClock:
    """Unix seconds that move only when told; the client's sleep moves them."""

    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def demo(clock) -> AsyncIterator[Callable[..., object]]:
    """Start a DemoBackend (on the manual clock unless told otherwise) and a client for it."""
    started: list[tuple[DemoBackend, HappyHorse]] = []

    async def start(
        settings: DemoSettings | None = None, **options: object
    ) -> tuple[DemoBackend, HappyHorse]:
        options.setdefault("clock", clock)
        backend = DemoBackend(settings or DemoSettings(), **options)  # type: ignore[arg-type]
        await backend.__aenter__()
        client = HappyHorse({"demo": backend.provider_config()}, retry=FAST_RETRY,
                            timeouts=SHORT_TIMEOUTS, sleep=clock.sleep)
        started.append((backend, client))
        return backend, client

    yield start
    for backend, client in started:
        await client.close()
        await backend.__aexit__(None, None, None)


# -- the whole flow, in every mode ---------------------------------------------------------


@pytest.mark.parametrize("mode", list(Mode))
async def test_a_task_is_queued_then_renders_then_gives_the_bundled_mp4(
    demo, clock, tmp_path, mode
) -> None:
    backend, hh = await demo()
    submitted_at = clock.now
    task = await hh.submit("demo", REQUESTS[mode])

    assert (await hh.status("demo", task.task_id)).status is Status.QUEUED
    seen: list[TaskState] = []
    done = await hh.wait("demo", task.task_id, on_update=seen.append)

    # Queued for 2 s, rendering for 8 s, then done; wait() checks at 2, 5, 9.5 and 16.25 s
    # (not at once: the submit's own answer said queued).
    assert [s.status for s in seen] == [Status.RUNNING, Status.SUCCEEDED]
    assert done.video_url == f"{backend.base_url}/videos/{task.task_id}.mp4"
    assert done.expires_at == datetime.fromtimestamp(submitted_at + 10, UTC) + timedelta(hours=1)
    saved = await hh.download(done.video_url, tmp_path / "demo.mp4")
    assert saved.read_bytes() == demo_video()

    clock.advance(3600)  # the link has expired and the backend forgets the task
    with pytest.raises(DownloadError, match="HTTP 404"):
        await hh.download(done.video_url, tmp_path / "late.mp4")
    with pytest.raises(TaskNotFoundError):
        await hh.status("demo", task.task_id)


async def test_wait_follows_a_tiny_render_in_real_time(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        DemoBackend(DemoSettings(render_seconds=0.05)) as backend,
        HappyHorse({"demo": backend.provider_config()},
                   poll=PollPolicy(initial=0.01, factor=1.5, maximum=0.02)) as hh,
    ):
        task = await hh.submit("demo", REQUESTS[Mode.TEXT])
        seen: list[Status] = []
        done = await hh.wait("demo", task.task_id, timeout=10,
                             on_update=lambda state: seen.append(state.status))
        assert done.status is Status.SUCCEEDED
        assert seen == sorted(seen, key=list(Status).index)  # never backwards
        assert (await hh.download(done.video_url, tmp_path / "v.mp4")).read_bytes() == (
            demo_video())
        key = backend.api_key.reveal()
        assert key not in repr(backend.provider_config()) + repr(backend) + repr(hh)
    assert caplog.records  # the flow did log, and never the per-process key
    assert all(key not in r.getMessage() for r in caplog.records)


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, bytes]]:
    """The ISO base media boxes in data[start:end], as (type, payload); sizes must add up."""
    end = len(data) if end is None else end
    found = []
    while start < end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        assert size >= 8 and start + size <= end, f"box {kind!r} overruns its parent"
        found.append((kind, data[start + 8:start + size]))
        start += size
    assert start == end
    return found


def child(payload: bytes, *path: bytes) -> bytes:
    for kind in path:
        [payload] = [body for name, body in boxes(payload) if name == kind]
    return payload


def test_the_bundled_clip_is_a_small_h264_mp4_discord_plays_inline() -> None:
    data = demo_video()
    assert len(data) < 200 * 1024
    top = [kind for kind, _ in boxes(data)]
    assert top[0] == b"ftyp"
    assert top.index(b"moov") < top.index(b"mdat")  # faststart: playable while it loads

    moov = child(data, b"moov")
    mvhd = child(moov, b"mvhd")
    timescale, duration = struct.unpack(">II", mvhd[12:20])  # version 0 header
    assert 2 <= duration / timescale <= 10
    stsd = child(moov, b"trak", b"mdia", b"minf", b"stbl", b"stsd")
    [(codec, entry)] = boxes(stsd, 8)  # after version, flags and the entry count
    assert codec == b"avc1"  # H.264
    width, height = struct.unpack(">HH", entry[24:28])
    assert (width, height) == (480, 270)
    avcc = child(entry[78:], b"avcC")
    # Baseline (66) and Main (77) carry only 4:2:0 chroma, which is yuv420p.
    assert avcc[1] in (66, 77)


# -- failing on purpose ---------------------------------------------------------------------


async def test_a_prompt_with_the_marker_fails_with_a_plain_reason(demo) -> None:
    _, hh = await demo()
    task = await hh.submit("demo", VideoRequest("a horse #FAIL on a beach", Mode.TEXT))
    seen: list[Status] = []
    with pytest.raises(TaskFailedError) as failed:
        await hh.wait("demo", task.task_id, on_update=lambda state: seen.append(state.status))
    assert failed.value.reason == "the demo provider was asked to fail: the prompt contains #fail"
    assert seen == [Status.RUNNING, Status.FAILED]  # first checked 2 s in: rendering
    assert failed.value.state.video_url is None


async def test_the_fail_rate_fails_the_tasks_whose_draw_is_under_it(demo) -> None:
    draws = iter([0.29, 0.31])
    _, hh = await demo(DemoSettings(fail_rate=0.3), rng=lambda: next(draws))
    unlucky = await hh.submit("demo", REQUESTS[Mode.TEXT])
    lucky = await hh.submit("demo", REQUESTS[Mode.TEXT])

    with pytest.raises(TaskFailedError, match="asked to fail: this task drew a failure"):
        await hh.wait("demo", unlucky.task_id)
    assert (await hh.wait("demo", lucky.task_id)).status is Status.SUCCEEDED


# -- the same rules and prices as a real provider -----------------------------------------


def test_the_demo_offers_joypix_limits_in_every_mode() -> None:
    hh = HappyHorse({"demo": ProviderConfig("demo"), "joypix": ProviderConfig("joypix")})
    for mode in Mode:
        joypix, demo = hh.capabilities("joypix", mode), hh.capabilities("demo", mode)
        assert replace(demo, provider="joypix", model=joypix.model, path=joypix.path,
                       documented=joypix.documented) == joypix
        assert demo.model.startswith("paddock-demo-")


JOYPIX_BAD = [(request, field) for provider, request, field, _ in BAD if provider == "joypix"]


@pytest.mark.parametrize(("request_", "field"), JOYPIX_BAD,
                         ids=[f"{field}-{n}" for n, (_, field) in enumerate(JOYPIX_BAD)])
def test_the_client_refuses_what_joypix_refuses_in_the_same_words(request_, field) -> None:
    hh = HappyHorse({"demo": ProviderConfig("demo"), "joypix": ProviderConfig("joypix")})
    with pytest.raises(InvalidRequestError) as at_joypix:
        hh.validate("joypix", request_)
    with pytest.raises(InvalidRequestError) as at_demo:
        hh.validate("demo", request_)
    assert at_demo.value.field == at_joypix.value.field == field
    assert str(at_demo.value) == str(at_joypix.value).replace("joypix", "demo")


async def test_the_backend_refuses_bad_bodies_and_wrong_keys_itself(demo) -> None:
    backend, hh = await demo()
    key = {"Authorization": f"Bearer {backend.api_key.reveal()}"}
    url = f"{backend.base_url}/v1/text-to-video"
    good = {"model": "paddock-demo-t2v", "prompt": "a horse"}
    async with aiohttp.ClientSession() as session:
        async def post(body: object, headers: dict[str, str] = key) -> tuple[int, object]:
            async with session.post(url, json=body, headers=headers) as response:
                return response.status, await response.json()

        assert await post(good, {}) == (401, {"error": "missing or wrong API key"})
        assert await post(good | {"duration": 16}) == (400, {
            "error": "a duration of 16 s is out of range; choose 3-15 seconds"})
        assert await post(good | {"style": "noir"}) == (400, {"error": "unknown field(s): style"})
        assert await post(good | {"model": "paddock-demo-i2v"}) == (400, {
            "error": "model must be paddock-demo-t2v on this path"})
        assert await post(["a horse"]) == (400, {"error": "the body must be a JSON object"})
        status, answer = await post(good)
        assert (status, answer["status"]) == (200, "queued")  # type: ignore[index]

    stranger = HappyHorse({"demo": ProviderConfig("demo", api_key="guess",
                                                  base_url=backend.base_url)})
    async with stranger:
        with pytest.raises(AuthenticationError):
            await stranger.submit("demo", REQUESTS[Mode.TEXT])
    with pytest.raises(TaskNotFoundError):
        await hh.status("demo", "demo-1-2-ok-000000000000x")


@pytest.mark.parametrize(("resolution", "credits"), [("720p", 70), ("1080p", 120)])
def test_the_demo_costs_what_the_price_table_says(resolution, credits) -> None:
    table = PriceTable()
    hh = HappyHorse({"demo": ProviderConfig("demo"), "joypix": ProviderConfig("joypix")},
                    prices=table)
    request = VideoRequest("x", Mode.TEXT, resolution=resolution, duration=5)
    assert hh.price("demo", request) == credits == hh.price("joypix", request)
    assert table.source("demo", resolution) == "highest known"


# -- restarts and settings ------------------------------------------------------------------


async def test_a_task_outlives_the_backend_that_took_it(demo, clock) -> None:
    first, hh = await demo()
    task = await hh.submit("demo", REQUESTS[Mode.TEXT])
    await first.__aexit__(None, None, None)  # the bot stops mid-render
    clock.advance(20)

    second, fresh = await demo()
    state = await fresh.status("demo", task.task_id)
    assert state.status is Status.SUCCEEDED
    assert state.video_url == f"{second.base_url}/videos/{task.task_id}.mp4"
    assert second.api_key != first.api_key  # a new key per process


def test_demo_settings_come_from_the_environment() -> None:
    assert DemoSettings.from_env({}) == DemoSettings(render_seconds=8.0, fail_rate=0.0)
    assert DemoSettings().queued_seconds == 2.0
    tiny = DemoSettings.from_env({"DEMO_RENDER_SECONDS": "0.2", "DEMO_FAIL_RATE": "0.25"})
    assert (tiny.render_seconds, tiny.queued_seconds, tiny.fail_rate) == (0.2, 0.05, 0.25)
    for env, words in [({"DEMO_RENDER_SECONDS": "soon"}, "DEMO_RENDER_SECONDS must be"),
                       ({"DEMO_RENDER_SECONDS": "-1"},
                        "DEMO_RENDER_SECONDS must be a number of seconds >= 0, not '-1'"),
                       ({"DEMO_FAIL_RATE": "1.5"}, "between 0 and 1"),
                       ({"DEMO_FAIL_RATE": "nan"}, "DEMO_FAIL_RATE must be")]:
        with pytest.raises(ConfigurationError, match=words):
            DemoSettings.from_env(env)


async def test_a_backend_that_is_not_running_has_no_config() -> None:
    async with HappyHorse({"demo": ProviderConfig("demo")}) as unstarted:
        with pytest.raises(ConfigurationError, match=re.escape("start a hh_api.demo.DemoBackend")):
            await unstarted.submit("demo", REQUESTS[Mode.TEXT])
    backend = DemoBackend()
    with pytest.raises(ConfigurationError, match="not running"):
        backend.provider_config()
    async with backend:
        assert backend.provider_config().base_url == backend.base_url
    with pytest.raises(ConfigurationError):
        backend.provider_config()
