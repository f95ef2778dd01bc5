"""How late the event loop runs: a tick every `interval`, and how much later it came.

Anything that blocks the loop (a decode, a hash, a slow query on the loop) delays every
member's answer by as much; this makes it visible. Each lateness is observed in the
``paddock_event_loop_lag_seconds`` histogram (served at ``/metrics``), and one over
`warn_after` is logged as a WARNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry, Gauge, Histogram

log = logging.getLogger(__name__)

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class LoopLagMonitor:
    """Measures the running loop's lag while started; ``stop()`` ends it."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        interval: float = 0.1,
        warn_after: float = 0.25,
    ) -> None:
        self.interval = interval
        self.warn_after = warn_after
        self.worst = 0.0  # the largest lag seen
        self._lag = Histogram(
            "paddock_event_loop_lag_seconds",
            "How late the event loop ran a tick scheduled every 0.1 s.",
            buckets=LAG_BUCKETS, registry=registry,
        )
        self._worst = Gauge(
            "paddock_event_loop_lag_max_seconds", "The largest event loop lag seen.",
            registry=registry,
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="event loop lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.record(max(0.0, loop.time() - due))

    def record(self, lag: float) -> None:
        self._lag.observe(lag)
        if lag > self.worst:
            self.worst = lag
            self._worst.set(lag)
        if lag > self.warn_after:
            log.warning("the event loop was blocked for %.2f s (over %.0f ms): members' "
                        "answers waited as long", lag, self.warn_after * 1000)
