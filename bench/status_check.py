"""What one status check costs the client: CPU per check, and where it goes.

Run from the repository root: ``python bench/status_check.py`` (``--checks``, ``--provider``,
``--profile`` for a cProfile breakdown). A provider emulator runs in its own process, so
only the client's side is counted: ``HappyHorse.status`` on one task that stays running,
``--checks`` times one after another, over one pooled connection, with the same
``on_call`` observer the bot counts calls with (``paddock.metrics``). Prints the client's
CPU microseconds per check (user + system, median of ``--runs``) and the kernel's share.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys

from _common import machine_line, median

from hh_api import HappyHorse, Mode, ProviderConfig, VideoRequest
from paddock.metrics import PaddockMetrics

EMULATOR = """
import asyncio, sys
from tests.fakes.providers import ProviderEmulator
async def main():
    async with ProviderEmulator(sys.argv[1], api_key="bench") as emulator:
        emulator.render_seconds = 10**6
        print(emulator.base_url, flush=True)
        await asyncio.get_running_loop().create_future()
asyncio.run(main())
"""


async def checks(base_url: str, provider: str, count: int, runs: int,
                 profile: bool) -> tuple[list[float], list[float]]:
    config = {provider: ProviderConfig(provider, api_key="bench", base_url=base_url)}
    # the observer only counts; the store and runner are read at a scrape, never here
    metrics = PaddockMetrics(None, None)  # type: ignore[arg-type]
    per_check: list[float] = []
    in_kernel: list[float] = []
    async with HappyHorse(config, on_call=metrics.record_call) as hh:
        request = VideoRequest(mode=Mode.TEXT, prompt="a horse", resolution="720p", duration=5)
        task = await hh.submit(provider, request)
        for _ in range(50):  # warm the connection and the caches
            await hh.status(provider, task.task_id)
        profiler = cProfile.Profile() if profile else None
        for _ in range(runs):
            if profiler is not None:
                profiler.enable()
            started = os.times()
            for _ in range(count):
                await hh.status(provider, task.task_id)
            ended = os.times()
            user, system = ended.user - started.user, ended.system - started.system
            per_check.append((user + system) / count * 1e6)
            in_kernel.append(system / count * 1e6)
            if profiler is not None:
                profiler.disable()
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        print(out.getvalue())
    return per_check, in_kernel


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--provider", default="joypix")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(machine_line())
    emulator = await asyncio.create_subprocess_exec(
        sys.executable, "-c", EMULATOR, args.provider, stdout=asyncio.subprocess.PIPE)
    try:
        assert emulator.stdout is not None
        base_url = (await emulator.stdout.readline()).decode().strip()
        per_check, in_kernel = await checks(base_url, args.provider, args.checks, args.runs,
                                            args.profile)
    finally:
        emulator.terminate()
        await emulator.wait()
    print(f"{args.provider}: client CPU per status check, median of {args.runs} runs of "
          f"{args.checks}: {median(per_check):.0f} us, of which {median(in_kernel):.0f} us in "
          "the kernel (runs: " + ", ".join(f"{v:.0f}" for v in per_check) + ")")


if __name__ == "__main__":
    asyncio.run(main())
