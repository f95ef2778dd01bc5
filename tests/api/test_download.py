"""Downloading finished videos: streamed, capped, type-checked, never with the key."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hh_api import DownloadError, NotAVideoError, VideoRequest, VideoTooLargeError
from tests.fakes.providers import FAKE_MP4

DEMO_MP4 = (Path(__file__).parents[2] / "hh_api" / "assets" / "demo.mp4").read_bytes()


async def finished(start_emulator, make_client, provider: str = "joypix"):
    emulator = await start_emulator(provider)
    client = make_client(emulator)
    state = await client.generate(provider, VideoRequest("a horse"))
    return emulator, client, state


async def test_a_video_is_saved_whole_without_sending_the_key(
    start_emulator, make_client, tmp_path
) -> None:
    emulator, client, state = await finished(start_emulator, make_client)
    saved = await client.download(state.video_url, tmp_path / "out" / "horse.mp4")
    assert saved.read_bytes() == FAKE_MP4
    [fetch] = [r for r in emulator.requests if r.kind == "file"]
    assert "Authorization" not in fetch.headers


async def test_octet_stream_is_accepted_when_the_bytes_are_a_video(
    start_emulator, make_client, tmp_path
) -> None:
    emulator, client, state = await finished(start_emulator, make_client)
    emulator.video_content_type = "application/octet-stream"
    saved = await client.download(state.video_url, tmp_path / "v.mp4")
    assert saved.read_bytes() == FAKE_MP4


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("text/html", b"<html>expired</html>", "text/html, not a video"),
        ("application/octet-stream", b"PK\x03\x04 a zip file", "not a video"),
        ("video/mp4", b"", "an empty file, not a video"),
        ("video/mp4", b"<html>a page that says it is a video</html>", "not a video"),
        ("video/mp4", DEMO_MP4[: len(DEMO_MP4) // 2], "cut short"),
        ("video/mp4", DEMO_MP4[:200], "cut short"),
        ("video/mp4", FAKE_MP4[:40], "no movie header"),
    ],
    ids=["html", "zip", "empty", "html-as-mp4", "half-mp4", "mp4-head", "no-moov"],
)
async def test_what_is_not_a_video_is_refused_and_leaves_no_file(
    start_emulator, make_client, tmp_path, content_type, body, reason
) -> None:
    emulator, client, state = await finished(start_emulator, make_client)
    emulator.video_content_type = content_type
    emulator.video_bytes = body
    with pytest.raises(NotAVideoError, match=reason):
        await client.download(state.video_url, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


async def test_a_whole_real_mp4_is_saved_byte_for_byte(
    start_emulator, make_client, tmp_path
) -> None:
    emulator, client, state = await finished(start_emulator, make_client)
    emulator.video_bytes = DEMO_MP4
    saved = await client.download(state.video_url, tmp_path / "v.mp4")
    assert saved.read_bytes() == DEMO_MP4


async def test_a_video_over_the_cap_is_refused(start_emulator, make_client, tmp_path) -> None:
    emulator, client, state = await finished(start_emulator, make_client)
    emulator.video_bytes = FAKE_MP4 + bytes(2_000_000)
    with pytest.raises(VideoTooLargeError, match=r"over the 1\.0 MB limit"):
        await client.download(state.video_url, tmp_path / "v.mp4", max_bytes=1024 * 1024)
    assert list(tmp_path.iterdir()) == []


async def test_an_expired_link_says_so(start_emulator, make_client, tmp_path) -> None:
    emulator, client, _ = await finished(start_emulator, make_client)
    with pytest.raises(NotAVideoError, match="HTTP 404 \\(it may have expired\\)"):
        await client.download(emulator.video_url("task_gone"), tmp_path / "v.mp4")


async def test_a_transient_failure_is_retried(start_emulator, make_client, tmp_path) -> None:
    emulator, client, state = await finished(start_emulator, make_client)
    emulator.fault(503, on="file", times=2)
    saved = await client.download(state.video_url, tmp_path / "v.mp4")
    assert saved.read_bytes() == FAKE_MP4
    assert len([r for r in emulator.requests if r.kind == "file"]) == 3


async def test_an_unreachable_link_is_explained_without_its_address(
    start_emulator, make_client, tmp_path
) -> None:
    _, client, _ = await finished(start_emulator, make_client)
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        with pytest.raises(DownloadError) as error:
            await client.download(f"http://127.0.0.1:{port}/v.mp4", tmp_path / "v.mp4")
    assert str(error.value) == "the video could not be downloaded: the connection failed"
    assert f"127.0.0.1:{port}" in (error.value.detail or "")


async def test_a_link_that_keeps_failing_names_the_status(
    start_emulator, make_client, tmp_path
) -> None:
    emulator, client, state = await finished(start_emulator, make_client)
    emulator.fault(503, on="file", times=10)
    with pytest.raises(DownloadError) as error:
        await client.download(state.video_url, tmp_path / "v.mp4")
    assert str(error.value) == "the video could not be downloaded: the link answered HTTP 503"
