"""What every provider module supplies: its offer, its wire shapes, its status words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from hh_api.capabilities import ModeCapabilities
from hh_api.config import ProviderConfig
from hh_api.errors import ConfigurationError, InvalidRequestError, ProtocolError
from hh_api.models import Mode, Status, TaskState, VideoRequest


class Provider:
    """One provider's HTTP contract. Subclasses fill in the class attributes and hooks.

    A provider object is pure: it builds paths, headers and bodies and reads
    answers; the client does the I/O.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    default_base_url: ClassVar[str]
    # True when the provider takes an Idempotency-Key, so a submit may be retried safely.
    idempotent_submit: ClassVar[bool] = False
    # Answers wrapped as {"code", "message", "data"}; a non-200 code is an error.
    enveloped: ClassVar[bool] = True
    # How long a finished video's link lives, when the provider says only in prose.
    output_lifetime: ClassVar[timedelta | None] = None
    status_words: ClassVar[Mapping[str, Status]]

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.base_url = config.base_url or self.default_base_url
        self.offers: dict[Mode, ModeCapabilities] = {}
        for mode, offer in self.default_offers().items():
            model = config.models.get(mode, offer.model)
            path = config.paths.get(mode) or self.path_for(mode, model, offer.path)
            self.offers[mode] = replace(offer, model=model, path=path)

    # -- the offer ---------------------------------------------------------------------

    def default_offers(self) -> dict[Mode, ModeCapabilities]:
        raise NotImplementedError

    def path_for(self, mode: Mode, model: str, default_path: str) -> str:
        """The submit path once a model name is overridden; most paths do not name it."""
        return default_path

    def capabilities(self, mode: Mode | str) -> ModeCapabilities:
        mode = Mode(mode)
        if mode not in self.offers:
            offered = ", ".join(m.value for m in self.offers)
            raise InvalidRequestError(
                f"{self.title} does not offer {mode.value} mode; it offers: {offered}",
                field="mode",
                allowed=tuple(m.value for m in self.offers),
                provider=self.name,
            )
        return self.offers[mode]

    # -- the wire ----------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        if not self.config.api_key:
            raise ConfigurationError(
                f"no API key for {self.title}: set {self.name.upper()}_API_KEY",
                provider=self.name,
            )
        return {"Authorization": f"Bearer {self.config.api_key.reveal()}"}

    def submit_body(
        self, offer: ModeCapabilities, request: VideoRequest, callback_url: str | None
    ) -> dict[str, Any]:
        raise NotImplementedError

    def task_id_from_submission(self, data: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def status_path(self, task_id: str) -> str:
        raise NotImplementedError

    def read_status(self, task_id: str, data: Mapping[str, Any], now: datetime) -> TaskState:
        raise NotImplementedError

    # -- helpers for subclasses ----------------------------------------------------------

    def map_status(self, word: object) -> Status:
        """A provider's status word as a Status; unknown words mean still running."""
        return self.status_words.get(str(word).strip().lower(), Status.RUNNING)

    def require(self, data: Mapping[str, Any], key: str, what: str) -> Any:
        value = data.get(key) if isinstance(data, Mapping) else None
        if value in (None, ""):
            raise ProtocolError(
                f"{self.title} answered without {what} ({key!r})", provider=self.name
            )
        return value

    def state(
        self,
        task_id: str,
        word: object,
        *,
        video_url: str | None,
        error: str | None,
        expires_at: datetime | None,
        raw: Mapping[str, Any],
        now: datetime,
    ) -> TaskState:
        status = self.map_status(word)
        if status is Status.SUCCEEDED and not video_url:
            raise ProtocolError(
                f"{self.title} says task {task_id} succeeded but gives no video URL",
                provider=self.name,
            )
        if status is Status.SUCCEEDED and expires_at is None and self.output_lifetime:
            expires_at = now + self.output_lifetime
        return TaskState(
            provider=self.name,
            task_id=task_id,
            status=status,
            provider_status=str(word),
            video_url=video_url or None,
            error=(error or None) if status is Status.FAILED else None,
            expires_at=expires_at,
            raw=raw,
        )


def path_segment(value: str) -> str:
    """`value` percent-encoded as one path segment: a task id with ``/``, ``?``, ``#``,
    spaces or non-ASCII letters stays one segment, as HiAPI's SDK encodes it."""
    return quote(str(value), safe="")


def optional_fields(request: VideoRequest, **names: str) -> dict[str, Any]:
    """The optional request fields that are set, under the provider's names for them."""
    return {
        wire: getattr(request, ours)
        for ours, wire in names.items()
        if getattr(request, ours) is not None
    }


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 string or a Unix time (s or ms) as an aware datetime; None if neither."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
