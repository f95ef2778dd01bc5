"""Streaming a finished video to disk, with a size cap and a check that it is a video."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

import aiohttp

from hh_api.errors import DownloadError
from hh_api.transport import RetryPolicy, Sleep

log = logging.getLogger("hh_api.download")

CHUNK = 256 * 1024
# Types that say "some bytes": accepted only when the bytes look like a video.
GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream", ""}


def looks_like_video(head: bytes) -> bool:
    """MP4/MOV (an ftyp box), WebM/Matroska (EBML) by their first bytes."""
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3"


async def download_video(
    session: aiohttp.ClientSession,
    url: str,
    destination: Path,
    *,
    max_bytes: int,
    timeout: aiohttp.ClientTimeout,
    retry: RetryPolicy,
    sleep: Sleep,
) -> Path:
    """Fetch `url` into `destination` atomically (a partial file never remains)."""
    if not url.startswith(("https://", "http://")):
        raise DownloadError("the video link is not an http(s) URL")
    destination.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retry.attempts):
        if attempt:
            await sleep(retry.backoff(attempt - 1))
        try:
            return await _fetch(session, url, destination, max_bytes=max_bytes, timeout=timeout)
        except _Transient as error:
            log.warning("download failed (attempt %d): %s", attempt + 1, error)
            last = error
    raise DownloadError(f"the video could not be downloaded: {last}")


class _Transient(Exception):
    pass


async def _fetch(
    session: aiohttp.ClientSession,
    url: str,
    destination: Path,
    *,
    max_bytes: int,
    timeout: aiohttp.ClientTimeout,
) -> Path:
    limit = f"{max_bytes / 1_048_576:.1f} MB"
    fd, temp_name = tempfile.mkstemp(prefix=".part-", dir=destination.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                async with session.get(url, timeout=timeout) as response:
                    if response.status >= 500 or response.status == 429:
                        raise _Transient(f"HTTP {response.status}")
                    if response.status != 200:
                        raise DownloadError(
                            f"the video link answered HTTP {response.status}"
                            + (" (it may have expired)" if response.status in (403, 404) else "")
                        )
                    if (response.content_length or 0) > max_bytes:
                        raise DownloadError(
                            f"the video is {response.content_length / 1_048_576:.1f} MB, "
                            f"over the {limit} limit"
                        )
                    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                    if not (kind.startswith("video/") or kind in GENERIC_TYPES):
                        raise DownloadError(f"the link gave {kind}, not a video")
                    size = 0
                    head = b""
                    async for chunk in response.content.iter_chunked(CHUNK):
                        size += len(chunk)
                        if size > max_bytes:
                            raise DownloadError(f"the video is over the {limit} limit")
                        if len(head) < 16:
                            head += chunk[: 16 - len(head)]
                        out.write(chunk)
            except (TimeoutError, aiohttp.ClientError) as error:
                raise _Transient(str(error) or type(error).__name__) from None
            if kind in GENERIC_TYPES and not looks_like_video(head):
                raise DownloadError("the link gave bytes that are not a video")
        os.replace(temp, destination)
        return destination
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
