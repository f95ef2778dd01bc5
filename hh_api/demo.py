"""`DemoBackend`: a small video service inside the process, for the free demo provider.

It lets the whole stack run without paying anyone: the client talks to it over HTTP
exactly as to a real provider (`hh_api.providers.demo.Demo` is an ordinary provider), it
queues, renders, succeeds or fails, and the video it returns is a real MP4 that ships
with the project (``hh_api/assets/demo.mp4``, 4 s, 480x270, H.264).

The wire, JSON on ``http://127.0.0.1:<ephemeral port>``, keyed with a random key made
per process (``Authorization: Bearer <key>``):

``POST /v1/text-to-video``, ``/v1/image-to-video``, ``/v1/reference-to-video``
    ``{"model": "paddock-demo-t2v", "prompt": "...", "images": ["https://..."],
    "resolution": "720p", "aspect_ratio": "16:9", "duration": 5, "seed": 7}``
    (``images`` only in image and reference mode; the other fields are optional).
    200 ``{"task_id": "...", "status": "queued"}``; 400 ``{"error": "..."}`` for an
    unknown field or anything the client's own checks refuse (the offer is JoyPix's);
    401 without the key.
``GET /v1/videos/{task_id}``
    200 ``{"task_id", "status"}`` with ``status`` one of ``queued``, ``running``,
    ``succeeded`` (then ``video_url`` and ``expires_at``, ISO 8601) or ``failed`` (then
    ``error``); 404 for an unknown task, or one whose link has expired.
``GET /videos/{task_id}.mp4``
    The video, ``video/mp4``, without a key, like a real provider's pre-signed link,
    until it expires an hour after the render ended; 404 after that.

A task waits in line for a quarter of the render time (at most 2 s), renders for
``DEMO_RENDER_SECONDS`` (8 by default), then succeeds. It fails instead when its prompt
contains ``#fail``, or when a draw at submit time falls under ``DEMO_FAIL_RATE``, with a
reason that says the demo was asked to fail.

A task id carries its own timeline (when it starts rendering, when it ends, and how), so
the backend keeps no task table: memory stays flat however many jobs pass through, and a
task submitted before the bot restarted is still answered after it, as a real provider
would. An expired task is simply answered 404.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import random
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from types import TracebackType
from typing import Any

from aiohttp import web

from hh_api.config import ProviderConfig, Secret
from hh_api.errors import ConfigurationError, InvalidRequestError
from hh_api.models import Mode, Status, VideoRequest
from hh_api.providers.demo import DEMO_PROVIDER, FAIL_MARKER, LINK_LIFETIME, SUBMIT_PATHS, Demo

log = logging.getLogger("hh_api.demo")

MAX_QUEUED_SECONDS = 2.0
BODY_FIELDS = frozenset({"model", "prompt", "images", "resolution", "aspect_ratio",
                         "duration", "seed"})
TASK_ID = re.compile(r"demo-([0-9a-f]{1,12})-([0-9a-f]{1,12})-(ok|asked|drawn)-[0-9a-f]{12}")


def demo_video() -> bytes:
    """The bundled clip every demo task returns."""
    return resources.files("hh_api").joinpath("assets", "demo.mp4").read_bytes()


@dataclass(frozen=True)
class DemoSettings:
    """How the demo behaves: ``DEMO_RENDER_SECONDS`` and ``DEMO_FAIL_RATE``."""

    render_seconds: float = 8.0
    fail_rate: float = 0.0  # the share of tasks that fail, 0..1

    @property
    def queued_seconds(self) -> float:
        return min(MAX_QUEUED_SECONDS, self.render_seconds / 4)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DemoSettings:
        env = os.environ if environ is None else environ
        render = _number(env, "DEMO_RENDER_SECONDS", 8.0, 0, math.inf,
                         "a number of seconds >= 0")
        rate = _number(env, "DEMO_FAIL_RATE", 0.0, 0, 1,
                       "a share between 0 and 1, such as 0.2")
        return cls(render_seconds=render, fail_rate=rate)


def _number(
    env: Mapping[str, str], name: str, default: float, low: float, high: float, what: str
) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigurationError(f"{name} must be {what}, not {text!r}", setting=name)
    return value


class Outcome(StrEnum):
    """How a task ends; written into its id."""

    OK = "ok"
    ASKED = "asked"  # the prompt contained the fail marker
    DRAWN = "drawn"  # the DEMO_FAIL_RATE draw said fail


FAILURE_REASONS = {
    Outcome.ASKED: f"the demo provider was asked to fail: the prompt contains {FAIL_MARKER}",
    Outcome.DRAWN: "the demo provider was asked to fail: this task drew a failure "
                   "(DEMO_FAIL_RATE)",
}


@dataclass(frozen=True)
class DemoTask:
    """A task's timeline, in Unix milliseconds, as its id spells it."""

    running_at: int
    done_at: int
    outcome: Outcome
    nonce: str

    @property
    def task_id(self) -> str:
        return f"demo-{self.running_at:x}-{self.done_at:x}-{self.outcome.value}-{self.nonce}"

    @property
    def expires_at(self) -> int:
        return self.done_at + int(LINK_LIFETIME.total_seconds() * 1000)

    @classmethod
    def parse(cls, task_id: str) -> DemoTask | None:
        match = TASK_ID.fullmatch(task_id)
        if match is None:
            return None
        running_at, done_at = int(match[1], 16), int(match[2], 16)
        if done_at < running_at:
            return None
        return cls(running_at, done_at, Outcome(match[3]), task_id[-12:])

    def status(self, now_ms: int) -> Status | None:
        """Where the task stands at `now_ms`; None once it is forgotten."""
        if now_ms >= self.expires_at:
            return None
        if now_ms < self.running_at:
            return Status.QUEUED
        if now_ms < self.done_at:
            return Status.RUNNING
        return Status.SUCCEEDED if self.outcome is Outcome.OK else Status.FAILED


