"""Streaming a finished video to disk, with a size cap and a check that it is a video."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from hh_api.errors import DownloadError, NotAVideoError, VideoTooLargeError
from hh_api.transport import (
    CallKind,
    CallOutcome,
    Observer,
    ProviderCall,
    RetryPolicy,
    Sleep,
    report_call,
)
from hh_api.version import USER_AGENT

log = logging.getLogger("hh_api.download")

CHUNK = 256 * 1024
# Types that say "some bytes": accepted only when the bytes look like a video.
GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream", ""}


def looks_like_video(head: bytes) -> bool:
    """MP4/MOV (an ftyp box), WebM/Matroska (EBML) by their first bytes."""
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3"


def mp4_problem(path: Path) -> str | None:
    """Why the MP4/MOV at `path` is not whole (its top-level boxes must fill the file
    exactly and include the movie header, ``moov``), or None. Reads only box headers."""
    size = path.stat().st_size
    seen = set()
    with path.open("rb") as file:
        at = 0
        while at < size:
            file.seek(at)
            header = file.read(16)
            if len(header) < 8:
                return "it ends inside a box header (the file was cut short)"
            length, kind = struct.unpack(">I4s", header[:8])
            if length == 1:
                if len(header) < 16:
                    return "it ends inside a box header (the file was cut short)"
                length = struct.unpack(">Q", header[8:16])[0]
            elif length == 0:
                length = size - at  # the last box runs to the end of the file
            if length < 8 or at + length > size:
                return "the file was cut short"
            seen.add(kind)
            at += length
    return None if b"moov" in seen else "it has no movie header (the file is incomplete)"


async def download_video(
    session: aiohttp.ClientSession,
    url: str,
    destination: Path,
    *,
    max_bytes: int,
    timeout: aiohttp.ClientTimeout,
    retry: RetryPolicy,
    sleep: Sleep,
    provider: str | None = None,
    observer: Observer | None = None,
) -> Path:
    """Fetch `url` into `destination` atomically (a partial file never remains).

    Each attempt is reported to `observer` as a `ProviderCall` of kind ``download``.
    """
    if not url.startswith(("https://", "http://")):
        raise DownloadError("the video link is not an http(s) URL")
    destination.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for attempt in range(retry.attempts):
        if attempt:
            await sleep(retry.backoff(attempt - 1))
        seen = _Attempt(provider)
        try:
            path = await _fetch(
                session, url, destination, max_bytes=max_bytes, timeout=timeout, seen=seen
            )
        except _Transient as error:
            seen.report(observer, error.outcome)
            log.warning("provider=%s download failed (attempt %d): %s",
                        provider, attempt + 1, error)
            last = error
        except DownloadError as error:
            seen.report(observer, _error_outcome(error, seen))
            raise
        else:
            problem = await asyncio.to_thread(_whole_video_problem, path)
            if problem is not None:
                path.unlink(missing_ok=True)
                seen.report(observer, CallOutcome.PROTOCOL)
                raise NotAVideoError(f"the video file is broken: {problem}", provider=provider)
            seen.report(observer, CallOutcome.OK)
            return path
    what = "the download timed out" if last.outcome is CallOutcome.TIMEOUT else (
        f"the link answered {last}" if str(last).startswith("HTTP") else "the connection failed")
    raise DownloadError(f"the video could not be downloaded: {what}", detail=str(last))


@dataclass
class _Attempt:
    """One download attempt, for its `ProviderCall`."""

    provider: str | None
    started: float = field(default_factory=time.monotonic)
    status: int | None = None
    outcome: CallOutcome | None = None  # set where the error alone does not say

    def report(self, observer: Observer | None, outcome: CallOutcome) -> None:
        seconds = time.monotonic() - self.started
        call = ProviderCall(self.provider, CallKind.DOWNLOAD, outcome, self.status, seconds)
        report_call(observer, call)


class _Transient(Exception):
    def __init__(self, message: str, outcome: CallOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


def _whole_video_problem(path: Path) -> str | None:
    with path.open("rb") as file:
        head = file.read(16)
    return mp4_problem(path) if head[4:8] == b"ftyp" else None


def _error_outcome(error: DownloadError, seen: _Attempt) -> CallOutcome:
    """The `CallOutcome` of a download attempt refused for good."""
    if seen.outcome is not None:
        return seen.outcome
    if seen.status in (401, 403, 404, 410):
        return CallOutcome.NOT_FOUND  # an expired or withdrawn link
    return CallOutcome.INVALID


async def _fetch(
    session: aiohttp.ClientSession,
    url: str,
    destination: Path,
    *,
    max_bytes: int,
    timeout: aiohttp.ClientTimeout,
    seen: _Attempt,
) -> Path:
    limit = f"{max_bytes / 1_048_576:.1f} MB"
    fd, temp_name = tempfile.mkstemp(prefix=".part-", dir=destination.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                async with session.get(
                    url, timeout=timeout, headers={"User-Agent": USER_AGENT}
                ) as response:
                    seen.status = response.status
                    if response.status == 429:
                        raise _Transient("HTTP 429", CallOutcome.RATE_LIMITED)
                    if response.status >= 500:
                        raise _Transient(f"HTTP {response.status}", CallOutcome.UNAVAILABLE)
                    if response.status != 200:
                        raise NotAVideoError(
                            f"the video link answered HTTP {response.status}"
                            + (" (it may have expired)" if response.status in (403, 404) else "")
                        )
                    if (response.content_length or 0) > max_bytes:
                        seen.outcome = CallOutcome.TOO_LARGE
                        raise VideoTooLargeError(
                            f"the video is {response.content_length / 1_048_576:.1f} MB, "
                            f"over the {limit} limit"
                        )
                    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                    if not (kind.startswith("video/") or kind in GENERIC_TYPES):
                        seen.outcome = CallOutcome.PROTOCOL
                        raise NotAVideoError(f"the link gave {kind or 'a page'}, not a video")
                    size = 0
                    head = b""
                    async for chunk in response.content.iter_chunked(CHUNK):
                        size += len(chunk)
                        if size > max_bytes:
                            seen.outcome = CallOutcome.TOO_LARGE
                            raise VideoTooLargeError(f"the video is over the {limit} limit")
                        if len(head) < 16:
                            head += chunk[: 16 - len(head)]
                        out.write(chunk)
            except (TimeoutError, aiohttp.ClientError) as error:
                timed_out = isinstance(error, TimeoutError)
                outcome = CallOutcome.TIMEOUT if timed_out else CallOutcome.CONNECTION
                raise _Transient(str(error) or type(error).__name__, outcome) from None
            if not head:
                seen.outcome = CallOutcome.PROTOCOL
                raise NotAVideoError("the link gave an empty file, not a video")
            if not looks_like_video(head):  # whatever the type claims
                seen.outcome = CallOutcome.PROTOCOL
                raise NotAVideoError("the link gave bytes that are not a video")
        os.replace(temp, destination)
        return destination
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
