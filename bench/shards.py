"""Sharding: how soon a sharded bot is ready, and how fast members of every shard's
server are answered when the shards run in one process or in two.

Run from the repository root: ``python bench/shards.py`` (``--runs``, ``--commands``).
The bot is ``python bot.py`` (one or two processes, on one SQLite file) against the fake
Discord, which holds four servers, one on each shard of four. Figures:

- ready: from starting ``python bot.py`` with ``DISCORD_SHARD_COUNT=4`` to its "ready as"
  line (every shard's session up and its servers loaded), when Discord's
  ``max_concurrency`` is 1 (most bots: one IDENTIFY per 5 s) and 4 (all four at once);
- first answer: ``--commands`` ``/credits balance`` from 48 members spread over the four
  servers, arriving at once; each one's time from its INTERACTION_CREATE being queued on
  the gateway to the bot's first response reaching the fake. Run with one unsharded
  process, one process with shards 0-3, and two processes with shards 0,1 and 2,3.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from _common import machine_line, median, percentile, table

from tests.fakes.discord import BotProcess, FakeDiscord, Interaction, bot_process
from tests.fakes.discord.state import Guild

SHARDS = 4
MEMBERS = 48
LAYOUTS = {
    "one process, no sharding": [None],
    "one process, shards 0-3": ["0,1,2,3"],
    "two processes, shards 0,1 + 2,3": ["0,1", "2,3"],
}


def servers(fake: FakeDiscord) -> list[Guild]:
    return [fake.add_guild(f"Shard {shard}", shard=(shard, SHARDS)) for shard in range(SHARDS)]


def env_for(database: Path) -> dict[str, str]:
    return {"DATABASE_PATH": str(database), "DEV_GUILD_ID": "", "HH_PROVIDER": "demo"}


@contextlib.asynccontextmanager
async def bots(
    fake: FakeDiscord, env: dict[str, str], layout: list[str | None]
) -> AsyncIterator[list[BotProcess]]:
    """The processes of ``layout`` (each one's ``DISCORD_SHARD_IDS`` of ``SHARDS``, or
    None: no sharding), on ``env``, each ready (every shard of it) on entry."""
    async with contextlib.AsyncExitStack() as stack:
        processes = []
        for shard_ids in layout:
            first, sharding = None, {}
            if shard_ids is not None:
                first = (int(shard_ids.split(",")[0]), SHARDS)
                sharding = {"DISCORD_SHARD_COUNT": str(SHARDS), "DISCORD_SHARD_IDS": shard_ids}
            process = await stack.enter_async_context(
                bot_process(fake, env={**env, **sharding}, shard=first, timeout=60))
            await process.wait_for_output("ready as", timeout=60)
            processes.append(process)
        yield processes


async def time_to_ready(folder: Path, max_concurrency: int) -> float:
    async with FakeDiscord() as fake:
        fake.max_concurrency = max_concurrency
        servers(fake)
        started = time.perf_counter()
        async with bots(fake, env_for(folder / f"ready-{time.monotonic_ns()}.db"), ["0,1,2,3"]):
            return time.perf_counter() - started


async def burst(folder: Path, layout: list[str | None], commands: int) -> list[float]:
    """Each command's time to its first response, in ms."""
    async with FakeDiscord() as fake:
        fake.max_concurrency = SHARDS
        guilds = servers(fake)
        crowd = [fake.member(f"member{n}", guild=guilds[n % SHARDS]) for n in range(MEMBERS)]
        async with bots(fake, env_for(folder / f"burst-{time.monotonic_ns()}.db"), layout):
            sent: list[Interaction] = []
            for n in range(commands):
                sent.append(await crowd[n % MEMBERS].slash("credits balance"))
            await fake.wait_for(lambda: all(i.responded_at for i in sent), timeout=30)
            failed = [i for i in sent if i.failed]
            if failed:
                raise SystemExit(f"{len(failed)} interactions got no answer in 3 s")
    return [((i.responded_at or 0) - i.sent_at) * 1000 for i in sent]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", type=int, default=200)
    arguments = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory() as folder:
        ready = [(mc, await time_to_ready(Path(folder), mc)) for mc in (1, SHARDS)]
        print(f"\n{SHARDS} shards in one process, start to ready (one run each)")
        print(table(["max_concurrency", "ready s"], ready))
        rows = []
        for name, layout in LAYOUTS.items():
            runs = [await burst(Path(folder), layout, arguments.commands)
                    for _ in range(arguments.runs)]
            rows.append((name, median([percentile(r, 0.5) for r in runs]),
                         median([percentile(r, 0.99) for r in runs])))
        print(f"\n{arguments.commands} /credits balance from {MEMBERS} members in {SHARDS} "
              f"servers at once, first answer; median over {arguments.runs} runs")
        print(table(["layout", "p50 ms", "p99 ms"], rows))


if __name__ == "__main__":
    asyncio.run(main())
