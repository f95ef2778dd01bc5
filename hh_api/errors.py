"""The errors hh_api raises, one class per thing a caller can act on.

Every message is safe to show a user: it names the provider and what went wrong,
never an API key, never a provider's whole response body, and never a network address.
What only an operator needs (the address that refused a connection, the OS error) is in
`detail`, for logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hh_api.models import TaskState


class HappyHorseError(Exception):
    """Base class of every error hh_api raises.

    `created_nothing` is true on an error from a submit when no attempt of it can have
    created a task (a 4xx answer, 429, 503, a connection never made): only then may the
    job go to another provider without risking two renders.
    """

    created_nothing: bool = False

    def __init__(
        self, message: str, *, provider: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.detail = detail  # for logs only: addresses, OS errors

    def __str__(self) -> str:
        return self.message

    def for_log(self) -> str:
        """The message with its `detail`, for an operator's log (never for a member)."""
        return f"{self.message} ({self.detail})" if self.detail else self.message


class ConfigurationError(HappyHorseError):
    """The client is set up wrong: an unknown provider, a missing key, a bad setting.

    `setting` names the environment variable at fault, when one is; the message then
    starts with that name.
    """

    def __init__(
        self, message: str, *, provider: str | None = None, setting: str | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.setting = setting


class InvalidRequestError(HappyHorseError):
    """The request cannot be sent as it is; `field` names what to change.

    Raised before any request when our own validation refuses it, and after a
    provider answered 400/422 (then `from_provider` is true).
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        allowed: Sequence[object] | str | None = None,
        provider: str | None = None,
        from_provider: bool = False,
    ) -> None:
        super().__init__(message, provider=provider)
        self.field = field
        self.allowed = allowed
        self.from_provider = from_provider


class AuthenticationError(HappyHorseError):
    """The provider refused the key (401/403). Retrying will not help."""


class RateLimitError(HappyHorseError):
    """The provider kept answering 429; `retry_after` is its last hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None, provider: str | None) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class ProviderUnavailableError(HappyHorseError):
    """5xx answers, connection failures or timeouts outlasted the retries.

    `status` is the provider's last HTTP status, None when no answer came at all.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        detail: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, provider=provider, detail=detail)
        self.status = status


class SubmitOutcomeUnknownError(ProviderUnavailableError):
    """A submit may or may not have created a task, and sending it again could pay twice.

    Raised for providers without an idempotency key when the connection broke or
    timed out after the request left, or the provider answered 500/502/504.
    """


class ProtocolError(HappyHorseError):
    """The provider answered in a shape its documentation does not describe."""


class TaskNotFoundError(HappyHorseError):
    """The provider does not know the task id (404)."""

    def __init__(self, message: str, *, task_id: str, provider: str | None) -> None:
        super().__init__(message, provider=provider)
        self.task_id = task_id


class TaskFailedError(HappyHorseError):
    """The provider finished the task without a video; `reason` is its own words."""

    def __init__(self, state: TaskState) -> None:
        reason = state.error or "no reason given"
        super().__init__(
            f"{state.provider} task {state.task_id} failed: {reason}", provider=state.provider
        )
        self.state = state
        self.task_id = state.task_id
        self.reason = reason


class WaitTimeoutError(HappyHorseError):
    """The task was not finished by the deadline; wait on `task_id` again to resume."""

    def __init__(
        self, message: str, *, task_id: str, provider: str, last: TaskState | None
    ) -> None:
        super().__init__(message, provider=provider)
        self.task_id = task_id
        self.last = last


class DownloadError(HappyHorseError):
    """A finished video could not be fetched: too large, not a video, or unreachable."""


class VideoTooLargeError(DownloadError):
    """The video is larger than the caller's ``max_bytes``: it exists, it just won't fit."""


class NotAVideoError(DownloadError):
    """The link gave something that is not a whole video (a web page, no bytes, a cut file),
    or answered that it is gone for good: trying again will not help."""


class CallbackVerificationError(HappyHorseError):
    """A provider callback failed its signature, freshness or shape check."""
