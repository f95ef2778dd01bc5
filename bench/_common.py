"""What every benchmark shares: the machine line, percentiles, and the bot under test.

The bot runs as ``python bot.py`` in its own process, as in production, against the
project's fake Discord and provider emulators, which run in the benchmark's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.discord import BotProcess, FakeDiscord, bot_process  # noqa: E402
from tests.fakes.providers import ProviderEmulator, Task  # noqa: E402


def machine_line(*packages: str) -> str:
    """Cores, Python, SQLite and package versions: the first line every bench prints."""
    names = ("discord.py", "aiohttp", "sqlite-utils", *packages)
    versions = "  ".join(f"{name} {version(name)}" for name in names)
    return (
        f"cores: {os.cpu_count()}  python {platform.python_version()}  "
        f"sqlite {sqlite3.sqlite_version}  {versions}  {platform.system()} {platform.machine()}"
    )


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction 0.5 = median, 0.99 = p99)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain right-aligned table for the terminal and the README."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss(pid: int) -> float:
    """A process's resident memory now, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for process {pid}")


def render_times(mean: float, spread: float, seed: int) -> Callable[[Task], None]:
    """An emulator's ``on_task_created`` giving each new task its own render time, drawn
    around ``mean`` (standard deviation ``spread``); the same seed, the same sequence."""
    rng = random.Random(seed)

    def assign(task: Task) -> None:
        task.render_seconds = max(mean / 3, rng.gauss(mean, spread))

    return assign


async def when(check: Callable[[], object], *, timeout: float = 120.0,
               every: float = 0.005) -> float:
    """When ``check()`` first held (perf_counter), checking every ``every`` seconds."""
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"still not so after {timeout:g} s: {check}")
        await asyncio.sleep(every)
    return time.perf_counter()


def provider_env(emulator: ProviderEmulator) -> dict[str, str]:
    """Environment pointing ``bot.py`` at one emulator as its only provider."""
    prefix = emulator.provider.upper()
    blank = {f"{name}_API_KEY": "" for name in ("JOYPIX", "WAVESPEED", "PIXELDOJO", "HIAPI")}
    return {
        **blank,
        f"{prefix}_API_KEY": emulator.api_key,
        f"{prefix}_BASE_URL": emulator.base_url,
        "HH_PROVIDER": emulator.provider,
    }


@contextlib.asynccontextmanager
async def bot_against(
    fake: FakeDiscord, database: Path, env: dict[str, str], *, timeout: float = 60.0,
    script: str = "bot.py",
) -> AsyncIterator[BotProcess]:
    """``python bot.py`` against ``fake`` with its database at ``database``, otherwise
    on its defaults (logs at INFO included); keys of other providers in the environment
    are blanked so only ``env``'s are used. ``script`` is ``bench/bare_bot.py`` for the
    floor that discord.py alone sets."""
    blank = {
        f"{name}_API_KEY": "" for name in ("JOYPIX", "WAVESPEED", "PIXELDOJO", "HIAPI")
    }
    full = {**blank, "DATABASE_PATH": str(database), **env}
    async with bot_process(fake, env=full, timeout=timeout, script=script) as process:
        yield process
