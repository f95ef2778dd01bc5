"""Benchmark a /metrics scrape against a database of many jobs.

Run from the repository root: ``python -m bench.metrics [--jobs 100000]``. It fills a fresh
database with that many jobs (90% delivered, the rest spread over the other states and
four providers) and their holds, then times ``PaddockMetrics.render()``, which reads
the database with two GROUP BY queries, as each scrape does. Prints the median and worst of
``--scrapes`` scrapes, and the query plans (both should use a covering index).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hh_api import HappyHorse
from paddock.jobs import JobStore
from paddock.metrics import PaddockMetrics
from paddock.runner import Runner
from paddock.store import Store

STATES = ["delivered"] * 90 + ["cancelled"] * 5 + [
    "accepted", "submitted", "running", "succeeded", "failed"]
PROVIDERS = ["joypix", "wavespeed", "pixeldojo", "hiapi"]
REQUEST = json.dumps({"prompt": "a red horse gallops along a beach at dawn " * 4,
                      "mode": "text", "resolution": "720p", "duration": 5})


def fill(path: Path, count: int) -> None:
    """Rows written straight with sqlite3: the shape matters here, not the ledger's rules."""
    rng = random.Random(6)
    at = "2026-01-01T00:00:00.000000Z"
    jobs, holds = [], []
    for _ in range(count):
        job_id = uuid.uuid4().hex
        state = rng.choice(STATES)
        jobs.append((job_id, 1, 2, rng.randint(1, 5000), REQUEST, rng.choice(PROVIDERS), state,
                     70, at, at, at))
        hold = ("pending" if state in ("accepted", "submitted", "running") else
                "settled" if state in ("succeeded", "delivered") else "refunded")
        holds.append((job_id, 1, 1, 1, 70, 70, 0, hold, 70 if hold == "settled" else None,
                      100, at))
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO accounts (id, guild_id, kind, user_id) VALUES (1, 1, 'member', 1)")
        db.executemany(
            "INSERT INTO jobs (id, guild_id, channel_id, user_id, request, provider, state,"
            " estimated_credits, created_at, deadline_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)", jobs)
        db.executemany(
            "INSERT INTO holds (job_id, guild_id, user_id, personal_account, amount,"
            " from_personal, from_pool, state, charged, personal_available, reserved_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)", holds)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=20)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paddock-bench-") as folder:
        path = Path(folder) / "paddock.db"
        await (await Store.open(path)).close()  # the schema, migrations included
        fill(path, options.jobs)
        store = await Store.open(path)
        try:
            async with HappyHorse({}) as hh:
                runner = Runner(JobStore(store), hh, delivery=None)  # type: ignore[arg-type]
                metrics = PaddockMetrics(store, runner)
                times = []
                for _ in range(options.scrapes):
                    started = time.perf_counter()
                    text = await metrics.render()
                    times.append((time.perf_counter() - started) * 1000)
            plans = await store.read(lambda db: [
                db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()[-1][-1] for sql in (
                    "SELECT state, provider, COUNT(*) FROM jobs GROUP BY state, provider",
                    "SELECT state, SUM(amount), SUM(charged) FROM holds GROUP BY state")])
        finally:
            await store.close()
    print(f"{options.jobs} jobs: a scrape takes {statistics.median(times):.1f} ms "
          f"(median of {options.scrapes}), {max(times):.1f} ms at worst; "
          f"{len(text)} bytes of metrics")
    for plan in plans:
        print(f"  plan: {plan}")


if __name__ == "__main__":
    asyncio.run(main())
