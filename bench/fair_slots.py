"""What deciding a slot in the database costs: the write that marks a job as being sent,
bare and with the fair line read from the database (`paddock.fair_slots.admit_in`),
while other processes' jobs ask at the same provider.

Run from the repository root: ``python bench/fair_slots.py`` (``--backend postgres``
starts a throwaway server with the tests' helper, tests/pg_cluster.py; ``--repeat``).
Each figure is the median time of one write over ``--repeat`` jobs, each accepted, then
sent (timed), then failed (to free its slot).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine_line  # puts the repository on sys.path

from paddock.budget import Period
from paddock.fair_slots import admit_in
from paddock.jobs import JobStore
from paddock.leases import Leases
from paddock.ledger import Ledger
from paddock.store import open_store
from tests.pg_cluster import PostgresCluster

ASKING = [0, 8, 64, 512]  # jobs of other processes asking at the provider
SERVERS = 20  # they come from this many servers, each already served once
REQUEST = {"mode": "text", "prompt": "a lighthouse", "resolution": "720p", "duration": 5}
SLOTS = 8


async def accept(jobs: JobStore, guild: int, member: int) -> str:
    accepted = await jobs.accept(guild_id=guild, user_id=member, channel_id=1, request=REQUEST,
                                 estimated_credits=1, role_ids=(), provider="joypix")
    return accepted.job.id


async def one_shape(
    location: Path | str, asking: int, repeat: int
) -> tuple[float, float, float]:
    """Median ms of the bare mark, of the mark with the fair line (`asking` waiting), and
    of the admission alone within it."""
    store = await open_store(location)
    ledger, jobs = Ledger(store), JobStore(store)
    others = Leases(store, ttl=3600, owner="others")
    here = Leases(store, ttl=3600, owner="here")
    for guild in range(SERVERS):
        await ledger.set_allowance(guild, 10**9, Period.DAILY, actor_id=0)
    jobs.lease_new_jobs(others.new_job_lease)
    for n in range(asking):
        await accept(jobs, n % SERVERS, n)

    def mark_asking(db: Any) -> None:  # as if each had asked and been told to wait
        db.execute("UPDATE jobs SET slot_asker = 'others' WHERE lease_owner = 'others'")
        for guild in range(SERVERS):
            db.execute("INSERT INTO server_turns (provider, guild_id, turn) VALUES"
                       " ('joypix', ?, ?)", [guild, guild + 1])

    await store.write(mark_asking)
    jobs.lease_new_jobs(here.new_job_lease)
    driver = jobs.fenced(here.fence)
    deciding: list[float] = []  # the admission alone, inside the write

    def admit(db: Any, job: Any) -> Any:
        began = time.perf_counter()
        refused = admit_in(db, job, owner="here", slots=SLOTS, member_cap=2, clock=here.clock)
        deciding.append((time.perf_counter() - began) * 1000)
        return refused

    bare: list[float] = []
    fair: list[float] = []
    for n in range(repeat):
        for times, how in ((bare, None), (fair, admit)):
            guild = SERVERS + 1 + 2 * n + len(times)  # a server never served here
            await ledger.set_allowance(guild, 10**9, Period.DAILY, actor_id=0)
            job_id = await accept(jobs, guild, 10_000)
            began = time.perf_counter()
            await driver.mark_submitting(job_id, admit=how)
            times.append((time.perf_counter() - began) * 1000)
            await driver.mark_failed(job_id, error="bench")
    await store.close()
    return statistics.median(bare), statistics.median(fair), statistics.median(deciding)


async def measure(args: argparse.Namespace, cluster: PostgresCluster | None) -> None:
    print(machine_line())
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    backend = (f"PostgreSQL {cluster.version.split()[0]} (fsync off)" if cluster
               else "SQLite (WAL, FULL)")
    print(f"backend: {backend}; {SLOTS} slots; median of {args.repeat} writes each")
    print(f"{'asking elsewhere':>17} {'bare mark ms':>13} {'with fair line ms':>18}"
          f" {'of which deciding ms':>21}")
    with tempfile.TemporaryDirectory() as folder:
        for asking in ASKING:
            if cluster is not None:
                location: Path | str = cluster.create_database(
                    f"fair_{asking}_{time.monotonic_ns()}")
            else:
                location = Path(folder) / f"fair-{asking}.db"
            bare, fair, deciding = await one_shape(location, asking, args.repeat)
            print(f"{asking:>17} {bare:>13.2f} {fair:>18.2f} {deciding:>21.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=51)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    cluster = PostgresCluster.start() if args.backend == "postgres" else None
    try:
        asyncio.run(measure(args, cluster))
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
