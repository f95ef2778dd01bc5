"""What a video file is: duration, size, resolution, frame rate and audio (with PyAV)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av


class NotAVideo(ValueError):
    """The file cannot be read as a video (no container, or no video stream)."""


@dataclass(frozen=True)
class VideoInfo:
    """A video as its container describes it."""

    size: int  # bytes on disk
    duration: float  # seconds
    width: int
    height: int
    fps: Fraction  # average frame rate
    frames: int | None  # as the container counts them; None when it does not say
    video_codec: str
    audio_codec: str | None  # None: no audio stream
    audio_bitrate: int | None  # bits per second, when the container says

    @property
    def audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def lines(self) -> int:
        """The short side: "720p" is 720 lines whether the video is wide or tall."""
        return min(self.width, self.height)


def probe(path: Path) -> VideoInfo:
    """Read `path`'s header and streams (no decoding); raise NotAVideo if it is none."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise NotAVideo("the file has no video stream")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            duration = _seconds(container, video)
            rate = video.average_rate or video.guessed_rate or Fraction(0)
            if duration <= 0 or not video.codec_context.width or rate <= 0:
                raise NotAVideo("the video stream has no duration, size or frame rate")
            return VideoInfo(
                size=path.stat().st_size,
                duration=duration,
                width=video.codec_context.width,
                height=video.codec_context.height,
                fps=Fraction(rate),
                frames=video.frames or None,
                video_codec=video.codec_context.name,
                audio_codec=audio.codec_context.name if audio is not None else None,
                audio_bitrate=(audio.bit_rate or None) if audio is not None else None,
            )
    except av.FFmpegError as error:
        raise NotAVideo(f"the file is not a readable video ({error})") from None


def _seconds(container: av.container.InputContainer, video: av.VideoStream) -> float:
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0
