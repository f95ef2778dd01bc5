"""`HappyHorse`: one async client for every provider, over one pooled HTTP session."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from hh_api.capabilities import ModeCapabilities
from hh_api.config import ProviderConfig, load_providers
from hh_api.download import download_video
from hh_api.errors import (
    ConfigurationError,
    ProtocolError,
    ProviderUnavailableError,
    RateLimitError,
    TaskFailedError,
    WaitTimeoutError,
)
from hh_api.models import Mode, Status, Submission, TaskState, VideoRequest
from hh_api.pricing import PriceTable
from hh_api.providers import PROVIDERS, Provider
from hh_api.render_times import RenderKey, RenderTimes, RenderWindow
from hh_api.transport import (
    Call,
    Observer,
    ProviderCall,
    RetryPolicy,
    Sleep,
    Transport,
    report_call,
)

log = logging.getLogger("hh_api")
# The longest step of the grid that pauses between status checks end on (see `_pause`).
PAUSE_GRID = 1.0  # seconds

OnUpdate = Callable[[TaskState], Awaitable[None] | None]


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed per HTTP request."""

    connect: float = 10.0
    read: float = 30.0  # between bytes of a video download
    total: float = 60.0  # one whole request; downloads get `download_total`
    download_total: float = 600.0


@dataclass(frozen=True)
class PollPolicy:
    """How often to ask about a task: start near 2 s, grow, cap near 15 s.

    When the client knows how long this kind of render takes (a `RenderWindow`), it
    checks a few times early on (growing by `lead_factor`, to notice a task that fails
    at once) and then not until the window opens; inside it, every `near` seconds (more
    sparsely when the window is wide: at most `window_checks` checks across it); and it
    grows again from `near` if the render outlasts the window.
    """

    initial: float = 2.0
    factor: float = 1.5
    maximum: float = 15.0
    near: float = 1.0
    window_checks: int = 10
    lead_factor: float = 3.0
    lead_maximum: float = 60.0

    def intervals(self) -> Iterator[float]:
        return _growing(self.initial, self.factor, self.maximum)

    def schedule(self, window: RenderWindow | None) -> PollSchedule:
        return PollSchedule(self, window)


def _growing(start: float, factor: float, maximum: float) -> Iterator[float]:
    interval = start
    while True:
        yield interval
        interval = min(maximum, interval * factor)


class PollSchedule:
    """The pauses between one task's status checks (see `PollPolicy`)."""

    def __init__(self, policy: PollPolicy, window: RenderWindow | None) -> None:
        self.window = window
        self._before = (
            policy.intervals() if window is None
            else _growing(policy.initial, policy.lead_factor, policy.lead_maximum)
        )
        self._after: Iterator[float] | None = None
        self._policy = policy
        self.near = min(policy.near, policy.initial)  # never slower than the first checks
        if window is not None:
            width = window.latest - window.soonest
            self.near = max(self.near, width / max(policy.window_checks, 1))

    def pause(self, since_submitted: float | None) -> float:
        """Seconds to wait before the next check, `since_submitted` seconds into the task."""
        window = self.window
        if window is None or since_submitted is None:
            return next(self._before)
        if since_submitted < window.soonest:
            return min(next(self._before), window.soonest - since_submitted)
        if since_submitted <= window.latest:
            return self.near
        if self._after is None:
            policy = self._policy
            self._after = _growing(self.near * policy.factor, policy.factor, policy.maximum)
        return next(self._after)


