"""``provider: auto``: which provider renders a job, and which providers are resting.

Choice
    :meth:`Router.plan` checks an order against every provider with a key and keeps those
    that can make it as asked (mode, resolution, aspect ratio, seed, negative prompt,
    number of pictures, picture limits: the same :func:`paddock.orders.prepare` an explicit
    choice goes through), each with its own resolved request and price. :meth:`Router.rank`
    orders them: the cheapest first, then the shorter expected render time (what hh_api
    learnt of this kind of render), then the better recent success rate.

Health
    :class:`Health` tracks each provider's recent submits and renders. A submit that failed
    with 429, 5xx or a connection never made puts the provider in cooldown: at least
    ``cooldown`` seconds, longer when ``Retry-After`` asked for more, doubling with each
    failure in a row (up to ``max_cooldown``); a submit sent before the cooldown began that
    fails during it is the same outage, not a repeat. While it cools it is skipped; when the
    cooldown is over one job probes it (half-open) while the others keep away, and the
    probe's outcome either clears the provider or cools it again, for longer. A refused
    key takes the provider out until the key changes (a new process with a new key).
    Time comes from an injectable ``clock``, so tests and benches drive it.

Nothing here imports Discord or touches the job store: the runner asks, and reports back.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hh_api import HappyHorse, Mode, RenderTimes, VideoRequest
from paddock.orders import Order, OrderRefused, Picture, prepare

AUTO = "auto"
Clock = Callable[[], float]


class ProviderState(StrEnum):
    OK = "ok"
    COOLING = "cooling"  # skipped until its cooldown ends
    PROBING = "probing"  # cooldown over; one job is finding out whether it is back
    KEY_REFUSED = "key_refused"  # out until the key changes


@dataclass
class _Record:
    failures: int = 0  # submit failures in a row
    until: float | None = None  # set after a failure: cooling until then, half-open after
    probe_since: float | None = None  # when the current probe was let through
    refused: str | None = None  # why the key was refused
    cooldowns: int = 0
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=50))


@dataclass(frozen=True)
class ProviderHealth:
    """One provider's health at one moment, for /quota providers and the logs."""

    provider: str
    state: ProviderState
    cooling_for: float | None  # seconds left of its cooldown
    success_rate: float | None  # of its recent submits and renders; None before any
    recent: int  # how many of those there were
    cooldowns: int  # cooldowns since the start
    refused: str | None = None


class Health:
    """Every provider's recent outcomes and cooldowns (see the module's docstring)."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        cooldown: float = 60.0,
        max_cooldown: float = 900.0,
        probe_timeout: float = 300.0,
        window: int = 50,
    ) -> None:
        self.clock = clock
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.probe_timeout = probe_timeout  # a probe never heard of again stops blocking
        self.window = window
        self._records: dict[str, _Record] = {}

    def _record(self, provider: str) -> _Record:
        if provider not in self._records:
            self._records[provider] = _Record(outcomes=deque(maxlen=self.window))
        return self._records[provider]

    # -- questions ----------------------------------------------------------------------

    def state(self, provider: str) -> ProviderState:
        record = self._record(provider)
        if record.refused is not None:
            return ProviderState.KEY_REFUSED
        if record.until is None:
            return ProviderState.OK
        if self.clock() < record.until:
            return ProviderState.COOLING
        return ProviderState.PROBING

    def usable(self, provider: str) -> bool:
        """Whether a job may be sent there now (without taking the probe)."""
        state = self.state(provider)
        if state is ProviderState.OK:
            return True
        return state is ProviderState.PROBING and not self._probe_out(provider)

    def admit(self, provider: str) -> bool:
        """`usable`, and if the provider is half-open, this caller takes the one probe."""
        if not self.usable(provider):
            return False
        if self.state(provider) is ProviderState.PROBING:
            self._record(provider).probe_since = self.clock()
        return True

    def cooling_for(self, provider: str) -> float | None:
        record = self._record(provider)
        if record.until is None or record.refused is not None:
            return None
        left = record.until - self.clock()
        return left if left > 0 else None

    def success_rate(self, provider: str) -> float | None:
        outcomes = self._record(provider).outcomes
        return sum(outcomes) / len(outcomes) if outcomes else None

    def report(self, provider: str) -> ProviderHealth:
        record = self._record(provider)
        return ProviderHealth(
            provider=provider,
            state=self.state(provider),
            cooling_for=self.cooling_for(provider),
            success_rate=self.success_rate(provider),
            recent=len(record.outcomes),
            cooldowns=record.cooldowns,
            refused=record.refused,
        )

    def cooldowns(self) -> dict[str, int]:
        """Cooldowns since the start, by provider (for /metrics)."""
        return {name: record.cooldowns for name, record in self._records.items()}

    # -- what happened ------------------------------------------------------------------

    def submit_succeeded(self, provider: str) -> None:
        record = self._record(provider)
        record.outcomes.append(True)
        record.failures = 0
        record.until = None
        record.probe_since = None

    def submit_failed(self, provider: str, retry_after: float | None = None) -> float:
        """A 429, 5xx or connection never made: cool the provider; returns for how long.

        A failure while it already cools comes from a submit sent before the cooldown
        began: the same outage, not a repeat, so it only lengthens the cooldown as far as
        its ``Retry-After`` asks.
        """
        record = self._record(provider)
        record.outcomes.append(False)
        now = self.clock()
        hint = retry_after if retry_after is not None and math.isfinite(retry_after) else None
        if record.until is not None and now < record.until:
            if hint is not None:
                record.until = max(record.until, now + min(hint, self.max_cooldown))
            return record.until - now
        record.failures += 1
        seconds = min(self.max_cooldown, self.cooldown * 2 ** (record.failures - 1))
        if hint is not None:
            seconds = max(seconds, min(hint, self.max_cooldown))
        record.until = now + seconds
        record.probe_since = None
        record.cooldowns += 1
        return seconds

    def key_refused(self, provider: str, reason: str) -> None:
        """401/403: out until the key changes (which takes a restart with the new key)."""
        record = self._record(provider)
        record.outcomes.append(False)
        record.refused = reason
        record.probe_since = None

    def render_succeeded(self, provider: str) -> None:
        self._record(provider).outcomes.append(True)

    def render_failed(self, provider: str) -> None:
        """A task failed at the provider for a reason not the member's."""
        self._record(provider).outcomes.append(False)

    def probe_abandoned(self, provider: str) -> None:
        """The job holding the probe went elsewhere (or away): let another one probe."""
        self._record(provider).probe_since = None

    def _probe_out(self, provider: str) -> bool:
        since = self._record(provider).probe_since
        return since is not None and self.clock() - since < self.probe_timeout


