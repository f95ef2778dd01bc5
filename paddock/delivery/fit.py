"""Fit a video to an upload limit: as it is when it fits, else re-encoded to fit.

The re-encode is H.264 + AAC in MP4 with ``+faststart`` (playable while it downloads),
two-pass at a bitrate worked out from the limit and the duration, with a margin for the
container and the encoder's error, so it lands under the limit the first time. The
duration, every frame (so the frame rate), the aspect ratio and the audio are kept; the
resolution is lowered only where the bitrate would be too low to look decent at the
original one (see `decent_bitrate`). When even 360 lines would not look decent, the
answer is `FitKind.TOO_LARGE` and the caller posts a link instead.

Everything here is synchronous and CPU-bound: call it through `MediaWorkers`, which runs
it in a separate, lower-priority process.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from enum import Enum
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

from paddock.delivery.probe import VideoInfo, probe

MARGIN = 0.05  # share of the limit left free: container overhead and rate-control error
CONTAINER_RESERVE = 32 * 1024  # bytes: the MP4 index and headers, beyond the margin
AUDIO_BITRATE = 128_000  # bits/s when the audio has to be re-encoded
AUDIO_COPY_MAX = 192_000  # AAC audio up to this bitrate is copied as it is
RETRY_SHARE = 0.9  # a retry aims at this share of the limit, scaled by the overshoot
LINES = (2160, 1440, 1080, 720, 540, 480, 360)  # resolutions tried, top down
LOWEST_LINES = 360  # below this no re-encode looks decent: the link is posted instead
PRESET = "veryfast"  # x264: the quality a 2-core machine can afford at < 2x the duration


class FitKind(Enum):
    ORIGINAL = "original"  # it fits: post the file exactly as it is
    REENCODED = "reencoded"  # re-encoded to fit: post `FitResult.path`
    TOO_LARGE = "too_large"  # no decent encode fits: post a link


@dataclass(frozen=True)
class EncodePlan:
    """What to encode to: frame size and bitrates."""

    width: int
    height: int
    video_bitrate: int  # bits/s
    audio_bitrate: int | None  # bits/s of re-encoded audio; None: copied, or no audio
    copy_audio: bool


@dataclass(frozen=True)
class Attempt:
    """One encode: what it aimed at and what it made."""

    video_bitrate: int
    size: int


@dataclass(frozen=True)
class FitResult:
    """What `fit_to_limit` did; `path` is the file to post (None when TOO_LARGE)."""

    kind: FitKind
    path: Path | None
    limit: int
    source: VideoInfo | None = None
    output: VideoInfo | None = None
    plan: EncodePlan | None = None
    attempts: tuple[Attempt, ...] = ()
    seconds: float = 0.0  # time spent encoding
    reason: str = ""  # why TOO_LARGE

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["path"] = str(self.path) if self.path is not None else None
        for name in ("source", "output"):
            if data[name] is not None:
                data[name]["fps"] = str(data[name]["fps"])
        return data

    @classmethod
    def from_json(cls, data: dict) -> FitResult:
        def info(raw: dict | None) -> VideoInfo | None:
            return None if raw is None else VideoInfo(**{**raw, "fps": Fraction(raw["fps"])})

        return cls(
            kind=FitKind(data["kind"]),
            path=Path(data["path"]) if data["path"] else None,
            limit=data["limit"],
            source=info(data["source"]),
            output=info(data["output"]),
            plan=EncodePlan(**data["plan"]) if data["plan"] else None,
            attempts=tuple(Attempt(**a) for a in data["attempts"]),
            seconds=data["seconds"],
            reason=data["reason"],
        )


def decent_bitrate(width: int, height: int, fps: float) -> int:
    """The lowest video bitrate (bits/s) at which H.264 still looks decent at this size:
    3 Mbit/s for 1080p30, 1.6 for 720p30, 0.9 for 480p30, 0.6 for 360p30; in between
    it grows with pixels^0.75 (smaller frames need more bits per pixel), and with fps."""
    return int(55 * (width * height) ** 0.75 * max(fps, 1.0) / 30)


def scaled_size(info: VideoInfo, lines: int) -> tuple[int, int]:
    """`info`'s frame with its short side at `lines` (never larger), aspect ratio kept,
    even sides (4:2:0 H.264 needs them)."""
    scale = min(1.0, lines / info.lines)

    def even(x: float) -> int:
        return max(2, round(x * scale / 2) * 2)

    return even(info.width), even(info.height)


def plan_encode(info: VideoInfo, limit: int) -> EncodePlan | str:
    """The encode that fills `limit` with margin, at the highest resolution that looks
    decent at that bitrate; or why none does (a sentence)."""
    copy_audio = (info.audio_codec == "aac"
                  and (info.audio_bitrate or 0) <= AUDIO_COPY_MAX)
    audio_bits = 0
    if info.audio:
        audio_bits = (info.audio_bitrate or AUDIO_BITRATE) if copy_audio else AUDIO_BITRATE
    budget = limit * (1 - MARGIN) - CONTAINER_RESERVE  # bytes for the streams
    video_bitrate = int(budget * 8 / info.duration - audio_bits)
    fps = float(info.fps)
    sizes = [scaled_size(info, lines) for lines in (info.lines, *LINES)
             if lines <= info.lines and lines >= min(LOWEST_LINES, info.lines)]
    for width, height in dict.fromkeys(sizes):  # top down, each size once
        if video_bitrate >= decent_bitrate(width, height, fps):
            return EncodePlan(width, height, video_bitrate,
                              None if copy_audio or not info.audio else AUDIO_BITRATE,
                              copy_audio)
    width, height = sizes[-1]
    need = (decent_bitrate(width, height, fps) + audio_bits) * info.duration / 8 / (1 - MARGIN)
    return (f"a {info.duration:.0f} s video needs about {math.ceil(need / 104_858) / 10} MB "
            f"to look "
            f"decent even at {min(width, height)}p; the limit is {limit / 1_048_576:.1f} MB")


def fit_to_limit(source: Path, limit: int, output: Path) -> FitResult:
    """Leave `source` as it is if it fits in `limit` bytes; else re-encode it into
    `output` so it does, or say it cannot (TOO_LARGE). Raises NotAVideo."""
    size = source.stat().st_size
    if size <= limit:
        return FitResult(FitKind.ORIGINAL, source, limit)
    info = probe(source)
    plan = plan_encode(info, limit)
    if isinstance(plan, str):
        return FitResult(FitKind.TOO_LARGE, None, limit, source=info, reason=plan)
    started = time.monotonic()
    attempts = []
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="paddock-fit-") as scratch:
        stats = Path(scratch) / "x264.stats"
        _encode(source, None, info, plan, stats, first_pass=True)
        bitrate = plan.video_bitrate
        for _ in range(2):
            _encode(source, output, info, plan, stats, first_pass=False, bitrate=bitrate)
            made = output.stat().st_size
            attempts.append(Attempt(bitrate, made))
            if made <= limit:
                break
            # Over: the second pass again (same first-pass analysis), aiming lower by
            # as much as it overshot, and then some.
            bitrate = int(bitrate * limit / made * RETRY_SHARE)
        else:
            shutil.move(output, output.with_suffix(".over.mp4"))
            return FitResult(FitKind.TOO_LARGE, None, limit, source=info, plan=plan,
                             attempts=tuple(attempts), seconds=time.monotonic() - started,
                             reason="the re-encode came out larger than the limit twice")
    return FitResult(FitKind.REENCODED, output, limit, source=info, output=probe(output),
                     plan=plan, attempts=tuple(attempts), seconds=time.monotonic() - started)


def _encode(
    source: Path,
    output: Path | None,
    info: VideoInfo,
    plan: EncodePlan,
    stats: Path,
    *,
    first_pass: bool,
    bitrate: int | None = None,
) -> None:
    """One x264 pass. The first analyses the video only (its packets are dropped); the
    second writes `output` with the audio."""
    with av.open(str(source)) as src:
        video_in = src.streams.video[0]
        video_in.thread_type = "AUTO"
        audio_in = src.streams.audio[0] if src.streams.audio and not first_pass else None
        if first_pass:
            encoder = av.CodecContext.create("libx264", "w")
            _configure(encoder, video_in, plan, plan.video_bitrate, stats, first_pass=True)
            for frame in src.decode(video_in):
                encoder.encode(_prepared(frame, plan))
            encoder.encode(None)
            return
        assert output is not None
        with av.open(str(output), "w", format="mp4",
                     options={"movflags": "+faststart"}) as out:
            video_out = out.add_stream("libx264", rate=video_in.average_rate)
            _configure(video_out.codec_context, video_in, plan, bitrate or plan.video_bitrate,
                       stats, first_pass=False)
            audio_out = None
            if audio_in is not None:
                if plan.copy_audio:
                    audio_out = out.add_stream_from_template(audio_in)
                else:
                    audio_out = out.add_stream("aac", rate=audio_in.codec_context.sample_rate)
                    audio_out.bit_rate = plan.audio_bitrate or AUDIO_BITRATE
                    audio_out.layout = audio_in.codec_context.layout
            streams = [video_in] + ([audio_in] if audio_in is not None else [])
            for packet in src.demux(streams):
                if packet.stream is video_in:
                    for frame in packet.decode():
                        out.mux(video_out.encode(_prepared(frame, plan)))
                elif audio_out is not None and plan.copy_audio:
                    if packet.dts is not None:
                        packet.stream = audio_out
                        out.mux(packet)
                elif audio_out is not None:
                    for sound in packet.decode():
                        out.mux(audio_out.encode(sound))
            out.mux(video_out.encode(None))
            if audio_out is not None and not plan.copy_audio:
                out.mux(audio_out.encode(None))


def _configure(codec, video_in, plan: EncodePlan, bitrate: int, stats: Path, *,
               first_pass: bool) -> None:
    codec.width, codec.height = plan.width, plan.height
    codec.pix_fmt = "yuv420p"
    codec.time_base = video_in.time_base
    codec.framerate = video_in.average_rate
    codec.bit_rate = bitrate
    # A little room above the average for hard scenes; two-pass keeps the total.
    codec.options = {
        "preset": PRESET,
        "stats": str(stats),
        "maxrate": str(int(bitrate * 1.5)),
        "bufsize": str(int(bitrate * 2)),
    }
    codec.flags |= av.codec.context.Flags.pass1 if first_pass else av.codec.context.Flags.pass2
    if not first_pass:
        codec.flags |= av.codec.context.Flags.global_header  # MP4 keeps SPS/PPS in avcC


def _prepared(frame: av.VideoFrame, plan: EncodePlan) -> av.VideoFrame:
    """The decoded frame at the planned size in yuv420p, with its own frame type dropped
    (a decoder's I/P/B marks would otherwise force the encoder's choices)."""
    if (frame.width, frame.height, frame.format.name) != (plan.width, plan.height, "yuv420p"):
        timing = frame.pts, frame.time_base
        frame = frame.reformat(width=plan.width, height=plan.height, format="yuv420p",
                               interpolation="AREA")
        frame.pts, frame.time_base = timing
    frame.pict_type = PictureType.NONE
    return frame

