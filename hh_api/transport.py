"""HTTP with the retry rules a paid API needs.

Reads (status checks) are retried on 429, 5xx, broken connections, timeouts and
bodies that are not JSON, with exponential backoff and full jitter. A submit is
retried only when it certainly created nothing (429, 503, a connection that was
never made) or when the provider takes an idempotency key; otherwise a submit
whose outcome is unknown raises `SubmitOutcomeUnknownError` rather than risk
paying twice. 401 and 403 fail at once.

A keyed submit (HiAPI) follows HiAPI's own SDK: a 409 whose ``error_code`` is
``IDEMPOTENCY_KEY_PROCESSING`` means the first request with that key is still being
handled, so the same key and body are sent again after ``Retry-After``; the provider
then answers with the original task and an ``Idempotent-Replay: true`` header, which
is logged. Any other 409 (and the 422 ``IDEMPOTENCY_KEY_MISMATCH``) is refused at
once, as the SDK does. When a keyed submit's retries run out after any attempt that
may have reached the provider (a 5xx, a broken connection, a 409 PROCESSING), it
raises `SubmitOutcomeUnknownError`, never a refusal: the task may exist, and the
same key finds it again.

Every request carries hh_api's User-Agent (`hh_api.version.USER_AGENT`).

Every attempt (not every logical request) is reported to an optional observer as a
`ProviderCall`: which provider, what kind of call, how it ended, the HTTP status and the
seconds it took. That is how a caller counts latency and errors without hh_api knowing
about any metrics library.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import Enum, StrEnum
from typing import Any

import aiohttp
from yarl import URL

from hh_api.config import redact_url
from hh_api.errors import (
    AuthenticationError,
    HappyHorseError,
    InvalidRequestError,
    ProtocolError,
    ProviderUnavailableError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
)
from hh_api.version import USER_AGENT

log = logging.getLogger("hh_api.http")

Sleep = Callable[[float], Awaitable[None]]

# HiAPI's error_code for "the first request with this Idempotency-Key is in flight".
IDEMPOTENCY_KEY_PROCESSING = "IDEMPOTENCY_KEY_PROCESSING"


class CallKind(StrEnum):
    """What an HTTP attempt was for."""

    SUBMIT = "submit"
    STATUS = "status"
    DOWNLOAD = "download"


class CallOutcome(StrEnum):
    """How one HTTP attempt ended, one word per thing that can go wrong."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"  # 429
    UNAVAILABLE = "unavailable"  # 5xx (or an error code inside the provider's envelope)
    TIMEOUT = "timeout"  # no (whole) answer in time
    CONNECTION = "connection"  # never connected, or the connection broke
    AUTH = "auth"  # 401/403: the key was refused
    INVALID = "invalid"  # another 4xx: the provider refused the request
    NOT_FOUND = "not_found"  # 404 for a task id, or an expired video link
    PROTOCOL = "protocol"  # an answer of the wrong shape: not JSON, not a video
    TOO_LARGE = "too_large"  # a video over the caller's size cap


@dataclass(frozen=True)
class ProviderCall:
    """One HTTP attempt, as reported to a client's `on_call` observer.

    `status` is the HTTP status when an answer arrived (None when none did); `seconds`
    is the attempt's own time, without any backoff before it. `provider` is None for a
    download whose caller did not say which provider made the video.
    """

    provider: str | None
    kind: CallKind
    outcome: CallOutcome
    status: int | None
    seconds: float


Observer = Callable[[ProviderCall], None]


def report_call(observer: Observer | None, call: ProviderCall) -> None:
    """Hand `call` to `observer`; an observer's own failure is logged, never raised."""
    if observer is None:
        return
    try:
        observer(call)
    except Exception:
        log.exception("the on_call observer failed on %s %s", call.provider, call.kind.value)


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


@dataclass
class _Attempt:
    """What one attempt learnt before it returned or raised, for its `ProviderCall`."""

    status: int | None = None  # the HTTP status, once an answer arrived
    outcome: CallOutcome | None = None  # known better than the error says (timeouts ...)


