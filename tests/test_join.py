"""Extending a clip, without Discord: its last frame, and two real clips joined."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from PIL import Image

from paddock.delivery import JoinKind, MediaWorkers, NotAVideo, last_frame
from tests.clips import make_clip, mean_difference, pictures, play

FPS = 24


def decoded_frames(path: Path) -> list[Image.Image]:
    return pictures(str(path))


def close(a: Image.Image, b: Image.Image, tolerance: float = 3.0) -> bool:
    """The same picture, within what a lossy codec changes (mean absolute difference)."""
    return a.size == b.size and mean_difference(a, b) < tolerance


@pytest.fixture
def clips(tmp_path: Path) -> dict[str, Path]:
    made = {
        "first": make_clip(2, 640, 360, fps=FPS),
        "second": make_clip(3, 640, 360, fps=FPS),
        "other_size": make_clip(2, 480, 270, fps=FPS, audio=False),
    }
    paths = {}
    for name, data in made.items():
        paths[name] = tmp_path / f"{name}.mp4"
        paths[name].write_bytes(data)
    return paths


def test_the_last_frame_is_the_videos_last_picture(clips) -> None:
    png = last_frame(clips["second"])
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    frames = decoded_frames(clips["second"])
    assert close(picture, frames[-1])
    assert not close(picture, frames[-12])  # the grain and the pattern move: not any frame


def test_a_file_that_is_no_video_has_no_last_frame(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(NotAVideo):
        last_frame(junk)


@pytest.mark.parametrize(("second", "kind"), [("second", JoinKind.COPIED),
                                              ("other_size", JoinKind.REENCODED)])
async def test_the_join_is_both_clips_less_the_repeated_frame_and_plays(
    clips, tmp_path: Path, second: str, kind: JoinKind
) -> None:
    workers = MediaWorkers()
    try:
        joined = await workers.join(clips["first"], clips[second], tmp_path / "joined.mp4")
    finally:
        workers.close()

    assert joined.kind is kind
    first_played = play(clips["first"].read_bytes())
    second_played = play(clips[second].read_bytes())
    played = play(joined.path.read_bytes())
    assert played.frames == first_played.frames + second_played.frames - 1
    assert played.duration == pytest.approx(
        first_played.duration + second_played.duration - 1 / FPS, abs=0.5 / FPS)
    assert (played.width, played.height) == (640, 360)
    assert played.audio_frames > 0  # the first clip's sound is kept
    frames = decoded_frames(joined.path)
    originals = decoded_frames(clips["first"])
    assert close(frames[0], originals[0], 4.0)
    assert close(frames[first_played.frames - 2], originals[-2], 4.0)


async def test_a_copied_join_keeps_the_packets_as_they_were(clips, tmp_path: Path) -> None:
    workers = MediaWorkers()
    try:
        joined = await workers.join(clips["first"], clips["second"], tmp_path / "joined.mp4")
    finally:
        workers.close()
    with av.open(str(clips["second"])) as source, av.open(str(joined.path)) as result:
        originals = [bytes(p) for p in source.demux(video=0) if p.size]
        copied = [bytes(p) for p in result.demux(video=0) if p.size]
    assert copied[-len(originals):] == originals  # not decoded, not encoded again


def with_b_frames(source: Path, output: Path) -> Path:
    """`source` encoded again the way most encoders do: B-frames, shown out of order."""
    with av.open(str(source)) as clip, av.open(str(output), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"preset": "veryfast", "bf": "3"}
        for frame in clip.decode(video=0):
            frame.pict_type = av.video.frame.PictureType.NONE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return output


async def test_a_clip_ending_in_reordered_frames_gives_its_last_frame_and_is_re_encoded(
    clips, tmp_path: Path
) -> None:
    reordered = with_b_frames(clips["first"], tmp_path / "reordered.mp4")
    picture = Image.open(io.BytesIO(last_frame(reordered))).convert("RGB")
    frames = decoded_frames(reordered)
    assert close(picture, frames[-1]) and not close(picture, frames[-2])

    workers = MediaWorkers()
    try:
        joined = await workers.join(reordered, clips["second"], tmp_path / "joined.mp4")
    finally:
        workers.close()
    assert joined.kind is JoinKind.REENCODED  # leaving its last frame out would break others
    assert play(joined.path.read_bytes()).frames == len(frames) + len(
        decoded_frames(clips["second"])) - 1
