"""HTTP emulators of the four HappyHorse providers, written from their pages.

Each `ProviderEmulator` serves one provider's documented API on 127.0.0.1 and is
strict about what it receives: the bearer key, the JSON content type, the field
names (an unknown field is a 400), types and ranges. It answers with the pages'
own example shapes. The rules here are written from the pages in
``shared/seeds`` on their own, not from hh_api's tables, so a mistake in the
client shows up as a refused request.

Knobs for tests:

    emu = ProviderEmulator("joypix", api_key="k")
    await emu.start()                       # emu.base_url is http://127.0.0.1:PORT
    emu.steps = ["pending", "processing", "completed"]   # one word per status check
    emu.fail_with = "content policy"        # new tasks end in failure with this reason
    emu.render_seconds = 120                # or: finish by time instead of by polls
    emu.fault(503, on="submit")             # the next submit answers 503
    emu.fault(429, retry_after="2", times=3)
    emu.fault("hang", on="status")          # hold the connection until the client gives up
    emu.fault("html", status=502)  /  emu.fault("malformed")  /  emu.fault("drop")
    emu.fault(500, on="submit", after_accept=True)   # the task exists, the answer is lost
    emu.flaky(503, on="submit", rate=0.5, seed=1)    # from now on, about half fail (seeded)
    emu.clear_faults()                      # no more faults, queued or flaky
    emu.requests / emu.submits() / emu.polls() / emu.tasks
    emu.requests[0].raw_path                # the path as it came over the wire, %-escapes kept
    await emu.wait_for_requests("status", 3)   # no sleeping in loops
    emu.task_ids = ["a/b?c#d é"]            # ids for the next tasks, instead of counting

HiAPI's idempotency contract (from its SDK; the page says nothing about it):

    # A submit with an Idempotency-Key creates one task; the same key and body again get
    # that task back, with an `Idempotent-Replay: true` header. The same key with another
    # body is a 422 IDEMPOTENCY_KEY_MISMATCH.
    emu.in_flight_answers = 2               # the next 2 resends of a key find its first
    emu.in_flight_retry_after = "1"         # request still "in flight": 409 with error_code
    # IDEMPOTENCY_KEY_PROCESSING and this Retry-After; the resends after them get the task.

HiAPI callbacks (only with a secret; without one no callback is ever sent):

    emu = ProviderEmulator("hiapi", api_key="k", callback_secret="whsec")
    emu.require_https_callback = False      # accept http://127.0.0.1 callback URLs
    emu.callback_proxy = "http://127.0.0.1:8080"   # or keep https:// URLs and deliver them
    # here instead, as the HTTPS proxy in front of a bot would (path and query kept)
    # a task submitted with callback.url gets one POST there when it ends (finish(), its
    # render_seconds passing, or a poll that finds it done), signed as HiAPI signs:
    # X-HiAPI-Timestamp (Unix seconds) and X-HiAPI-Signature =
    # hex(HMAC-SHA256(secret, timestamp + "." + raw body)); the body is the status
    # answer's envelope, {"code": 200, "message": "success", "data": {"taskId", ...}}.
    await emu.wait_for_callbacks(1)         # emu.callbacks: what was sent, and the answer
    await emu.send_callback(task_id)        # once more (a repeat), or forged/stale:
    await emu.send_callback(task_id, secret="wrong", sent_at=time.time() - 600)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp
from aiohttp import web

from tests.fakes.waiting import WAIT_LIMIT

# A tiny but real MP4 header (an ftyp box) followed by padding: enough for type sniffing.
FAKE_MP4 = (
    b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00\x00\x00\x08free"
    + b"\x00\x00\x00\x08moov"  # an (empty) movie header: the box walk finds a whole file
) + bytes(4096)

SEED_MAX = 2_147_483_647
RATIOS_1_0 = {"16:9", "9:16", "1:1", "4:3", "3:4"}
RATIOS_HIAPI = {"16:9", "9:16", "3:4", "4:3", "4:5", "5:4", "1:1", "9:21", "21:9"}

# Words for (queued, running, succeeded, failed) as each provider says them.
WORDS = {
    "joypix": ("pending", "processing", "completed", "failed"),
    "wavespeed": ("created", "processing", "completed", "failed"),
    "pixeldojo": ("pending", "processing", "completed", "failed"),
    "hiapi": ("queued", "handling", "success", "fail"),
}


class Refusal(Exception):
    """A request the real provider would refuse."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Recorded:
    """One request as the provider received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    kind: str  # "submit", "status", "file" or "other"
    raw_path: str = ""  # the path and query as sent, percent-escapes not decoded
    at: float = field(default_factory=time.monotonic)  # when it arrived, for benchmarks

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    kind: str | int  # an HTTP status, or "hang", "html", "malformed", "drop", "envelope"
    on: str = "any"  # "submit", "status", "file" or "any"
    status: int = 502
    retry_after: str | None = None
    after_accept: bool = False


@dataclass
class CallbackDelivery:
    """One callback the emulator posted, and how the receiver answered (None: no answer)."""

    task_id: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None


@dataclass
class Task:
    id: str
    mode: str
    model: str
    received: dict[str, Any]
    created: float
    steps: list[str]
    fail_with: str | None
    render_seconds: float | None
    polls: int = 0
    finished: str | None = None  # forced outcome: "succeed" or "fail"
    ended: bool = False  # its end was noticed (and its callback sent, if it asked for one)
    ended_at: float | None = None  # when (time.monotonic), for benchmarks

    def terminal_word(self, provider: str) -> str:
        _, _, succeeded, failed = WORDS[provider]
        if self.finished:
            return succeeded if self.finished == "succeed" else failed
        return failed if self.fail_with else succeeded

    def word(self, provider: str, now: float) -> str:
        _, running, succeeded, failed = WORDS[provider]
        terminal = self.terminal_word(provider)
        if self.finished:
            return terminal
        if self.render_seconds is not None:
            return terminal if now - self.created >= self.render_seconds else running
        index = min(self.polls, len(self.steps) - 1)
        word = self.steps[index]
        return terminal if word in (succeeded, failed) else word


class ProviderEmulator:
    """One provider's API on a random local port."""

    def __init__(
        self, provider: str, *, api_key: str = "test-key", callback_secret: str | None = None
    ) -> None:
        if provider not in WORDS:
            raise ValueError(f"no emulator for {provider!r}")
        if callback_secret is not None and provider != "hiapi":
            raise ValueError("only HiAPI sends callbacks")
        self.provider = provider
        self.api_key = api_key
        self.callback_secret = callback_secret
        self.callbacks: list[CallbackDelivery] = []
        self._sending: set[asyncio.Task[int | None]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self._callback_session: aiohttp.ClientSession | None = None
        queued, running, succeeded, _ = WORDS[provider]
        self.steps: list[str] = [queued, running, succeeded]
        self.fail_with: str | None = None
        self.render_seconds: float | None = None
        self.video_bytes = FAKE_MP4
        self.video_content_type = "video/mp4"
        self.latency = 0.0  # seconds added to every answer
        # Set to an unset event, finished videos' downloads wait until it is set.
        self.files_held: asyncio.Event | None = None
        # Download every picture link of a submit, as the real services do, and refuse
        # the job (400) when one does not answer 200: a dead link shows as a failure.
        self.fetch_pictures = False
        self.picture_fetches: list[tuple[str, int]] = []  # (url, HTTP status)
        self.video_query = ""  # appended to video links, e.g. a long pre-signed query
        self.require_https_callback = True
        self.callback_proxy: str | None = None
        self.requests: list[Recorded] = []
        # requests of each kind being answered now, and the most there ever were at once
        self.at_once: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()
        self.tasks: dict[str, Task] = {}
        self._faults: list[Fault] = []
        self._flaky: tuple[Fault, float, random.Random] | None = None
        self._idempotency: dict[str, tuple[str, bytes]] = {}
        self.in_flight_answers = 0
        self.in_flight_retry_after = "1"
        self.task_ids: list[str] = []
        self._ids = itertools.count(1)
        self._hung: asyncio.Event = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.on_task_created: Callable[[Task], None] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> ProviderEmulator:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def release_hung(self) -> None:
        """Let the requests held by a "hang" fault go on (each then answers 503)."""
        self._hung.set()

    async def stop(self) -> None:
        self._hung.set()
        for timer in self._timers:
            timer.cancel()
        for sending in list(self._sending):
            sending.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        if self._callback_session is not None:
            await self._callback_session.close()
            self._callback_session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ProviderEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- knobs --------------------------------------------------------------------------

    def fault(
        self,
        kind: str | int,
        *,
        on: str = "any",
        times: int = 1,
        status: int | None = None,
        retry_after: str | None = None,
        after_accept: bool = False,
    ) -> None:
        """Make the next `times` matching requests misbehave."""
        code = kind if isinstance(kind, int) else (status or 502)
        for _ in range(times):
            self._faults.append(Fault(kind, on, code, retry_after, after_accept))

    def flaky(self, kind: str | int, *, on: str = "any", rate: float, seed: int = 0,
              status: int | None = None) -> None:
        """From now on, each matching request misbehaves with probability `rate` (after
        the queued faults), drawn from a generator seeded with `seed`."""
        code = kind if isinstance(kind, int) else (status or 502)
        self._flaky = (Fault(kind, on, code), rate, random.Random(seed))

    def clear_faults(self) -> None:
        self._faults.clear()
        self._flaky = None

    def finish(self, task_id: str, outcome: str = "succeed") -> None:
        """End a task now, whatever its steps say (HiAPI: its callback goes out now)."""
        task = self.tasks[task_id]
        task.finished = outcome
        self._ended(task)

    def submits(self) -> list[Recorded]:
        return [r for r in self.requests if r.kind == "submit"]

    def polls(self) -> list[Recorded]:
        return [r for r in self.requests if r.kind == "status"]

    async def wait_for_requests(self, kind: str, count: int, timeout: float = WAIT_LIMIT) -> None:
        """Return once `count` requests of `kind` ("submit", "status", ...) have arrived."""

        def enough() -> bool:
            return sum(1 for r in self.requests if r.kind == kind) >= count

        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(enough)

    async def wait_for_picture_fetches(self, count: int, timeout: float = WAIT_LIMIT) -> None:
        """Return once `count` picture links have been downloaded (or failed to)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.picture_fetches) >= count)

    async def wait_for_callbacks(self, count: int, timeout: float = WAIT_LIMIT) -> None:
        """Return once `count` callbacks have been answered (or found no one listening)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.callbacks) >= count)

    def video_url(self, task_id: str) -> str:
        return f"{self.base_url}/files/{quote(task_id, safe='')}.mp4{self.video_query}"

    # -- HiAPI callbacks ------------------------------------------------------------------

    async def send_callback(
        self, task_id: str, *, secret: str | None = None, sent_at: float | None = None
    ) -> int | None:
        """POST the task's callback now, signed with `secret` (default: the emulator's) as
        of `sent_at` (default: now); returns the receiver's HTTP status."""
        task = self.tasks[task_id]
        url = task.received["callback"]["url"]
        if self.callback_proxy is not None:
            parts = urlsplit(url)
            url = self.callback_proxy.rstrip("/") + parts.path + (
                f"?{parts.query}" if parts.query else "")
        secret = self.callback_secret if secret is None else secret
        if secret is None:
            raise ValueError("no callback secret to sign with")
        word = task.terminal_word(self.provider)
        body = json.dumps(
            {"code": 200, "message": "success", "data": self._hiapi_data(task, word)}
        ).encode()
        stamp = str(int(time.time() if sent_at is None else sent_at))
        signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        headers = {
            "Content-Type": "application/json",
            "X-HiAPI-Timestamp": stamp,
            "X-HiAPI-Signature": signature.hexdigest(),
        }
        if self._callback_session is None:
            self._callback_session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=10)
            )
        status: int | None = None
        try:
            async with self._callback_session.post(url, data=body, headers=headers) as answer:
                status = answer.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        self.callbacks.append(CallbackDelivery(task_id, url, headers, body, status))
        async with self._arrived:
            self._arrived.notify_all()
        return status

    def _ended(self, task: Task) -> None:
        """The task reached its terminal state: HiAPI posts to its callback URL once."""
        if task.ended:
            return
        task.ended, task.ended_at = True, time.monotonic()
        wants_callback = isinstance(task.received.get("callback"), dict)
        if self.callback_secret is None or not wants_callback:
            return
        sending = asyncio.get_running_loop().create_task(self.send_callback(task.id))
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)

    # -- dispatch -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        kind, _ = self._route(request)
        self.at_once[kind] += 1
        self.most_at_once[kind] = max(self.most_at_once[kind], self.at_once[kind])
        try:
            return await self._answer(request)
        finally:
            self.at_once[kind] -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        kind, handler = self._route(request)
        self.requests.append(
            Recorded(request.method, request.path_qs, dict(request.headers), body, kind,
                     raw_path=request.raw_path)
        )
        async with self._arrived:
            self._arrived.notify_all()
        if self.latency:
            await asyncio.sleep(self.latency)
        if kind == "file" and self.files_held is not None:
            await self.files_held.wait()
        fault = self._take_fault(kind)
        if fault is not None and not fault.after_accept:
            return await self._misbehave(fault, request)
        try:
            if handler is None:
                raise Refusal(404, f"no route for {request.method} {request.path}")
            if kind != "file":
                self._check_auth(request)
            if kind == "submit" and self.fetch_pictures:
                await self._fetch_pictures(body)
            response = await handler(request, body)
        except Refusal as refusal:
            return self._error(refusal.status, refusal.message)
        if fault is not None:
            return await self._misbehave(fault, request)
        return response

    def _route(self, request: web.Request):
        path, method = request.path, request.method
        if method == "GET" and path.startswith("/files/"):
            return "file", self._file
        routes = {
            "joypix": [
                ("POST", "/v1/alibaba/", self._joypix_submit),
                ("GET", "/v1/tasks/", self._status),
            ],
            "wavespeed": [
                ("POST", "/api/v3/alibaba/happyhorse-1.1/", self._wavespeed_submit),
                ("GET", "/api/v3/predictions/", self._status),
            ],
            "pixeldojo": [
                ("POST", "/api/v1/models/", self._pixeldojo_submit),
                ("GET", "/api/v1/jobs/", self._status),
            ],
            "hiapi": [
                ("POST", "/v1/tasks", self._hiapi_submit),
                ("GET", "/v1/tasks/", self._status),
            ],
        }[self.provider]
        for route_method, prefix, handler in routes:
            if method == route_method and (path == prefix or path.startswith(prefix)):
                return ("submit" if method == "POST" else "status"), handler
        return "other", None

    async def _fetch_pictures(self, body: bytes) -> None:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return  # the handler refuses it
        urls = [url for url in _picture_links(data) if url.startswith("http")]
        if not urls:
            return
        async with aiohttp.ClientSession() as session:
            for url in urls:
                try:
                    async with session.get(url) as answer:
                        await answer.read()
                        status = answer.status
                except aiohttp.ClientError:
                    status = 0
                self.picture_fetches.append((url, status))
                async with self._arrived:
                    self._arrived.notify_all()
                if status != 200:
                    raise Refusal(400, f"could not download the image {url} (HTTP {status})")

    def _take_fault(self, kind: str) -> Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.on in (kind, "any"):
                return self._faults.pop(index)
        if self._flaky is not None:
            fault, rate, rng = self._flaky
            if fault.on in (kind, "any") and rng.random() < rate:
                return fault
        return None

    async def _misbehave(self, fault: Fault, request: web.Request) -> web.StreamResponse:
        if fault.kind == "hang":
            await self._hung.wait()
            return web.Response(status=503)
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if fault.kind == "malformed":
            return web.Response(
                status=200, body=b'{"code": 200, "data": {', content_type="application/json"
            )
        if fault.kind == "html":
            return web.Response(
                status=fault.status,
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                content_type="text/html",
            )
        if fault.kind == "envelope":
            return web.json_response({"code": fault.status, "message": "upstream error"})
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
        return self._error(fault.status, f"emulated HTTP {fault.status}", headers)

    def _error(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        error_code: str | None = None,
    ) -> web.Response:
        if self.provider == "pixeldojo":
            body: dict[str, Any] = {"error": message}
        else:
            body = {"code": status, "message": message, "data": None}
        if error_code is not None:  # HiAPI's business code, where its SDK reads it
            body["error_code"] = error_code
        return web.json_response(body, status=status, headers=headers)

    def _check_auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise Refusal(401, "invalid or missing API key")

    # -- submits ------------------------------------------------------------------------

    def _json_body(self, request: web.Request, body: bytes) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise Refusal(415, f"Content-Type must be application/json, got {request.content_type}")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise Refusal(400, "body is not JSON") from None
        if not isinstance(data, dict):
            raise Refusal(400, "body must be a JSON object")
        return data

    def _new_task(self, mode: str, model: str, received: dict[str, Any]) -> Task:
        prefix = {"joypix": "task_", "wavespeed": "", "pixeldojo": "job_", "hiapi": "tsk_"}
        number = next(self._ids)
        task = Task(
            id=self.task_ids.pop(0) if self.task_ids else f"{prefix[self.provider]}{number:06d}",
            mode=mode,
            model=model,
            received=received,
            created=time.monotonic(),
            steps=list(self.steps),
            fail_with=self.fail_with,
            render_seconds=self.render_seconds,
        )
        self.tasks[task.id] = task
        if self.on_task_created is not None:
            self.on_task_created(task)  # may give the task its own render time
        if task.render_seconds is not None and self.callback_secret is not None:
            timer = asyncio.get_running_loop().call_later(
                task.render_seconds, self._ended, task
            )
            self._timers.append(timer)
        return task

    async def _joypix_submit(self, request: web.Request, body: bytes) -> web.Response:
        data = self._json_body(request, body)
        kind = request.path.removeprefix("/v1/alibaba/")
        specs = {
            "reference-to-video": ("reference", "happyhorse-1.0-r2v",
                                   {"images", "aspect_ratio"}, 9),
            "image-to-video": ("image", "happyhorse-1.0-i2v", {"images"}, 1),
            "text-to-video": ("text", "happyhorse-1.0-t2v", {"aspect_ratio"}, 0),  # inferred
        }
        if kind not in specs:
            raise Refusal(404, f"unknown endpoint {request.path}")
        mode, model, extra, max_images = specs[kind]
        allowed = {"model", "prompt", "resolution", "duration", "seed"} | extra
        _only(data, allowed)
        if data.get("model") != model:
            raise Refusal(400, f"model must be {model}")
        _prompt(data, "prompt", limit=2500 if mode != "reference" else None)
        if max_images:
            _urls(data, "images", 1, max_images)
        _common(data, RATIOS_1_0, seed_low=0)
        task = self._new_task(mode, model, data)
        return web.json_response(
            {"code": 200, "message": "success", "data": {"task_id": task.id}}
        )

    async def _wavespeed_submit(self, request: web.Request, body: bytes) -> web.Response:
        data = self._json_body(request, body)
        kind = request.path.removeprefix("/api/v3/alibaba/happyhorse-1.1/")
        if kind == "reference-to-video":
            _only(data, {"prompt", "images", "resolution", "aspect_ratio", "duration", "seed"})
            _urls(data, "images", 1, 9)
        elif kind == "image-to-video":  # inferred: one `image`, no aspect ratio
            _only(data, {"prompt", "image", "resolution", "duration", "seed"})
            if not isinstance(data.get("image"), str) or not data["image"].startswith("http"):
                raise Refusal(400, "image must be an image URL")
        elif kind == "text-to-video":  # inferred
            _only(data, {"prompt", "resolution", "aspect_ratio", "duration", "seed"})
        else:
            raise Refusal(404, f"unknown model {kind}")
        _prompt(data, "prompt", limit=2500 if kind == "image-to-video" else None)
        _common(data, RATIOS_1_0, seed_low=-1)
        mode = kind.removesuffix("-to-video")
        task = self._new_task(mode, f"alibaba/happyhorse-1.1/{kind}", data)
        return web.json_response(
            {"code": 200, "message": "success", "data": self._wavespeed_data(task)}
        )

    async def _pixeldojo_submit(self, request: web.Request, body: bytes) -> web.Response:
        data = self._json_body(request, body)
        if request.path != "/api/v1/models/happyhorse-1.0-r2v/run":
            raise Refusal(404, f"unknown model path {request.path}")
        _only(data, {"prompt", "reference_urls", "duration", "resolution", "aspectRatio",
                     "aspect_ratio", "negative_prompt", "seed"})
        if "aspectRatio" in data and "aspect_ratio" in data:
            raise Refusal(400, "send the aspect ratio once")
        _prompt(data, "prompt")
        _urls(data, "reference_urls", 1, 9)
        if "aspectRatio" in data:
            data = {**data, "aspect_ratio": data["aspectRatio"]}
        _common(data, RATIOS_1_0, seed_low=0)
        if "negative_prompt" in data and not isinstance(data["negative_prompt"], str):
            raise Refusal(400, "negative_prompt must be a string")
        task = self._new_task("reference", "happyhorse-1.0-r2v", data)
        return web.json_response(
            {
                "jobId": task.id,
                "status": "pending",
                "statusUrl": f"{self.base_url}/api/v1/jobs/{task.id}",
                "creditCost": 20,
                "creditsRemaining": 95,
                "expiresAt": _iso(datetime.now(UTC) + timedelta(hours=1)),
            },
            status=202,
        )

    async def _hiapi_submit(self, request: web.Request, body: bytes) -> web.Response:
        data = self._json_body(request, body)
        if request.path != "/v1/tasks":
            raise Refusal(404, f"unknown endpoint {request.path}")
        key = request.headers.get("Idempotency-Key")
        if key and key in self._idempotency:
            task_id, first_body = self._idempotency[key]
            if first_body != body:
                return self._error(422, "Idempotency-Key reused with a different body",
                                   error_code="IDEMPOTENCY_KEY_MISMATCH")
            if self.in_flight_answers > 0:
                self.in_flight_answers -= 1
                return self._error(
                    409, "a request with this Idempotency-Key is still being processed",
                    {"Retry-After": self.in_flight_retry_after},
                    error_code="IDEMPOTENCY_KEY_PROCESSING",
                )
            return web.json_response(
                {"code": 200, "message": "success", "data": {"taskId": task_id}},
                headers={"Idempotent-Replay": "true"},
            )
        _only(data, {"model", "input", "callback"})
        model = data.get("model")
        task_input = data.get("input")
        if not isinstance(task_input, dict):
            raise Refusal(400, "input must be an object")
        if model == "happyhorse-1.1/reference-to-video":
            _only(task_input, {"prompt", "reference_image", "resolution", "aspect_ratio",
                               "duration"}, where="input.")
            _urls(task_input, "reference_image", 1, 9)
            mode = "reference"
        elif model == "happyhorse-1.1/text-to-video":  # named on the page, shape inferred
            _only(task_input, {"prompt", "resolution", "aspect_ratio", "duration"},
                  where="input.")
            mode = "text"
        else:
            raise Refusal(400, f"unknown model {model!r}")
        _prompt(task_input, "prompt")
        _common(task_input, RATIOS_HIAPI, seed_low=None)
        if "callback" in data:
            callback = data["callback"]
            if not isinstance(callback, dict):
                raise Refusal(400, "callback must be an object")
            _only(callback, {"url", "when"}, where="callback.")
            url = callback.get("url")
            scheme = "https://" if self.require_https_callback else ("https://", "http://")
            if not isinstance(url, str) or not url.startswith(scheme):
                raise Refusal(400, "callback.url must be an HTTPS URL")
            if callback.get("when", "final") != "final":
                raise Refusal(400, "callback.when must be final")
        task = self._new_task(mode, str(model), data)
        if key:
            self._idempotency[key] = (task.id, body)
        return web.json_response({"code": 200, "message": "success", "data": {"taskId": task.id}})

    # -- status -------------------------------------------------------------------------

    async def _status(self, request: web.Request, body: bytes) -> web.Response:
        # Split the raw path, then decode: an id may hold an escaped "/" or "?".
        parts = [unquote(part) for part in request.raw_path.split("?")[0].rstrip("/").split("/")]
        task_id = parts[-2] if self.provider == "wavespeed" else parts[-1]
        if self.provider == "wavespeed" and parts[-1] != "result":
            raise Refusal(404, "unknown endpoint")
        task = self.tasks.get(task_id)
        if task is None:
            raise Refusal(404, f"task {task_id} not found")
        word = task.word(self.provider, time.monotonic())
        task.polls += 1
        _, _, succeeded, failed = WORDS[self.provider]
        done = word == succeeded
        error = task.fail_with if word == failed else None
        if word in (succeeded, failed):
            self._ended(task)
        if self.provider == "joypix":
            data = {
                "task_id": task.id,
                "inputs": "...",
                "model": task.model,
                "status": word,
                "error": error or "",
                "video_url": self.video_url(task.id) if done else "",
            }
            return web.json_response({"code": 200, "message": "success", "data": data})
        if self.provider == "wavespeed":
            data = self._wavespeed_data(task, word=word, error=error)
            return web.json_response({"code": 200, "message": "success", "data": data})
        if self.provider == "pixeldojo":
            answer: dict[str, Any] = {"jobId": task.id, "status": word, "creditCost": 20,
                                      "expiresAt": _iso(datetime.now(UTC) + timedelta(hours=1))}
            if done:
                answer["output"] = {"video": self.video_url(task.id)}
            if error:
                answer["error"] = error
            return web.json_response(answer)
        data = self._hiapi_data(task, word)
        return web.json_response({"code": 200, "message": "success", "data": data})

    def _hiapi_data(self, task: Task, word: str) -> dict[str, Any]:
        data: dict[str, Any] = {"taskId": task.id, "status": word, "output": [], "error": None}
        if word == "success":
            data["output"] = [{
                "url": self.video_url(task.id),
                "type": "video",
                "expireAt": _iso(datetime.now(UTC) + timedelta(hours=24)),
            }]
        if word == "fail" and task.fail_with:
            data["error"] = {"code": "GENERATION_FAILED", "message": task.fail_with}
        return data

    def _wavespeed_data(
        self, task: Task, *, word: str = "created", error: str | None = None
    ) -> dict[str, Any]:
        done = word == "completed"
        return {
            "id": task.id,
            "model": task.model,
            "outputs": [self.video_url(task.id)] if done else [],
            "urls": {"get": f"{self.base_url}/api/v3/predictions/{task.id}/result"},
            "status": word,
            "created_at": "2026-11-21T12:34:56.789Z",
            "error": error or "",
            "timings": {"inference": 1234 if done else 0},
        }

    async def _file(self, request: web.Request, body: bytes) -> web.Response:
        raw = request.raw_path.split("?")[0]
        task_id = unquote(raw.removeprefix("/files/").removesuffix(".mp4"))
        if task_id not in self.tasks:
            raise Refusal(404, "no such file")
        return web.Response(body=self.video_bytes, content_type=self.video_content_type)


