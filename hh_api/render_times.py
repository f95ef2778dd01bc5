"""How long renders take, learned from the ones that finished, so polling can wait for them.

A provider's render time for one kind of job (provider, mode, resolution, duration) is
steady from one job to the next. Once a few have finished, `RenderTimes.window` says
when the next one will most likely be done: from ``soonest`` (few finish sooner) to
``latest`` (most have finished by then), in seconds after submission. `PollPolicy`
(in ``client.py``) uses the window to check rarely before it and often inside it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from hh_api.models import VideoRequest

RenderKey = tuple[str, str, str | None, int | None]  # provider, mode, resolution, duration


@dataclass(frozen=True, slots=True)
class RenderWindow:
    """When a render is likely to finish, in seconds after it was submitted."""

    soonest: float
    latest: float


class RenderTimes:
    """The last `keep` render times of each kind of job; a window once `least` are known."""

    def __init__(self, *, keep: int = 50, least: int = 5, low: float = 0.05,
                 high: float = 0.95) -> None:
        self.keep = keep
        self.least = least
        self.low = low
        self.high = high
        self._seen: dict[RenderKey, deque[float]] = {}

    @staticmethod
    def key(provider: str, request: VideoRequest) -> RenderKey:
        return (provider, request.mode.value, request.resolution, request.duration)

    def record(self, key: RenderKey, seconds: float) -> None:
        """A render of this kind took `seconds` from submission to being seen finished."""
        if seconds >= 0 and math.isfinite(seconds):
            self._seen.setdefault(key, deque(maxlen=self.keep)).append(seconds)

    def window(self, key: RenderKey) -> RenderWindow | None:
        """The likely finish, or None until `least` renders of this kind were seen."""
        seen = self._seen.get(key)
        if seen is None or len(seen) < self.least:
            return None
        ordered = sorted(seen)
        return RenderWindow(_quantile(ordered, self.low), _quantile(ordered, self.high))

    def __len__(self) -> int:
        return sum(len(seen) for seen in self._seen.values())


def _quantile(ordered: list[float], fraction: float) -> float:
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