class _Retry(Exception):
    """One attempt failed in a way that may be retried.

    `reached` is true when the request may have reached the provider and done
    something there (a 5xx, a connection that broke after it was sent, a 409 saying the
    key is being processed): a keyed submit whose retries run out after such an attempt
    has an unknown outcome, not a failed one.
    """

    def __init__(
        self, error: HappyHorseError, delay: float | None = None, *, reached: bool = False
    ) -> None:
        self.error = error
        self.delay = delay
        self.reached = reached


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
        observer: Observer | None = None,
    ) -> None:
        self.session = session
        self.retry = retry
        self.sleep = sleep
        self.rng = rng
        self.observer = observer

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
        wait_on_rate_limit: bool = True,
    ) -> Answer:
        """Send, retrying as `call` allows; `wait_on_rate_limit=False` raises a 429 at once
        (for a caller with somewhere else to go) instead of waiting for its Retry-After."""
        headers = {**headers, "User-Agent": USER_AGENT}
        last: _Retry | None = None
        reached = False
        for attempt in range(self.retry.attempts):
            if last is not None:
                delay = last.delay
                if delay is None:
                    delay = self.retry.backoff(attempt - 1, self.rng)
                log.warning(
                    "provider=%s %s: retry %d of %d in %.2fs after: %s",
                    provider, _kind(call).value, attempt, self.retry.attempts - 1, delay,
                    last.error.for_log(),
                )
                await self.sleep(delay)
            seen = _Attempt()
            started = time.monotonic()
            try:
                answer = await self._once(
                    method, url, call=call, provider=provider, headers=headers, body=body,
                    enveloped=enveloped, task_id=task_id, seen=seen,
                )
            except _Retry as retry:
                self._report(provider, call, _outcome(retry.error, seen), seen, started)
                last = retry
                reached = reached or retry.reached
                if isinstance(retry.error, RateLimitError) and not wait_on_rate_limit:
                    break
                continue
            except HappyHorseError as error:
                self._report(provider, call, _outcome(error, seen), seen, started)
                if call is not Call.READ:  # a 4xx, or an outcome already known unknown
                    error.created_nothing = not reached and not isinstance(
                        error, SubmitOutcomeUnknownError
                    )
                raise
            self._report(provider, call, CallOutcome.OK, seen, started)
            return answer
        assert last is not None
        if call is Call.IDEMPOTENT_SUBMIT and reached:
            raise SubmitOutcomeUnknownError(
                f"the {provider} submit may have created a task, but no answer said so "
                f"after {self.retry.attempts} attempts ({last.error}); sending it again "
                f"with the same idempotency key finds that task instead of paying twice",
                provider=provider, detail=last.error.detail,
            ) from last.error
        if call is not Call.READ and isinstance(last.error, HappyHorseError):
            last.error.created_nothing = not reached  # only 429, 503, never connected
        raise last.error

    def _report(
        self, provider: str, call: Call, outcome: CallOutcome, seen: _Attempt, started: float
    ) -> None:
        seconds = time.monotonic() - started
        report_call(
            self.observer, ProviderCall(provider, _kind(call), outcome, seen.status, seconds)
        )

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
        seen: _Attempt,
    ) -> Answer:
        sent_maybe = call is Call.SUBMIT  # a retry would risk a second task
        try:
            # encoded=True: the path's %-escapes go out exactly as the provider module made
            # them (yarl would otherwise turn an escaped "=" in a task id back into "=").
            target = URL(url, encoded=True)
            async with self.session.request(
                method, target, headers=headers, json=body
            ) as response:
                seen.status = response.status
                raw = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
                content_type = response.headers.get("Content-Type", "")
                replayed = response.headers.get("Idempotent-Replay", "").lower() == "true"
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            # The connection was never made: nothing reached the provider.
            timed_out = isinstance(error, aiohttp.ConnectionTimeoutError)
            seen.outcome = CallOutcome.TIMEOUT if timed_out else CallOutcome.CONNECTION
            raise _Retry(ProviderUnavailableError(
                f"cannot reach {provider}: {_unreachable(error)}", provider=provider,
                detail=str(error) or type(error).__name__,
            )) from None
        except (TimeoutError, aiohttp.ClientError) as error:
            timed_out = isinstance(error, TimeoutError)
            seen.outcome = CallOutcome.TIMEOUT if timed_out else CallOutcome.CONNECTION
            what = "timed out" if timed_out else "connection broke"
            detail = str(error) or type(error).__name__
            if sent_maybe:
                raise SubmitOutcomeUnknownError(
                    f"the {provider} submit {what} after it was sent; it may or may not have "
                    f"created a task, so it was not sent again",
                    provider=provider, detail=detail,
                ) from None
            raise _Retry(
                ProviderUnavailableError(f"{provider} {what}", provider=provider, detail=detail),
                reached=True,
            ) from None
        if log.isEnabledFor(logging.DEBUG):  # the URL is redacted only to be printed
            log.debug("provider=%s %s %s -> %d", provider, method, redact_url(url), status)

        payload = _json_or_none(raw)
        if enveloped and 200 <= status < 300 and isinstance(payload, dict):
            code = payload.get("code")
            if isinstance(code, int) and not isinstance(code, bool) and code not in (0, 200):
                status = code  # the envelope reports an error inside a 2xx answer
        message = _provider_message(payload, content_type, raw)

        if 200 <= status < 300:
            if payload is None:
                seen.outcome = CallOutcome.PROTOCOL
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
                raise _Retry(error, reached=True)
            if replayed and call is Call.IDEMPOTENT_SUBMIT:
                log.info("provider=%s submit: Idempotent-Replay, the answer is the task an "
                         "earlier request with this idempotency key created", provider)
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
        if (
            status == 409
            and call is Call.IDEMPOTENT_SUBMIT
            and _error_code(payload) == IDEMPOTENCY_KEY_PROCESSING
        ):
            seconds = retry_after_seconds(retry_after)
            wait = None if seconds is None else min(seconds, self.retry.max_retry_after)
            raise _Retry(
                ProviderUnavailableError(
                    f"{provider} is still processing the first request with this "
                    f"idempotency key (HTTP 409)", provider=provider,
                ),
                wait,
                reached=True,
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
            f"{provider} is unavailable (HTTP {status}): {message}", provider=provider,
            status=status,
        )
        if sent_maybe and status != 503:
            raise SubmitOutcomeUnknownError(
                f"{provider} failed with HTTP {status} while taking the submit; it may or "
                f"may not have created a task, so it was not sent again",
                provider=provider, status=status,
            )
        raise _Retry(error, reached=status != 503)