class HappyHorse:
    """The client. Use it as ``async with HappyHorse() as hh: ...``.

    Providers, keys and base URLs come from the environment unless `providers`
    is given; `prices` likewise. Every method names the provider it talks to, so
    one client (and one connection pool) serves all of them.

    `on_call`, if given (or set later as the attribute), is called once per HTTP
    attempt (retries included) with a `ProviderCall`: for metrics. It runs inline, so
    it must be quick; whatever it raises is logged and never breaks the call.
    """

    def __init__(
        self,
        providers: Mapping[str, ProviderConfig] | None = None,
        *,
        prices: PriceTable | None = None,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        poll: PollPolicy = PollPolicy(),
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_call: Observer | None = None,
    ) -> None:
        configs = load_providers() if providers is None else providers
        unknown = set(configs) - set(PROVIDERS)
        if unknown:
            raise ConfigurationError(f"unknown provider(s): {', '.join(sorted(unknown))}")
        self.providers: dict[str, Provider] = {
            name: PROVIDERS[name](config) for name, config in configs.items()
        }
        self.prices = PriceTable.from_env() if prices is None else prices
        self.timeouts = timeouts
        self.retry = retry
        self.poll = poll
        self.on_call = on_call
        self._sleep = sleep
        self._clock = clock
        self.render_times = RenderTimes()
        # task id -> (kind of render, loop time it was submitted), for tasks sent from here
        self._submitted: OrderedDict[str, tuple[RenderKey, float]] = OrderedDict()
        self._session = session
        self._owns_session = session is None
        self._transport: Transport | None = None

    def __repr__(self) -> str:
        return f"HappyHorse(providers={sorted(self.providers)})"

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> HappyHorse:
        self._ensure_transport()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None
        self._transport = None

    def _ensure_transport(self) -> Transport:
        if self._transport is None:
            if self._session is None:
                # No timer between the bytes of the API's answers: they are small and `total`
                # bounds them, where a read timer is set again on every chunk (4% of a
                # status check's CPU). Downloads, which stream, keep one (`download`).
                self._session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(
                        total=self.timeouts.total, sock_connect=self.timeouts.connect,
                    ),
                    connector=aiohttp.TCPConnector(limit=100, limit_per_host=20),
                    raise_for_status=False,
                )
                self._owns_session = True
            self._transport = Transport(
                self._session, self.retry, sleep=self._sleep, observer=self._observe
            )
        return self._transport

    def _observe(self, call: ProviderCall) -> None:
        report_call(self.on_call, call)

    # -- what a provider offers -----------------------------------------------------------

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none"
            raise ConfigurationError(
                f"unknown provider {name!r}; known: {known}", provider=name
            ) from None

    def configured(self) -> list[str]:
        """The providers that have an API key, in the order they were given."""
        return [name for name, p in self.providers.items() if p.config.api_key]

    def capabilities(self, provider: str, mode: Mode | str) -> ModeCapabilities:
        return self.provider(provider).capabilities(mode)

    def validate(self, provider: str, request: VideoRequest) -> VideoRequest:
        """The request with the provider's defaults filled in, or InvalidRequestError."""
        return self.capabilities(provider, request.mode).resolve(request)

    def price(self, provider: str, request: VideoRequest) -> int:
        """Credits for `request` on `provider` (validated first)."""
        return self.prices.credits(provider, self.validate(provider, request))

    # -- tasks --------------------------------------------------------------------------

    async def submit(
        self,
        provider: str,
        request: VideoRequest,
        *,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
        wait_on_rate_limit: bool = True,
    ) -> Submission:
        """Validate and send `request`; return the provider's task id.

        Invalid requests are refused before anything is sent. For providers that
        take an idempotency key, one is made unless given, and reused by retries;
        give your own to make a submit safe to repeat across restarts.
        `wait_on_rate_limit=False` raises a 429 at once as RateLimitError (with the
        provider's `retry_after`) rather than waiting it out: for a caller that can send
        the job to another provider instead.
        """
        spec = self.provider(provider)
        offer = spec.capabilities(request.mode)
        resolved = offer.resolve(request)
        headers = spec.headers()
        call = Call.SUBMIT
        if spec.idempotent_submit:
            call = Call.IDEMPOTENT_SUBMIT
            headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        body = spec.submit_body(offer, resolved, callback_url)
        answer = await self._ensure_transport().request(
            "POST", spec.base_url + offer.path, call=call, provider=provider,
            headers=headers, body=body, enveloped=spec.enveloped,
            wait_on_rate_limit=wait_on_rate_limit,
        )
        data = _data(spec, answer.payload)
        task_id = spec.task_id_from_submission(data)
        self._remember_submission(task_id, RenderTimes.key(provider, resolved))
        log.info("provider=%s task=%s accepted (%s mode)", provider, task_id, offer.mode.value)
        return Submission(provider=provider, task_id=task_id, raw=answer.payload)

    async def status(self, provider: str, task_id: str) -> TaskState:
        """Ask the provider once about `task_id`, retrying only transient failures."""
        spec = self.provider(provider)
        answer = await self._ensure_transport().request(
            "GET", spec.base_url + spec.status_path(task_id), call=Call.READ,
            provider=provider, headers=spec.headers(), enveloped=spec.enveloped,
            task_id=task_id,
        )
        return spec.read_status(task_id, _data(spec, answer.payload), datetime.now(UTC))

    async def wait(
        self,
        provider: str,
        task_id: str,
        *,
        timeout: float | None = None,
        poll: PollPolicy | None = None,
        on_update: OnUpdate | None = None,
        wake: asyncio.Event | None = None,
        request: VideoRequest | None = None,
        submitted_at: datetime | None = None,
        before_check: Callable[[], Awaitable[None]] | None = None,
    ) -> TaskState:
        """Poll until the task ends; return the succeeded state.

        Works on any task id, so a restarted caller resumes where it left off; give it
        the task's `request` and `submitted_at` then, so polling can follow how long
        such renders take (tasks submitted by this client are known already).
        `on_update` is called whenever the status (or the provider's word) changes.
        Setting `wake` makes the next poll happen at once (a callback arrived).
        `before_check` is awaited before each status check: a caller's way to let its
        more urgent work go first.
        Transient failures while polling are waited out until `timeout`.
        Raises TaskFailedError, WaitTimeoutError (with the task id and last state),
        AuthenticationError or TaskNotFoundError. Cancellation propagates.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        key, sent = self._submitted.pop(task_id, (None, None))
        if key is None and request is not None:
            key = RenderTimes.key(provider, request)
        if sent is None and submitted_at is not None:
            sent = self._clock() - (datetime.now(UTC) - submitted_at).total_seconds()
        window = None if key is None else (
            self.render_times.window(key) or self.render_times.floor(key))
        policy = poll or self.poll
        schedule = policy.schedule(window)
        last: TaskState | None = None
        running_at = 0.0  # seconds after submission when it was last seen unfinished
        if sent is not None and self._clock() - sent < policy.initial:
            # just submitted: the provider's answer was the first check
            await self._pause(schedule.pause(self._clock() - sent), wake)
        while True:
            if before_check is not None:
                await before_check()
            checked_at = None if sent is None else self._clock() - sent
            try:
                state = await self.status(provider, task_id)
            except (ProviderUnavailableError, RateLimitError, ProtocolError) as error:
                log.warning("provider=%s task=%s status check failed, will retry: %s",
                            provider, task_id, error.for_log())
            else:
                if last is None or (state.status, state.provider_status) != (
                    last.status, last.provider_status,
                ):
                    log.info("provider=%s task=%s is %s (%s)", provider, task_id,
                             state.status.value, state.provider_status)
                    if on_update is not None:
                        result = on_update(state)
                        if inspect.isawaitable(result):
                            await result
                last = state
                if state.status is Status.SUCCEEDED:
                    if key is not None and checked_at is not None:
                        self.render_times.learn(key, running_at, checked_at)
                    return state
                if state.status is Status.FAILED:
                    raise TaskFailedError(state)
                if checked_at is not None:
                    running_at = checked_at
            interval = schedule.pause(None if sent is None else self._clock() - sent)
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise WaitTimeoutError(
                        f"{provider} task {task_id} was not finished within {timeout:g} s; "
                        f"wait on it again to resume",
                        task_id=task_id, provider=provider, last=last,
                    )
                interval = min(interval, remaining)
            await self._pause(interval, wake)

    async def generate(
        self,
        provider: str,
        request: VideoRequest,
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        idempotency_key: str | None = None,
    ) -> TaskState:
        """Submit and wait: the whole job in one call."""
        submission = await self.submit(provider, request, idempotency_key=idempotency_key)
        return await self.wait(provider, submission.task_id, timeout=timeout, on_update=on_update)

    async def download(
        self,
        url: str,
        destination: str | Path,
        *,
        max_bytes: int = 200 * 1024 * 1024,
        provider: str | None = None,
    ) -> Path:
        """Stream a finished video to `destination`, refusing non-videos and oversize files.

        The provider's key is never sent: output links are public, pre-signed URLs.
        `provider` (who made the video) only labels the attempts reported to `on_call`.
        """
        self._ensure_transport()
        assert self._session is not None
        return await download_video(
            self._session, url, Path(destination), max_bytes=max_bytes,
            timeout=aiohttp.ClientTimeout(
                total=self.timeouts.download_total,
                sock_connect=self.timeouts.connect,
                sock_read=self.timeouts.read,
            ),
            retry=self.retry, sleep=self._sleep, provider=provider, observer=self._observe,
        )

    def _remember_submission(self, task_id: str, key: RenderKey) -> None:
        self._submitted[task_id] = (key, self._clock())
        while len(self._submitted) > 10_000:  # submitted but never waited on
            self._submitted.popitem(last=False)

    async def _pause(self, seconds: float, wake: asyncio.Event | None) -> None:
        if wake is None:
            await self._sleep(seconds)
            return
        if not wake.is_set():
            # A timer that sets the event: one handle per pause, where wait_for made a
            # task, a timeout and a cancellation: 25-30 us per pause instead of 65-85 us.
            # It ends on a grid of a tenth of the pause (at most 1 s) shared by every wait,
            # so the checks of many tasks go out together, one turn of the event loop and
            # one wait for the sockets for many, rather than each on its own.
            loop = asyncio.get_running_loop()
            tick = min(PAUSE_GRID, seconds / 10)
            due = loop.time() + seconds
            if tick > 0:
                due = math.ceil(due / tick) * tick
            timer = loop.call_at(due, wake.set)
            try:
                await wake.wait()
            finally:
                timer.cancel()
        wake.clear()


def _data(spec: Provider, payload: Any) -> Mapping[str, Any]:
    """The part of an answer that carries the task: `data` in an envelope."""
    if not isinstance(payload, dict):
        raise ProtocolError(f"{spec.title} answered with something other than an object",
                            provider=spec.name)
    if not spec.enveloped:
        return payload
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ProtocolError(f"{spec.title} answered without a 'data' object", provider=spec.name)
    return data

