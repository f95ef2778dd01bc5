"""The provider-neutral request and task shapes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    """What a generation starts from."""

    TEXT = "text"
    IMAGE = "image"  # one picture becomes the first frame
    REFERENCE = "reference"  # 1-9 pictures keep a character or style consistent


class Status(StrEnum):
    """Every provider's status words, mapped onto four."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED)


@dataclass(frozen=True)
class VideoRequest:
    """One generation, in provider-neutral terms.

    Fields left as None take the provider's documented default when the request
    is validated (`Capabilities.resolve`), so a resolved request says exactly
    what will be sent and priced.
    """

    prompt: str
    mode: Mode = Mode.TEXT
    images: tuple[str, ...] = ()
    resolution: str | None = None
    aspect_ratio: str | None = None
    duration: int | None = None
    seed: int | None = None
    negative_prompt: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.images, str):
            raise TypeError("images is a sequence of URLs, not one string")
        object.__setattr__(self, "mode", Mode(self.mode))
        object.__setattr__(self, "images", tuple(self.images))

    def with_changes(self, **changes: Any) -> VideoRequest:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_dict` reads it back."""
        # field by field: dataclasses.asdict deep-copies each value, 13 us a request
        return {"prompt": self.prompt, "mode": self.mode.value, "images": list(self.images),
                "resolution": self.resolution, "aspect_ratio": self.aspect_ratio,
                "duration": self.duration, "seed": self.seed,
                "negative_prompt": self.negative_prompt}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoRequest:
        return cls(**{**data, "images": tuple(data.get("images") or ())})


@dataclass(frozen=True)
class Submission:
    """A task the provider accepted."""

    provider: str
    task_id: str
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class TaskState:
    """What the provider said about a task, normalised, with its raw answer kept."""

    provider: str
    task_id: str
    status: Status
    provider_status: str
    video_url: str | None = None
    error: str | None = None
    expires_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
