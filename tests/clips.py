"""Real H.264 + AAC clips made in the tests (and the benchmark): a moving test pattern
with grain, and a tone, as providers' videos would look to the encoder."""

from __future__ import annotations

import io
import itertools
import struct
from dataclasses import dataclass
from fractions import Fraction

import av
from PIL import Image, ImageChops, ImageStat


def make_clip(
    seconds: float,
    width: int,
    height: int,
    *,
    fps: int = 24,
    bitrate: int = 8_000_000,
    audio: bool = True,
    grain: int = 12,
) -> bytes:
    """An MP4 of `seconds` at `width` x `height`, H.264 at about `bitrate`, AAC audio.
    The grain (noise that changes every frame) makes it as hard to compress as footage."""
    pattern = f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"
    out_buffer = io.BytesIO()
    with av.open(pattern, format="lavfi") as source, \
            av.open(out_buffer, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = bitrate
        video.options = {"preset": "ultrafast"}
        sound = out.add_stream("aac", rate=48000) if audio else None
        if sound is not None:
            sound.bit_rate = 96_000
        graph = av.filter.Graph()
        chain = [graph.add_buffer(template=source.streams.video[0])]
        if grain:
            chain.append(graph.add("noise", f"alls={grain}:allf=t"))
        chain.append(graph.add("format", "yuv420p"))
        chain.append(graph.add("buffersink"))
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        graph.configure()
        for frame in source.decode(video=0):
            graph.push(frame)
            filtered = graph.pull()
            filtered.pict_type = av.video.frame.PictureType.NONE
            out.mux(video.encode(filtered))
        out.mux(video.encode(None))
        if sound is not None:
            with av.open(f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                         format="lavfi") as tone:
                for samples in tone.decode(audio=0):
                    out.mux(sound.encode(samples))
            out.mux(sound.encode(None))
    return out_buffer.getvalue()


@dataclass(frozen=True)
class Played:
    """What a player finds when it decodes a video to the end."""

    duration: float
    width: int
    height: int
    fps: Fraction
    frames: int  # decoded, one by one
    audio_frames: int  # decoded audio frames (0: silent or none)


def play(data: bytes) -> Played:
    """Decode every frame of `data`, as a player would."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        width, height = video.codec_context.width, video.codec_context.height
        duration = float(video.duration * video.time_base)
        fps = video.average_rate
    with av.open(io.BytesIO(data)) as container:
        audio_frames = (sum(1 for _ in container.decode(audio=0))
                        if container.streams.audio else 0)
    return Played(duration, width, height, fps, frames, audio_frames)


def top_level_boxes(data: bytes) -> list[str]:
    """The MP4's top-level box types in order (``moov`` before ``mdat`` = faststart)."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


def pictures(video: bytes | str) -> list[Image.Image]:
    """Every frame of ``video`` (its bytes, or a path), decoded as a player shows it."""
    with av.open(io.BytesIO(video) if isinstance(video, bytes) else video) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """How far apart two pictures of one size are: the mean absolute difference per
    channel value (0-255), as the eye would average it."""
    assert a.size == b.size, (a.size, b.size)
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3
