"""Benchmark the ledger: reserve+settle pairs per second with 1, 10 and 100 members at once.

Run from the repository root: ``python -m bench.ledger`` (or ``python bench/ledger.py``).
Each member is one asyncio task doing reserve-then-settle in a loop on one database file
(WAL, synchronous=FULL); every figure is the median of ``--runs`` runs.

``--backend postgres`` runs the same loop on PostgreSQL: a throwaway server started with
the tests' helper (tests/pg_cluster.py; fsync off, so it measures Paddock and the
server's work, not the disk), a fresh database for each run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paddock.ledger import Ledger
from paddock.store import Store
from paddock.store.postgres import DEFAULT_MAX_BATCH, DEFAULT_WRITERS, PostgresStore
from tests.pg_cluster import PostgresCluster

GUILD = 1


@dataclass
class Run:
    pairs_per_second: float
    p50_ms: float
    p99_ms: float
    pairs: int
    retries: int = 0  # PostgreSQL: transactions run again after a serialization failure
    commits: int = 0  # PostgreSQL: write transactions committed (writes per COMMIT)
    bot_cpu: float = 0.0  # CPU seconds of this process (every thread) during the run
    server_cpu: float = 0.0  # PostgreSQL: CPU seconds of the server's processes


def server_cpu_seconds(cluster: Any) -> float:
    """CPU seconds used so far by the PostgreSQL server: the postmaster and its children
    (the connections' backends), from /proc; 0 without a server."""
    if cluster is None:
        return 0.0
    postmaster = cluster.process.pid
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue  # gone meanwhile
        if pid == postmaster or int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def one_run(
    members: int,
    seconds: float,
    folder: Path,
    cluster: Any = None,
    writers: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Run:
    if cluster is not None:
        url = cluster.create_database(f"bench_{members}_{time.monotonic_ns()}")
        store: Any = await PostgresStore.open(url, writers=writers, max_batch=max_batch)
    else:
        store = await Store.open(folder / f"bench-{members}-{time.monotonic_ns()}.db")
    ledger = Ledger(store)
    for member in range(members):
        await ledger.grant(GUILD, member, 10**12, actor_id=0, reason="bench", role_ids=())
    latencies: list[float] = []
    commits_before = getattr(store, "commits", 0)
    cpu_before = time.process_time(), server_cpu_seconds(cluster)
    stop = time.perf_counter() + seconds

    async def member_loop(member: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            n += 1
            job = f"{member}-{n}"
            started = time.perf_counter()
            await ledger.reserve(job, GUILD, member, 5, role_ids=())
            await ledger.settle(job, 3)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(member_loop(m) for m in range(members)))
    elapsed = time.perf_counter() - began
    bot_cpu = time.process_time() - cpu_before[0]
    server_cpu = server_cpu_seconds(cluster) - cpu_before[1]
    report = await ledger.check()
    await store.close()
    if not report.ok:
        raise SystemExit(f"ledger inconsistent after the bench: {report.problems[:3]}")
    latencies.sort()
    return Run(
        pairs_per_second=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        pairs=len(latencies),
        retries=getattr(store, "retries", 0),
        commits=getattr(store, "commits", 0) - commits_before,
        bot_cpu=bot_cpu,
        server_cpu=server_cpu,
    )


def writes_per_commit(runs: list[Run]) -> str:
    """PostgreSQL's group commit: the pairs' writes (two each) over the COMMITs they took."""
    commits = sum(r.commits for r in runs)
    return f"{sum(2 * r.pairs for r in runs) / commits:.1f}" if commits else "-"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--runs", type=int, default=3, help="runs per member count")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--writers", type=int, default=DEFAULT_WRITERS,
                        help="PostgreSQL: writes at once (connections)")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help="PostgreSQL: queued writes committed together, at most")
    args = parser.parse_args()
    cluster = PostgresCluster.start() if args.backend == "postgres" else None
    try:
        await measure(args, cluster)
    finally:
        if cluster is not None:
            cluster.stop()


async def measure(args: argparse.Namespace, cluster: Any) -> None:
    print(
        f"cores: {os.cpu_count()}  python {platform.python_version()}  "
        f"sqlite {sqlite3.sqlite_version}  sqlite-utils {version('sqlite-utils')}  "
        f"{platform.system()} {platform.machine()}"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if cluster is not None:
        print(f"backend: PostgreSQL {cluster.version.split()[0]} on 127.0.0.1 (fsync off), "
              f"psycopg {version('psycopg')}, {args.writers} writer "
              f"connection(s), SERIALIZABLE, up to {args.max_batch} writes per COMMIT")
        print(f"each figure: median of {args.runs} runs of {args.seconds:g} s, a new database")
    else:
        print(f"each figure: median of {args.runs} runs of {args.seconds:g} s, one file, WAL, "
              "FULL")
    print(f"{'members':>8} {'pairs/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'pairs':>9} "
          f"{'retries':>8} {'writes/commit':>14} {'CPU ms/pair: bot':>17} {'server':>7}")
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for members in args.members:
            runs = [
                await one_run(
                    members, args.seconds, Path(folder), cluster, args.writers, args.max_batch
                )
                for _ in range(args.runs)
            ]
            print(
                f"{members:>8} "
                f"{statistics.median(r.pairs_per_second for r in runs):>10,.0f} "
                f"{statistics.median(r.p50_ms for r in runs):>8.2f} "
                f"{statistics.median(r.p99_ms for r in runs):>8.2f} "
                f"{sum(r.pairs for r in runs):>9,} "
                f"{sum(r.retries for r in runs):>8,} "
                f"{writes_per_commit(runs):>14} "
                f"{statistics.median(r.bot_cpu * 1000 / r.pairs for r in runs):>17.2f} "
                f"{statistics.median(r.server_cpu * 1000 / r.pairs for r in runs):>7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
