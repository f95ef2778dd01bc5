"""Getting a finished video ready to post: probe it, and fit it to an upload limit.

Discord-free. `probe` reads what a video is (duration, size, resolution, frame rate,
audio); `fit_to_limit` leaves a file that fits alone and re-encodes one that does not;
`MediaWorkers` runs both (and picture decoding) off the event loop, in a bounded pool.
"""

from __future__ import annotations

from paddock.delivery.fit import FitKind, FitResult, fit_to_limit, plan_encode
from paddock.delivery.join import Joined, JoinKind, join, last_frame
from paddock.delivery.probe import NotAVideo, VideoInfo, probe
from paddock.delivery.workers import MediaWorkers

__all__ = [
    "FitKind",
    "FitResult",
    "JoinKind",
    "Joined",
    "MediaWorkers",
    "NotAVideo",
    "VideoInfo",
    "fit_to_limit",
    "join",
    "last_frame",
    "plan_encode",
    "probe",
]