def _unreachable(error: aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError) -> str:
    """Why no connection was made, in words without the address (that goes in `detail`)."""
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return "the connection timed out"
    cause = getattr(error, "os_error", None)
    if isinstance(error, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "the secure connection failed"
    if isinstance(cause, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(cause, socket.gaierror):
        return "its host name was not found"
    if isinstance(cause, TimeoutError):
        return "the connection timed out"
    return "the connection failed"


def _kind(call: Call) -> CallKind:
    return CallKind.STATUS if call is Call.READ else CallKind.SUBMIT


def _outcome(error: Exception, seen: _Attempt) -> CallOutcome:
    """The `CallOutcome` of an attempt that ended in `error`."""
    if seen.outcome is not None:  # a timeout, a broken connection, an unreadable answer
        return seen.outcome
    if isinstance(error, RateLimitError):
        return CallOutcome.RATE_LIMITED
    if isinstance(error, AuthenticationError):
        return CallOutcome.AUTH
    if isinstance(error, TaskNotFoundError):
        return CallOutcome.NOT_FOUND
    if isinstance(error, InvalidRequestError):
        return CallOutcome.INVALID
    if isinstance(error, ProtocolError):
        return CallOutcome.PROTOCOL
    return CallOutcome.UNAVAILABLE  # 5xx, or an error code in a 2xx envelope


def _error_code(payload: Any) -> str | None:
    """HiAPI's ``error_code`` in an error answer, where its SDK reads it."""
    code = payload.get("error_code") if isinstance(payload, dict) else None
    return code if isinstance(code, str) else None


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