# -- the documented rules, shared by the providers ----------------------------------------


def _picture_links(data: Any) -> list[str]:
    """Every string under a key that names images, anywhere in a submit body."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if "image" in key.lower():
                values = value if isinstance(value, list) else [value]
                found += [v for v in values if isinstance(v, str)]
                found += [u for v in values if isinstance(v, dict) for u in _picture_links(v)]
            else:
                found += _picture_links(value)
    elif isinstance(data, list):
        for item in data:
            found += _picture_links(item)
    return found


def _only(data: dict[str, Any], allowed: set[str], *, where: str = "") -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Refusal(400, f"unknown parameter(s): {', '.join(where + u for u in unknown)}")


def _prompt(data: dict[str, Any], key: str, *, limit: int | None = None) -> None:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise Refusal(400, f"{key} is required")
    if limit is not None and len(value) > limit:
        raise Refusal(400, f"{key} is longer than {limit} characters")


def _urls(data: dict[str, Any], key: str, low: int, high: int) -> None:
    value = data.get(key)
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise Refusal(400, f"{key} must be a list of {low}-{high} image URLs")
    if not all(isinstance(url, str) and url.startswith("http") for url in value):
        raise Refusal(400, f"{key} must hold image URLs")


def _common(data: dict[str, Any], ratios: set[str], *, seed_low: int | None) -> None:
    if "resolution" in data and data["resolution"] not in ("720p", "1080p"):
        raise Refusal(400, "resolution must be 720p or 1080p")
    if "aspect_ratio" in data and data["aspect_ratio"] not in ratios:
        raise Refusal(400, f"aspect_ratio must be one of {sorted(ratios)}")
    if "duration" in data:
        duration = data["duration"]
        if isinstance(duration, bool) or not isinstance(duration, int) or not 3 <= duration <= 15:
            raise Refusal(400, "duration must be an integer from 3 to 15")
    if "seed" in data:
        seed = data["seed"]
        if seed_low is None:
            raise Refusal(400, "unknown parameter: seed")
        if isinstance(seed, bool) or not isinstance(seed, int) or not seed_low <= seed <= SEED_MAX:
            raise Refusal(400, f"seed must be an integer from {seed_low} to {SEED_MAX}")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@contextlib.asynccontextmanager
async def emulators(api_keys: dict[str, str] | None = None):
    """All four emulators at once: ``async with emulators() as emus: emus["hiapi"]``."""
    keys = api_keys or {}
    started = {}
    try:
        for name in WORDS:
            started[name] = await ProviderEmulator(name, api_key=keys.get(name, "test-key")).start()
        yield started
    finally:
        for emulator in started.values():
            await emulator.stop()
