"""The `on_call` observer: one report per HTTP attempt, faults named by kind, never in the way."""

from __future__ import annotations

import logging
import socket

import pytest

from hh_api import (
    AuthenticationError,
    CallKind,
    CallOutcome,
    DownloadError,
    HappyHorse,
    InvalidRequestError,
    Mode,
    ProviderCall,
    ProviderConfig,
    ProviderUnavailableError,
    TaskNotFoundError,
    VideoRequest,
)
from tests.api.conftest import FAST_RETRY, SHORT_TIMEOUTS
from tests.fakes.providers import FAKE_MP4

REQUEST = VideoRequest("a horse on a beach")


def seen(calls: list[ProviderCall]) -> list[tuple[str | None, str, str, int | None]]:
    return [(c.provider, c.kind.value, c.outcome.value, c.status) for c in calls]


@pytest.mark.parametrize(
    ("fault", "outcome", "status", "attempts"),
    [
        ({"kind": 503}, "unavailable", 503, 2),
        ({"kind": 429, "retry_after": "0"}, "rate_limited", 429, 2),
        ({"kind": "html", "status": 502}, "unavailable", 502, 2),
        ({"kind": "malformed"}, "protocol", 200, 2),
        ({"kind": "envelope", "status": 500}, "unavailable", 200, 2),
        ({"kind": "hang"}, "timeout", None, 2),
        # aiohttp itself resends a GET once when a reused keep-alive connection was closed,
        # so two drops are one failed attempt of ours.
        ({"kind": "drop"}, "connection", None, 1),
    ],
    ids=["503", "429", "html-502", "malformed", "envelope-500", "hung", "dropped"],
)
async def test_each_status_attempt_is_reported_with_its_fault(
    start_emulator, make_client, fault, outcome, status, attempts
) -> None:
    emulator = await start_emulator("joypix")
    calls: list[ProviderCall] = []
    client = make_client(emulator, on_call=calls.append)
    task = await client.submit("joypix", REQUEST)
    options = dict(fault)
    emulator.fault(options.pop("kind"), on="status", times=2, **options)

    await client.status("joypix", task.task_id)

    assert seen(calls) == [
        ("joypix", "submit", "ok", 200),
        *[("joypix", "status", outcome, status)] * attempts,
        ("joypix", "status", "ok", 200),
    ]
    assert all(c.seconds >= 0 for c in calls)


@pytest.mark.parametrize(
    ("fault", "error", "outcome"),
    [(401, AuthenticationError, "auth"), (403, AuthenticationError, "auth"),
     (422, InvalidRequestError, "invalid")],
)
async def test_a_refused_submit_is_reported_once(
    start_emulator, make_client, fault, error, outcome
) -> None:
    emulator = await start_emulator("hiapi")
    calls: list[ProviderCall] = []
    client = make_client(emulator, on_call=calls.append)
    emulator.fault(fault, on="submit")
    with pytest.raises(error):
        await client.submit("hiapi", REQUEST)
    assert seen(calls) == [("hiapi", "submit", outcome, fault)]


async def test_an_unknown_task_is_reported_as_not_found(start_emulator, make_client) -> None:
    emulator = await start_emulator("wavespeed")
    calls: list[ProviderCall] = []
    client = make_client(emulator, on_call=calls.append)
    with pytest.raises(TaskNotFoundError):
        await client.status("wavespeed", "no-such-task")
    assert seen(calls) == [("wavespeed", "status", "not_found", 404)]


async def test_a_provider_nobody_answers_is_reported_as_connection_failures() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    calls: list[ProviderCall] = []
    config = ProviderConfig("joypix", api_key="k", base_url=f"http://127.0.0.1:{port}")
    async with HappyHorse({"joypix": config}, retry=FAST_RETRY, timeouts=SHORT_TIMEOUTS,
                          on_call=calls.append) as client:
        with pytest.raises(ProviderUnavailableError, match="cannot reach joypix"):
            await client.submit("joypix", REQUEST)
    assert seen(calls) == [("joypix", "submit", "connection", None)] * FAST_RETRY.attempts


async def test_an_attempt_reports_the_time_it_took(start_emulator, make_client) -> None:
    emulator = await start_emulator("pixeldojo")
    calls: list[ProviderCall] = []
    client = make_client(emulator, on_call=calls.append)
    emulator.latency = 0.05
    await client.submit("pixeldojo", VideoRequest("x", Mode.REFERENCE, images=("https://e.com/a.png",)))
    [call] = calls
    assert call.seconds >= 0.05  # the emulator's added latency is part of the attempt


async def test_downloads_are_reported_with_their_provider(
    start_emulator, make_client, tmp_path
) -> None:
    emulator = await start_emulator("joypix")
    calls: list[ProviderCall] = []
    client = make_client(emulator)
    state = await client.generate("joypix", REQUEST)
    client.on_call = calls.append  # an observer may also be attached later
    emulator.fault(503, on="file")

    await client.download(state.video_url, tmp_path / "a.mp4", provider="joypix")
    emulator.video_bytes = FAKE_MP4 + bytes(2_000_000)
    with pytest.raises(DownloadError):
        await client.download(state.video_url, tmp_path / "b.mp4", max_bytes=1_000_000)
    with pytest.raises(DownloadError):
        await client.download(emulator.video_url("task_gone"), tmp_path / "c.mp4")

    assert seen(calls) == [
        ("joypix", "download", "unavailable", 503),
        ("joypix", "download", "ok", 200),
        (None, "download", "too_large", 200),
        (None, "download", "not_found", 404),
    ]
    assert {c.kind for c in calls} == {CallKind.DOWNLOAD}


async def test_a_failing_observer_never_breaks_a_call(start_emulator, make_client, caplog):
    emulator = await start_emulator("hiapi")
    outcomes: list[CallOutcome] = []

    def broken(call: ProviderCall) -> None:
        outcomes.append(call.outcome)
        raise RuntimeError("metrics backend down")

    client = make_client(emulator, on_call=broken)
    emulator.fault(503, on="status")
    with caplog.at_level(logging.ERROR, logger="hh_api"):
        task = await client.submit("hiapi", REQUEST)
        state = await client.status("hiapi", task.task_id)

    assert state.task_id == task.task_id
    assert outcomes == [CallOutcome.OK, CallOutcome.UNAVAILABLE, CallOutcome.OK]
    failures = [r for r in caplog.records if "on_call observer failed" in r.getMessage()]
    assert len(failures) == 3 and failures[0].exc_info is not None
