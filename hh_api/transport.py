"""HTTP with the retry rules a paid API needs.

Reads (status checks) are retried on 429, 5xx, broken connections, timeouts and
bodies that are not JSON, with exponential backoff and full jitter. A submit is
retried only when it certainly created nothing (429, 503, a connection that was
never made) or when the provider takes an idempotency key; otherwise a submit
whose outcome is unknown raises `SubmitOutcomeUnknownError` rather than risk
paying twice. 401 and 403 fail at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

import aiohttp

from hh_api.errors import (
    AuthenticationError,
    InvalidRequestError,
    ProtocolError,
    ProviderUnavailableError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
)

log = logging.getLogger("hh_api.http")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on one call."""

    attempts: int = 4  # the first try included
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # a provider's Retry-After is honoured up to this

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """Full jitter: a random delay up to base * 2**retry, capped."""
        return rng() * min(self.max_delay, self.base_delay * 2**retry)


class Call(Enum):
    """What kind of request, which decides what may be retried."""

    READ = "read"  # idempotent: retry every transient failure
    SUBMIT = "submit"  # creates a task: retry only what certainly created nothing
    IDEMPOTENT_SUBMIT = "idempotent submit"  # the provider deduplicates by key


@dataclass(frozen=True)
class Answer:
    status: int
    payload: Any


class _Retry(Exception):
    """One attempt failed in a way that may be retried."""

    def __init__(self, error: Exception, delay: float | None = None) -> None:
        self.error = error
        self.delay = delay


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header in seconds, from either of its forms; None if unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class Transport:
    """Sends one logical request through `session`, retrying as its `Call` allows."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        retry: RetryPolicy,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.session = session
        self.retry = retry
        self.sleep = sleep
        self.rng = rng

    async def request(
        self,
        method: str,
        url: str,
        *,
        call: Call,
        provider: str,
        headers: Mapping[str, str],
        body: Any = None,
        enveloped: bool,
        task_id: str | None = None,
    ) -> Answer:
        last: _Retry | None = None
        for attempt in range(self.retry.attempts):
            if last is not None:
                delay = last.delay
                if delay is None:
                    delay = self.retry.backoff(attempt - 1, self.rng)
                log.info(
                    "%s %s: retry %d of %d in %.2fs after: %s",
                    provider, call.value, attempt, self.retry.attempts - 1, delay, last.error,
                )
                await self.sleep(delay)
            try:
                return await self._once(
                    method, url, call=call, provider=provider, headers=headers, body=body,
                    enveloped=enveloped, task_id=task_id,
                )
            except _Retry as retry:
                last = retry
        assert last is not None
        raise last.error

    async def _once(
        self,
        method: str,
        url: str,
        *,
        call: Call,
        provider: str,
        headers: Mapping[str, str],
        body: Any,
        enveloped: bool,
        task_id: str | None,
    ) -> Answer:
        sent_maybe = call is Call.SUBMIT  # a retry would risk a second task
        try:
            async with self.session.request(method, url, headers=headers, json=body) as response:
                raw = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
                content_type = response.headers.get("Content-Type", "")
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            # The connection was never made: nothing reached the provider.
            reason = getattr(error, "os_error", None) or "connection timed out"
            raise _Retry(
                ProviderUnavailableError(f"cannot reach {provider}: {reason}", provider=provider)
            ) from None
        except (TimeoutError, aiohttp.ClientError) as error:
            what = "timed out" if isinstance(error, TimeoutError) else "connection broke"
            if sent_maybe:
                raise SubmitOutcomeUnknownError(
                    f"the {provider} submit {what} after it was sent; it may or may not have "
                    f"created a task, so it was not sent again",
                    provider=provider,
                ) from None
            raise _Retry(
                ProviderUnavailableError(f"{provider} {what}", provider=provider)
            ) from None
        log.debug("%s %s %s -> %d", provider, method, url, status)

        payload = _json_or_none(raw)
        if enveloped and 200 <= status < 300 and isinstance(payload, dict):
            code = payload.get("code")
            if isinstance(code, int) and not isinstance(code, bool) and code not in (0, 200):
                status = code  # the envelope reports an error inside a 2xx answer
        message = _provider_message(payload, content_type, raw)

        if 200 <= status < 300:
            if payload is None:
                error = ProtocolError(
                    f"{provider} answered HTTP {status} with a body that is not JSON",
                    provider=provider,
                )
                if sent_maybe:
                    raise SubmitOutcomeUnknownError(
                        f"{provider} accepted the submit with an unreadable answer; it may "
                        f"have created a task, so it was not sent again",
                        provider=provider,
                    )
                raise _Retry(error)
            return Answer(status, payload)
        if status in (401, 403):
            raise AuthenticationError(
                f"{provider} refused the API key (HTTP {status}): {message}", provider=provider
            )
        if status == 429:
            seconds = retry_after_seconds(retry_after)
            wait = None if seconds is None else min(seconds, self.retry.max_retry_after)
            raise _Retry(
                RateLimitError(
                    f"{provider} is rate limiting requests (HTTP 429)",
                    retry_after=seconds,
                    provider=provider,
                ),
                wait,
            )
        if status == 404 and task_id is not None:
            raise TaskNotFoundError(
                f"{provider} does not know task {task_id}", task_id=task_id, provider=provider
            )
        if 400 <= status < 500:
            raise InvalidRequestError(
                f"{provider} refused the request (HTTP {status}): {message}",
                provider=provider,
                from_provider=True,
            )
        error = ProviderUnavailableError(
            f"{provider} is unavailable (HTTP {status}): {message}", provider=provider
        )
        if sent_maybe and status != 503:
            raise SubmitOutcomeUnknownError(
                f"{provider} failed with HTTP {status} while taking the submit; it may or "
                f"may not have created a task, so it was not sent again",
                provider=provider,
            )
        raise _Retry(error)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _provider_message(payload: Any, content_type: str, raw: bytes) -> str:
    """A short, safe summary of what the provider said."""
    if isinstance(payload, dict):
        for key in ("message", "error", "detail", "msg"):
            value = payload.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("code")
            if value:
                return str(value)[:300]
    if "html" in content_type.lower() or raw.lstrip()[:1] == b"<":
        return "an HTML error page"
    return "no details" if not raw else "an unreadable answer"
