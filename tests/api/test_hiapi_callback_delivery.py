"""The HiAPI emulator's callbacks: posted once when a task ends, signed as HiAPI signs them,
and accepted by `verify_hiapi_callback`; never sent without a secret or a callback URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from hh_api import HappyHorse, Mode, ProviderConfig, VideoRequest, verify_hiapi_callback
from tests.api.conftest import FAST_POLL, FAST_RETRY, SHORT_TIMEOUTS
from tests.fakes.providers import ProviderEmulator

SECRET = "whsec-emulated"
REQUEST = VideoRequest("a horse on a beach", Mode.TEXT)


class Receiver:
    """A callback endpoint on 127.0.0.1 that records what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    yield hook
    await hook.stop()


@pytest.fixture
async def hiapi() -> AsyncIterator[tuple[ProviderEmulator, HappyHorse]]:
    emulator = await ProviderEmulator("hiapi", api_key="k", callback_secret=SECRET).start()
    emulator.require_https_callback = False
    config = ProviderConfig("hiapi", api_key="k", base_url=emulator.base_url)
    async with HappyHorse({"hiapi": config}, retry=FAST_RETRY, poll=FAST_POLL,
                          timeouts=SHORT_TIMEOUTS) as client:
        yield emulator, client
    await emulator.stop()


async def test_a_finished_task_is_called_back_once_with_a_genuine_signature(hiapi, receiver):
    emulator, client = hiapi
    task = await client.submit("hiapi", REQUEST, callback_url=receiver.url)
    emulator.finish(task.task_id)
    await emulator.wait_for_callbacks(1)
    await client.status("hiapi", task.task_id)  # a poll after the end sends nothing more

    [(headers, body)] = receiver.received
    assert emulator.callbacks[0].status == 200
    assert verify_hiapi_callback(SECRET, body, headers) == task.task_id
    assert headers["Content-Type"] == "application/json"
    data = json.loads(body)["data"]
    assert (data["taskId"], data["status"]) == (task.task_id, "success")
    assert data["output"][0]["url"] == emulator.video_url(task.task_id)
    assert len(emulator.callbacks) == 1


async def test_a_task_that_fails_by_time_is_called_back_with_its_error(hiapi, receiver):
    emulator, client = hiapi
    emulator.render_seconds = 0.05
    emulator.fail_with = "content policy"
    task = await client.submit("hiapi", REQUEST, callback_url=receiver.url)
    await emulator.wait_for_callbacks(1)

    [(headers, body)] = receiver.received
    assert verify_hiapi_callback(SECRET, body, headers) == task.task_id
    data = json.loads(body)["data"]
    assert (data["status"], data["error"]["message"]) == ("fail", "content policy")


async def test_a_task_found_done_by_a_poll_is_called_back(hiapi, receiver):
    emulator, client = hiapi
    emulator.steps = ["queued", "success"]
    task = await client.submit("hiapi", REQUEST, callback_url=receiver.url)
    await client.wait("hiapi", task.task_id, timeout=5)
    await emulator.wait_for_callbacks(1)
    assert [json.loads(body)["data"]["status"] for _, body in receiver.received] == ["success"]


async def test_a_callback_can_be_repeated_forged_or_stale(hiapi, receiver):
    emulator, client = hiapi
    task = await client.submit("hiapi", REQUEST, callback_url=receiver.url)
    emulator.finish(task.task_id)
    await emulator.wait_for_callbacks(1)
    assert await emulator.send_callback(task.task_id) == 200
    await emulator.send_callback(task.task_id, secret="forged")
    await emulator.send_callback(task.task_id, sent_at=1_000_000_000)

    _, repeat, forged, stale = receiver.received
    assert verify_hiapi_callback(SECRET, repeat[1], repeat[0]) == task.task_id
    assert verify_hiapi_callback("forged", forged[1], forged[0]) == task.task_id
    assert stale[0]["X-HiAPI-Timestamp"] == "1000000000"


async def test_nothing_is_called_back_without_a_secret_or_a_url(receiver) -> None:
    emulator = await ProviderEmulator("hiapi", api_key="k").start()
    emulator.require_https_callback = False
    config = ProviderConfig("hiapi", api_key="k", base_url=emulator.base_url)
    try:
        async with HappyHorse({"hiapi": config}, retry=FAST_RETRY, poll=FAST_POLL) as client:
            with_url = await client.submit("hiapi", REQUEST, callback_url=receiver.url)
            emulator.finish(with_url.task_id)
            await client.status("hiapi", with_url.task_id)
        assert emulator.callbacks == [] and receiver.received == []
    finally:
        await emulator.stop()


async def test_a_task_without_a_callback_url_is_not_called_back(hiapi, receiver) -> None:
    emulator, client = hiapi
    task = await client.submit("hiapi", REQUEST)
    emulator.finish(task.task_id)
    await client.status("hiapi", task.task_id)
    assert emulator.callbacks == [] and receiver.received == []
