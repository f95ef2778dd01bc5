"""Media work off the event loop: encodes in child processes, the rest in a few threads.

A re-encode takes seconds of both cores, so it runs in its own process (``python -m
paddock.delivery.encode``) at a lower CPU priority, at most `ENCODES_AT_ONCE` at a time
(the others wait their turn): the bot's process keeps its share of the CPU and answers
members while videos are encoded. Quick, blocking work (probing a file, decoding
pictures) goes to a small thread pool. A cancelled encode (the bot stopping) kills its
process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

import av

from paddock.delivery.fit import FitKind, FitResult
from paddock.delivery.join import Joined, JoinKind, can_copy, copy_join, last_frame
from paddock.delivery.probe import NotAVideo, probe

log = logging.getLogger(__name__)

# One encode per two cores: x264 already uses every core it is given.
ENCODES_AT_ONCE = max(1, min(2, (os.cpu_count() or 2) // 2))
THREADS = 2  # probing and picture decoding
ROOT = Path(__file__).resolve().parents[2]  # where ``-m paddock...`` is found
ENCODER_NICENESS = 10  # the encode yields the CPU to the bot's own process

P = ParamSpec("P")
T = TypeVar("T")


class EncodeFailed(RuntimeError):
    """The encoder process failed; the message ends with its last words."""


class MediaWorkers:
    """Bounded pools for media work. ``await fit(...)`` fits a video to an upload limit;
    ``await in_thread(fn, ...)`` runs other blocking work. Close it with `close`."""

    def __init__(self, encodes: int = ENCODES_AT_ONCE, threads: int = THREADS) -> None:
        self._encodes = asyncio.Semaphore(encodes)
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="paddock-media")
        self.encoding: dict[int, Path] = {}  # pid -> source, for the encodes running now
        self.waiting = 0  # encodes waiting for their turn

    async def in_thread(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, lambda: work(*args, **kwargs))

    async def fit(self, source: Path, limit: int, output: Path, *, label: str = "") -> FitResult:
        """`source` as it is when it fits in `limit` bytes, else re-encoded into `output`,
        else TOO_LARGE. Raises NotAVideo, EncodeFailed."""
        size = await self.in_thread(lambda: source.stat().st_size)
        if size <= limit:
            return FitResult(FitKind.ORIGINAL, source, limit)
        async with self._encode_slot():
            result = await self._run_encoder(source, limit, output)
        _log_result(result, size, label)
        return result

    async def last_frame(self, video: Path) -> bytes:
        """The last frame of `video` as a PNG, decoded in a thread. Raises NotAVideo."""
        return await self.in_thread(last_frame, video)

    async def join(self, first: Path, second: Path, output: Path, *, label: str = "") -> Joined:
        """`first` then `second` (less its first frame, which is `first`'s last) in
        `output`: copied in a thread when the codec parameters match, else re-encoded
        in the encoder's process, in turn with the fits. Raises NotAVideo, EncodeFailed."""
        started = time.perf_counter()
        await self.in_thread(output.parent.mkdir, parents=True, exist_ok=True)
        if await self.in_thread(can_copy, first, second):
            try:
                await self.in_thread(copy_join, first, second, output)
            except (av.FFmpegError, ValueError) as error:  # PyAV refused the packets
                raise EncodeFailed(f"copying the two clips failed: {error}") from error
            kind = JoinKind.COPIED
        else:
            async with self._encode_slot():
                await self._run_child("paddock.delivery.join", first, second, output)
            kind = JoinKind.REENCODED
        info = await self.in_thread(probe, output)
        joined = Joined(kind, output, info.duration, time.perf_counter() - started)
        log.info("%sjoined two clips (%s) into %.1f s of video in %.2f s",
                 f"{label} " if label else "", kind.value, joined.duration, joined.seconds)
        return joined

    @contextlib.asynccontextmanager
    async def _encode_slot(self) -> AsyncIterator[None]:
        """One of the `ENCODES_AT_ONCE` encoder slots, counted in `waiting` until it is ours."""
        self.waiting += 1
        try:
            await self._encodes.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._encodes.release()

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _run_encoder(self, source: Path, limit: int, output: Path) -> FitResult:
        stdout = await self._run_child("paddock.delivery.encode", source, limit, output)
        return FitResult.from_json(json.loads(stdout))

    async def _run_child(self, module: str, source: Path, *args: object) -> bytes:
        """Run ``python -m module source args...`` (an encoder); its stdout."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, str(source), *(str(a) for a in args),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )
        self.encoding[process.pid] = source
        try:
            stdout, stderr = await process.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        finally:
            self.encoding.pop(process.pid, None)
        if process.returncode == NOT_A_VIDEO:
            raise NotAVideo(stderr.decode(errors="replace").strip().splitlines()[-1])
        if process.returncode != 0:
            words = stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise EncodeFailed(f"the encoder exited with {process.returncode}: "
                               + " / ".join(words))
        return stdout


NOT_A_VIDEO = 3  # the encoder's exit status when the source is no video


def _log_result(result: FitResult, size: int, label: str) -> None:
    prefix = f"{label} " if label else ""
    mb = 1_048_576
    if result.kind is FitKind.TOO_LARGE:
        log.info("%svideo of %.1f MB does not fit %.1f MB: %s", prefix, size / mb,
                 result.limit / mb, result.reason)
        return
    assert result.plan is not None and result.output is not None
    made = result.attempts[-1].size
    log.info("%sre-encoded %.1f MB to %.1f MB for a %.1f MB limit: %dx%d, %.2f Mbit/s, "
             "%.1f s of video in %.1f s", prefix, size / mb, made / mb, result.limit / mb,
             result.plan.width, result.plan.height, result.attempts[-1].video_bitrate / 1e6,
             result.output.duration, result.seconds)
    if len(result.attempts) > 1:
        first = result.attempts[0]
        log.warning("%sthe first re-encode came out at %.2f MB, over the %.2f MB limit; "
                    "encoded again at %.2f Mbit/s", prefix, first.size / mb,
                    result.limit / mb, result.attempts[-1].video_bitrate / 1e6)
