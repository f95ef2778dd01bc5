"""Extending a clip: its last frame (the continuation's first), and the two clips joined.

Discord-free, blocking: run these in `MediaWorkers` (a thread for `last_frame` and a
stream copy, the encoder process for a re-encode).

The continuation starts on the frame it was made from, so that frame is in both clips;
the join keeps it once. When both clips share their codec parameters (size, pixel
format, the H.264 parameter sets, the audio format) and the first has no reordered
frames at its end, the packets are copied (no decoding, a second or so): the first
clip's last frame is left out, which nothing refers to. Otherwise both are decoded and
encoded again, without the continuation's first frame.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

import av

from paddock.delivery.probe import NotAVideo, probe

log = logging.getLogger(__name__)

AUDIO_RATE = 48_000  # of a re-encoded join
CRF = 18  # a re-encode of a join is posted, then fitted to the upload limit if need be


class JoinKind(StrEnum):
    COPIED = "copied"  # packets copied: the codec parameters matched
    REENCODED = "reencoded"


@dataclass(frozen=True)
class Joined:
    """The joined clip: how it was made, its length, and the seconds it took."""

    kind: JoinKind
    path: Path
    duration: float
    seconds: float


def last_frame(video: Path) -> bytes:
    """The last frame of `video` as a PNG. Seeks to the last keyframe and decodes from
    there, so a long clip costs no more than its last group of pictures."""
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise NotAVideo("the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frame = None
            if container.duration:
                container.seek(container.duration, backward=True, any_frame=False)
                for frame in container.decode(stream):  # noqa: B007 (the last one is kept)
                    pass
            if frame is None:  # no seeking in this file: decode it all
                container.seek(0)
                for frame in container.decode(stream):  # noqa: B007
                    pass
            if frame is None:
                raise NotAVideo("the video has no frames")
            picture = io.BytesIO()
            frame.to_image().save(picture, format="PNG")
            return picture.getvalue()
    except av.FFmpegError as error:
        raise NotAVideo(f"the file is not a readable video ({error})") from None


def can_copy(first: Path, second: Path) -> bool:
    """Whether the packets of both clips can go into one file as they are."""
    try:
        with av.open(str(first)) as a, av.open(str(second)) as b:
            if not (a.streams.video and b.streams.video):
                return False
            if _video_params(a.streams.video[0]) != _video_params(b.streams.video[0]):
                return False
            if _audio_params(a) != _audio_params(b):
                return False
            return _ends_in_order(a) and _starts_in_order(b)
    except av.FFmpegError:
        return False


def join(first: Path, second: Path, output: Path) -> Joined:
    """`first` then `second` without `second`'s first frame, into `output` (MP4).
    Raises NotAVideo when either is not a readable video."""
    started = time.perf_counter()
    probe(first), probe(second)  # NotAVideo early, with its reason
    output.parent.mkdir(parents=True, exist_ok=True)
    if can_copy(first, second):
        copy_join(first, second, output)
        kind = JoinKind.COPIED
    else:
        reencode_join(first, second, output)
        kind = JoinKind.REENCODED
    return Joined(kind, output, probe(output).duration, time.perf_counter() - started)


def copy_join(first: Path, second: Path, output: Path) -> None:
    """Copy the packets: all of `first`'s but its last frame, then `second`'s, moved to
    start where that frame was."""
    with av.open(str(first)) as a, av.open(str(second)) as b, \
            av.open(str(output), "w", format="mp4",
                    options={"movflags": "+faststart"}) as out:
        video_out = out.add_stream_from_template(a.streams.video[0])
        audio_out = (out.add_stream_from_template(a.streams.audio[0])
                     if a.streams.audio else None)
        va = a.streams.video[0]
        streams = [va, *a.streams.audio[:1]]
        packets = [p for p in a.demux(streams) if p.dts is not None and p.pts is not None]
        pictures = [p for p in packets if p.stream.type == "video"]
        last = max(pictures, key=lambda p: p.pts)
        cut = last.pts * va.time_base  # where the continuation's first frame goes
        for packet in packets:
            if packet is last:
                continue
            if packet.stream.type == "video":
                packet.stream = video_out
            elif audio_out is not None and (
                    packet.pts + (packet.duration or 0)) * packet.time_base <= cut:
                packet.stream = audio_out  # past the cut, the continuation's sound plays
            else:
                continue
            out.mux(packet)
        b_video = b.streams.video[0]
        start = _first_pts(b_video)
        for packet in b.demux():
            if packet.dts is None:
                continue
            target = video_out if packet.stream.type == "video" else audio_out
            if target is None:
                continue
            shift = int((cut - start) / packet.time_base)
            packet.pts += shift
            packet.dts += shift
            packet.stream = target
            out.mux(packet)


def reencode_join(first: Path, second: Path, output: Path) -> None:
    """Decode both, drop `second`'s first frame, encode H.264 + AAC at `first`'s size and
    frame rate (the continuation scaled to it if need be)."""
    info = probe(first)
    fps = info.fps.limit_denominator(1001)
    sound = probe(first).audio or probe(second).audio
    with av.open(str(output), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = info.width, info.height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": str(CRF)}
        video.codec_context.time_base = 1 / fps
        audio = out.add_stream("aac", rate=AUDIO_RATE) if sound else None
        if audio is not None:
            audio.bit_rate = 128_000
        shown = 0
        audio_at = 0
        for part, path in enumerate((first, second)):
            with av.open(str(path)) as source:
                stream = source.streams.video[0]
                stream.thread_type = "AUTO"
                for index, frame in enumerate(source.decode(stream)):
                    if part == 1 and index == 0:
                        continue  # the first clip's last frame, again
                    picture = frame.reformat(info.width, info.height, "yuv420p")
                    picture.pts, picture.time_base = shown, Fraction(1, 1) / fps
                    picture.pict_type = av.video.frame.PictureType.NONE
                    out.mux(video.encode(picture))
                    shown += 1
            if audio is not None:
                until = round(shown / fps * AUDIO_RATE)  # the sound follows the pictures
                audio_at = _encode_sound(out, audio, path, audio_at, until,
                                         skip=(1 / fps) if part == 1 else 0)
        out.mux(video.encode(None))
        if audio is not None:
            out.mux(audio.encode(None))


def _encode_sound(out, audio, path: Path, at: int, until: int, *, skip: Fraction | int) -> int:
    """`path`'s sound (or silence) from sample `at` up to sample `until`; the sample
    reached. `skip` seconds of the start are left out (the dropped frame's)."""
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    pending = av.AudioFifo()
    skipped = round(float(skip) * AUDIO_RATE)
    with av.open(str(path)) as source:
        if source.streams.audio:
            for frame in source.decode(source.streams.audio[0]):
                for resampled in resampler.resample(frame):
                    resampled.pts = None
                    pending.write(resampled)
            for resampled in resampler.resample(None):
                resampled.pts = None
                pending.write(resampled)
    if skipped and pending.samples > skipped:
        pending.read(skipped)
    size = audio.codec_context.frame_size or 1024
    while at < until:
        take = min(size, until - at)
        frame = pending.read(take) if pending.samples >= take else None
        if frame is None:
            frame = av.AudioFrame(format="fltp", layout="stereo", samples=take)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = AUDIO_RATE
        frame.pts, frame.time_base = at, Fraction(1, AUDIO_RATE)
        out.mux(audio.encode(frame))
        at += take
    return at


def _video_params(stream: av.VideoStream) -> tuple:
    context = stream.codec_context
    return (context.name, context.width, context.height, context.pix_fmt,
            bytes(context.extradata or b""), stream.average_rate)


def _audio_params(container: av.container.InputContainer) -> tuple | None:
    if not container.streams.audio:
        return None
    context = container.streams.audio[0].codec_context
    return (context.name, context.sample_rate, context.channels,
            bytes(context.extradata or b""))


def _ends_in_order(container: av.container.InputContainer) -> bool:
    """Whether the last packet decoded is also the last frame shown (no B-frames after
    it refer to it), so leaving it out breaks nothing."""
    stream = container.streams.video[0]
    packets = [(p.pts, p.dts) for p in container.demux(stream) if p.dts is not None]
    return bool(packets) and packets[-1][0] == max(pts for pts, _ in packets)


def _starts_in_order(container: av.container.InputContainer) -> bool:
    """Whether the first packet is decoded when it is shown (no decoding delay), so the
    moved packets come after the first clip's in decoding order too."""
    stream = container.streams.video[0]
    first = next((p for p in container.demux(stream) if p.dts is not None), None)
    return first is not None and first.dts == first.pts


def _first_pts(stream: av.VideoStream) -> Fraction:
    start = stream.start_time if stream.start_time is not None else 0
    return start * stream.time_base


def main(argv: list[str]) -> int:
    """``python -m paddock.delivery.join FIRST SECOND OUTPUT``: a re-encoded join, in
    the encoder's process; prints the output's duration."""
    first, second, output = (Path(a) for a in argv)
    try:
        reencode_join(first, second, output)
    except NotAVideo as error:
        print(error, file=sys.stderr)
        return 3  # NOT_A_VIDEO, as the fit's encoder says it
    print(probe(output).duration)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