@dataclass(frozen=True)
class Route:
    """One provider that can make a job, with the request resolved for it and its price."""

    provider: str
    credits: int
    request: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "credits": self.credits, "request": self.request}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Route:
        return cls(str(data["provider"]), int(data["credits"]), dict(data["request"]))


class NoProviderAvailable(OrderRefused):
    """Every provider that could make the job is cooling down or has its key refused."""


class Router:
    """Chooses among `providers` (those with a key) for each job; see the module docstring."""

    def __init__(self, hh: HappyHorse, health: Health, providers: Sequence[str]) -> None:
        self.hh = hh
        self.health = health
        self.providers = list(providers)
        self._failovers: dict[str, int] = {}

    def plan(
        self,
        mode: Mode,
        prompt: str,
        pictures: Sequence[Picture] = (),
        **options: Any,
    ) -> list[Route]:
        """Every provider that can make this order, ranked; OrderRefused when none can."""
        routes: list[Route] = []
        refusals: list[tuple[str, str]] = []
        for provider in self.providers:
            if mode not in self.hh.provider(provider).offers:
                refusals.append((provider, f"{self.hh.provider(provider).title} does not "
                                           f"offer {mode.value} mode."))
                continue
            try:
                order: Order = prepare(self.hh, provider, mode, prompt, pictures, **options)
            except OrderRefused as refusal:
                refusals.append((provider, str(refusal)))
                continue
            routes.append(Route(provider, order.credits, order.request.to_dict()))
        if not routes:
            reason = refusals[0][1] if refusals else "no provider has a key."
            raise OrderRefused(f"No provider this bot uses can make this video: {reason}")
        return self.rank(routes)

    def expected_seconds(self, route: Route) -> float:
        """When a render like this one is likely done (inf until a few were seen)."""
        request = VideoRequest.from_dict(route.request)
        window = self.hh.render_times.window(RenderTimes.key(route.provider, request))
        return math.inf if window is None else (window.soonest + window.latest) / 2

    def rank(self, routes: Iterable[Route]) -> list[Route]:
        """Cheapest first; ties by shorter expected render, then better success rate."""

        def key(route: Route) -> tuple[int, float, float, int]:
            rate = self.health.success_rate(route.provider)
            order = (self.providers.index(route.provider) if route.provider in self.providers
                     else len(self.providers))
            return (route.credits, self.expected_seconds(route),
                    -(1.0 if rate is None else rate), order)

        return sorted(routes, key=key)

    def first_usable(self, routes: Iterable[Route], tried: Iterable[str] = ()) -> Route | None:
        """The best route not `tried` whose provider takes jobs now (no probe taken)."""
        skip = set(tried)
        for route in self.rank(routes):
            if route.provider not in skip and self.health.usable(route.provider):
                return route
        return None

    def soonest_back(self, routes: Iterable[Route]) -> float | None:
        """Seconds until the first cooling provider among `routes` may be tried again."""
        waits = [w for r in routes if (w := self.health.cooling_for(r.provider)) is not None]
        return min(waits) if waits else None

    def failed_over(self, provider: str) -> None:
        """A job left `provider` for another one (for /metrics)."""
        self._failovers[provider] = self._failovers.get(provider, 0) + 1

    def failovers(self) -> dict[str, int]:
        return dict(self._failovers)

    def median_render_seconds(self, provider: str) -> float | None:
        """The median of the renders hh_api saw finish at `provider` since the start."""
        seen = self.hh.render_times.seen(provider)
        return statistics.median(seen) if seen else None
