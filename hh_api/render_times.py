"""How long renders take, learned from the ones that finished, so polling can wait for them.

A provider's render time for one kind of job (provider, mode, resolution, duration) is
steady from one job to the next. Once a few have finished, `RenderTimes.window` says
when the next one will most likely be done: from ``soonest`` (few finish sooner) to
``latest`` (most have finished by then), in seconds after submission. `PollPolicy`
(in ``client.py``) uses the window to check rarely before it and often inside it. A kind
not learned yet borrows a floor from its provider's renders that should be no slower
(shorter, or no sharper): none of those finished sooner, so neither will this one.

A poller never sees the moment a render ends, only that it was still running at one
check and done at the next; both are kept (``after`` and ``by``), so a window learned
from sparse checks is wide rather than late, and narrows as closer checks replace them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hh_api.models import VideoRequest

RenderKey = tuple[str, str, str | None, int | None]  # provider, mode, resolution, duration


@dataclass(frozen=True, slots=True)
class RenderWindow:
    """When a render is likely to finish, in seconds after it was submitted."""

    soonest: float
    latest: float


class RenderTimes:
    """The last `keep` render times of each kind of job; a window once `least` are known.

    `on_record` (if set) is told of every render recorded, so a caller can keep them
    across restarts and `record` them again at the next start.
    """

    def __init__(self, *, keep: int = 50, least: int = 5, low: float = 0.05,
                 high: float = 0.95) -> None:
        self.on_record: Callable[[RenderKey, float, float], None] | None = None
        self.keep = keep
        self.least = least
        self.low = low
        self.high = high
        self._seen: dict[RenderKey, deque[tuple[float, float]]] = {}

    @staticmethod
    def key(provider: str, request: VideoRequest) -> RenderKey:
        return (provider, request.mode.value, request.resolution, request.duration)

    def record(self, key: RenderKey, after: float, by: float | None = None) -> None:
        """A render of this kind ended `after` seconds from submission (it was still
        running then) and `by` seconds (it was done then); `by` defaults to `after`."""
        by = after if by is None else by
        if 0 <= after <= by and math.isfinite(by):
            self._seen.setdefault(key, deque(maxlen=self.keep)).append((after, by))

    def learn(self, key: RenderKey, after: float, by: float) -> None:
        """`record` a render this client saw end, and tell `on_record`."""
        self.record(key, after, by)
        if self.on_record is not None:
            self.on_record(key, after, by)

    def window(self, key: RenderKey) -> RenderWindow | None:
        """The likely finish, or None until `least` renders of this kind were seen."""
        seen = self._seen.get(key)
        if seen is None or len(seen) < self.least:
            return None
        soonest = _quantile(sorted(after for after, _ in seen), self.low)
        latest = _quantile(sorted(by for _, by in seen), self.high)
        return RenderWindow(soonest, latest)

    def floor(self, key: RenderKey) -> RenderWindow | None:
        """For a kind not learned yet: when renders that should be no slower (the same
        provider and mode, no longer, no sharper) have finished, soonest; a window that
        opens and closes there, so polling waits for it and then starts over. None until
        `least` of those were seen."""
        provider, mode, resolution, duration = key
        afters = sorted(
            after
            for (p, m, r, d), seen in self._seen.items()
            if p == provider and m == mode and _no_slower(r, d, resolution, duration)
            for after, _ in seen
        )
        if len(afters) < self.least:
            return None
        soonest = _quantile(afters, self.low)
        return RenderWindow(soonest, soonest)

    def seen(self, provider: str) -> list[float]:
        """Every render time kept for `provider` (seconds to done), whatever its kind."""
        return [by for key, seen in self._seen.items() if key[0] == provider for _, by in seen]

    def __len__(self) -> int:
        return sum(len(seen) for seen in self._seen.values())


def _no_slower(resolution: str | None, duration: int | None,
               than_resolution: str | None, than_duration: int | None) -> bool:
    """Whether a render of this resolution and duration should take no longer than one of
    the others: no more seconds and no more lines (unknown ones only match themselves)."""
    if duration != than_duration and (duration is None or than_duration is None
                                      or duration > than_duration):
        return False
    if resolution == than_resolution:
        return True
    lines, than_lines = _lines(resolution), _lines(than_resolution)
    return lines is not None and than_lines is not None and lines <= than_lines


def _lines(resolution: str | None) -> int | None:
    digits = (resolution or "").removesuffix("p")
    return int(digits) if digits.isdigit() else None


def _quantile(ordered: list[float], fraction: float) -> float:
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
