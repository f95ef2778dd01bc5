"""The side door: a small HTTP server inside the bot process, off unless a port is set.

- ``GET /healthz``: 200 and ``{"status": "ok", "checks": {...}}`` when the gateway, the
  database and the runner are fine; 503 with each failed check's reason otherwise.
- ``GET /metrics``: Prometheus text (see :mod:`paddock.metrics`).
- ``POST /callbacks/hiapi`` (only with a webhook secret): HiAPI's terminal callbacks.
  The signature is checked (401 and nothing done when it is bad, missing or stale), a
  body over 64 KiB gets 413, and a task id seen before gets 200 and nothing more. A
  genuine callback only wakes the runner, which asks HiAPI for the task's status at once
  (the body is never trusted); the answer goes back before any provider call is made.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from hh_api import CallbackVerificationError, Secret, verify_hiapi_callback
from paddock.health import HealthCheck
from paddock.metrics import PaddockMetrics

log = logging.getLogger(__name__)

MAX_CALLBACK_BYTES = 64 * 1024
REMEMBERED_CALLBACKS = 10_000  # task ids kept for deduplication, oldest forgotten first


class _SeenTasks:
    """The task ids of the latest callbacks, bounded."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, task_id: str) -> bool:
        """Remember `task_id`; False if it was already remembered."""
        if task_id in self._ids:
            return False
        self._ids[task_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


class SideDoor:
    """The HTTP server: build it, ``await start()``, ``await stop()``.

    `wake` is the runner's ``wake(task_id)``; `hiapi_secret` enables the HiAPI callback
    route. Port 0 picks a free port (see `port` once started).
    """

    def __init__(
        self,
        *,
        health: HealthCheck,
        metrics: PaddockMetrics,
        wake: Callable[[str], bool],
        hiapi_secret: Secret | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.health = health
        self.metrics = metrics
        self.wake = wake
        self.hiapi_secret = hiapi_secret
        self.host = host
        self.port = port
        self._seen = _SeenTasks(REMEMBERED_CALLBACKS)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_CALLBACK_BYTES)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        if self.hiapi_secret:
            app.router.add_post("/callbacks/hiapi", self._hiapi_callback)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        routes = "/healthz, /metrics" + (", /callbacks/hiapi" if self.hiapi_secret else "")
        log.info("side door listening on %s (%s)", self.url, routes)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            log.info("side door closed")

    # -- routes -------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        report = await self.health.run()
        if not report.healthy:
            failed = {name: why for name, why in report.problems.items() if why}
            log.warning("health check failed: %s", failed)
        return web.json_response(report.as_json(), status=200 if report.healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _hiapi_callback(self, request: web.Request) -> web.Response:
        body = await request.read()  # over client_max_size: aiohttp answers 413
        assert self.hiapi_secret is not None
        try:
            task_id = verify_hiapi_callback(self.hiapi_secret.reveal(), body, request.headers)
        except CallbackVerificationError as error:
            log.warning("provider=hiapi callback refused from %s: %s", request.remote, error)
            return web.json_response({"error": str(error)}, status=401)
        if not self._seen.add(task_id):
            log.info("provider=hiapi task=%s callback repeated; ignored", task_id)
            return web.json_response({"status": "duplicate"})
        woke = self.wake(task_id)
        log.info("provider=hiapi task=%s callback received; %s", task_id,
                 "checking its status now" if woke else "no job is waiting on it here")
        return web.json_response({"status": "accepted"})
