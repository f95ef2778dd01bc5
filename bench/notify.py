"""Benchmark settings changes across processes on PostgreSQL: how soon another process's
cache hears a change, and how soon a dropped listener is back.

Run from the repository root: ``python -m bench.notify`` (or ``python bench/notify.py``).
Two stores on one database stand for two processes (each with its one listening
connection), on a throwaway server started with the tests' helper (tests/pg_cluster.py;
fsync off). Process A changes a server's /video channels ``--changes`` times, one after
the other; for each change the script takes the time the write took (to its COMMIT's
answer) and the time until process B's listener delivered the announcement (B's cache
of that server dropped). Then it drops B's listening connection from the server side
(``pg_terminate_backend``) ``--drops`` times and takes the time until B listens again.
Figures are medians and 99th percentiles, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paddock.guild_config import GuildConfig
from paddock.settings_changes import CHANNEL
from paddock.store.postgres import PostgresStore
from tests.pg_cluster import PostgresCluster

GUILD, CHANNEL_ID = 1, 301


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def line(name: str, values: list[float]) -> str:
    return (f"{name}: median {statistics.median(values):.2f} ms, "
            f"p99 {percentile(values, 0.99):.2f} ms ({len(values)} samples)")


async def measure(url: str, changes: int, drops: int) -> None:
    first, second = await PostgresStore.open(url), await PostgresStore.open(url)
    try:
        here, there = GuildConfig(first), GuildConfig(second)
        await there.follow_changes()
        heard, back_again = asyncio.Event(), asyncio.Event()
        missed = [0]

        def miss() -> None:  # called when the connection is lost, and when it is back
            missed[0] += 1
            if missed[0] % 2 == 0:
                back_again.set()

        await second.listen(CHANNEL, lambda payload: heard.set(), miss)
        writes, delivered = [], []
        for n in range(changes):
            heard.clear()
            started = time.perf_counter()
            if n % 2:
                await here.disallow_channel(GUILD, CHANNEL_ID, actor_id=1)
            else:
                await here.allow_channel(GUILD, CHANNEL_ID, actor_id=1)
            written = time.perf_counter()
            await heard.wait()
            writes.append((written - started) * 1000)
            delivered.append((time.perf_counter() - started) * 1000)
        print(line("a change's write, to its COMMIT answered", writes))
        print(line("a change, to the other process's cache dropped", delivered))

        back = []
        listener = second.listener
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for _ in range(drops):
                back_again.clear()
                started = time.perf_counter()
                await conn.execute("SELECT pg_terminate_backend(%s)", [listener.backend_pid])
                await back_again.wait()
                back.append((time.perf_counter() - started) * 1000)
        print(line("a dropped listener, to listening again", back))
    finally:
        await first.close()
        await second.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--drops", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("paddock.store.notifications").setLevel(logging.ERROR)  # the drops
    cluster = PostgresCluster.start()
    try:
        url = cluster.create_database(f"bench_notify_{time.monotonic_ns()}")
        print(f"PostgreSQL {cluster.version.split()[0]} on 127.0.0.1 (fsync off); "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
        await measure(url, args.changes, args.drops)
    finally:
        cluster.stop()


if __name__ == "__main__":
    asyncio.run(main())