class DemoBackend:
    """The demo service, listening on 127.0.0.1 while the ``async with`` block runs.

    ``provider_config()`` gives the `ProviderConfig` a `HappyHorse` client needs to
    reach it. `clock` (Unix seconds) and `rng` are there for tests.
    """

    def __init__(
        self,
        settings: DemoSettings = DemoSettings(),
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.api_key = Secret(secrets.token_urlsafe(32))
        self.base_url = ""
        self._clock = clock
        self._rng = rng
        self._offers = Demo(ProviderConfig(DEMO_PROVIDER)).offers
        self._modes = {path: mode for mode, path in SUBMIT_PATHS.items()}
        self._video = b""
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        return f"DemoBackend({self.base_url or 'not started'})"

    def provider_config(self) -> ProviderConfig:
        if not self.base_url:
            raise ConfigurationError("the demo backend is not running", provider=DEMO_PROVIDER)
        return ProviderConfig(DEMO_PROVIDER, api_key=self.api_key, base_url=self.base_url)

    async def __aenter__(self) -> DemoBackend:
        self._video = demo_video()
        app = web.Application(client_max_size=256 * 1024)
        app.router.add_post("/v1/{kind}-to-video", self._submit)
        app.router.add_get("/v1/videos/{task_id}", self._status)
        app.router.add_get("/videos/{task_id}.mp4", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        log.info("demo provider listening on %s (renders take %gs, fail rate %g)",
                 self.base_url, self.settings.render_seconds, self.settings.fail_rate)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.base_url = ""

    # -- the wire -----------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.Response:
        self._check_key(request)
        mode = self._modes.get(request.path)
        if mode is None:
            raise _error(web.HTTPNotFound, f"no such path: {request.path}")
        try:
            body = await request.json()
        except ValueError:
            raise _error(web.HTTPBadRequest, "the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise _error(web.HTTPBadRequest, "the body must be a JSON object")
        resolved = self._resolve(mode, body)
        now_ms = self._now_ms()
        running_at = now_ms + round(self.settings.queued_seconds * 1000)
        task = DemoTask(
            running_at=running_at,
            done_at=running_at + round(self.settings.render_seconds * 1000),
            outcome=self._outcome(resolved.prompt),
            nonce=secrets.token_hex(6),
        )
        log.debug("demo task %s accepted (%s mode)", task.task_id, mode.value)
        return web.json_response({"task_id": task.task_id, "status": Status.QUEUED.value})

    async def _status(self, request: web.Request) -> web.Response:
        self._check_key(request)
        task_id = request.match_info["task_id"]
        task = DemoTask.parse(task_id)
        status = task.status(self._now_ms()) if task is not None else None
        if task is None or status is None:
            raise _error(web.HTTPNotFound, f"no demo task {task_id} (or its link expired)")
        answer: dict[str, Any] = {"task_id": task_id, "status": status.value}
        if status is Status.SUCCEEDED:
            answer["video_url"] = f"{self.base_url}/videos/{task_id}.mp4"
            answer["expires_at"] = _iso(task.expires_at)
        elif status is Status.FAILED:
            answer["error"] = FAILURE_REASONS[task.outcome]
        return web.json_response(answer)

    async def _download(self, request: web.Request) -> web.Response:
        task = DemoTask.parse(request.match_info["task_id"])
        if task is None or task.status(self._now_ms()) is not Status.SUCCEEDED:
            raise _error(web.HTTPNotFound, "no such video, or its link expired")
        return web.Response(body=self._video, content_type="video/mp4")

    # -- helpers ------------------------------------------------------------------------

    def _check_key(self, request: web.Request) -> None:
        given = request.headers.get("Authorization", "")
        wanted = f"Bearer {self.api_key.reveal()}"
        if not hmac.compare_digest(given.encode(), wanted.encode()):
            raise _error(web.HTTPUnauthorized, "missing or wrong API key")

    def _resolve(self, mode: Mode, body: dict[str, Any]) -> VideoRequest:
        """The body as a request, checked against the offer exactly as the client checks."""
        offer = self._offers[mode]
        unknown = sorted(set(body) - BODY_FIELDS)
        if unknown:
            raise _error(web.HTTPBadRequest, f"unknown field(s): {', '.join(unknown)}")
        if body.get("model") != offer.model:
            raise _error(web.HTTPBadRequest, f"model must be {offer.model} on this path")
        prompt, images = body.get("prompt"), body.get("images", [])
        if not isinstance(prompt, str):
            raise _error(web.HTTPBadRequest, "prompt must be a string")
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            raise _error(web.HTTPBadRequest, "images must be a list of URLs")
        if "images" in body and not offer.max_images:
            raise _error(web.HTTPBadRequest, f"{mode.value} mode takes no images")
        try:
            return offer.resolve(VideoRequest(
                prompt=prompt, mode=mode, images=tuple(images),
                resolution=body.get("resolution"), aspect_ratio=body.get("aspect_ratio"),
                duration=body.get("duration"), seed=body.get("seed"),
            ))
        except InvalidRequestError as error:
            raise _error(web.HTTPBadRequest, str(error)) from None

    def _outcome(self, prompt: str) -> Outcome:
        if FAIL_MARKER in prompt.lower():
            return Outcome.ASKED
        if self.settings.fail_rate and self._rng() < self.settings.fail_rate:
            return Outcome.DRAWN
        return Outcome.OK

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


def _iso(unix_ms: int) -> str:
    return datetime.fromtimestamp(unix_ms / 1000, UTC).isoformat()
