"""SIGKILL a process in the middle of reserves and settles, many times: nothing is lost.

The child (``tests/ledger_child.py crash``, forked by its ``forks`` server) runs jobs
through the job store from several tasks and logs every step after it returned. After
each kill the parent reopens the file, checks that pending holds belong exactly to jobs
still in flight, sweeps as at start-up (jobs whose submit may have reached the provider
must stay held until their deadline), sweeps again past every deadline, and checks that
every hold is then settled or refunded as its job says, that every acknowledged step is in
the database, and that the members' credits add up to what was granted minus charges.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from paddock.budget import utcnow
from paddock.jobs import IN_FLIGHT, Job, JobState, JobStore
from paddock.ledger import Ledger
from paddock.store import open_store
from tests.ledger_child import CRASH_MEMBERS, GUILD

ROOT = Path(__file__).resolve().parent.parent
KILLS = 25
KILLS_ON_POSTGRES = 10  # each kill and its checks take twice as long there
GRANT = 100_000


class ForkServer:
    """``tests/ledger_child.py forks``: crash children forked from one process that has
    imported everything already."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> ForkServer:
        return cls(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.ledger_child", "forks", cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        ))  # fmt: skip

    async def line(self) -> str:
        assert self.process.stdout is not None
        read = await asyncio.wait_for(self.process.stdout.readline(), 60)
        assert read, f"the fork server ended ({await self.process.wait()})"
        return read.decode().strip()

    async def run_and_kill(
        self, db: Path | str, ack_log: Path, seed: int, rng: random.Random
    ) -> None:
        """Fork a crash child, let it work for a random moment once ready, SIGKILL it."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"crash {db} {ack_log} {seed}\n".encode())
        await self.process.stdin.drain()
        said = {await self.line(), await self.line()}  # "pid N" and "ready", either first
        [pid] = [int(words.split()[1]) for words in said if words.startswith("pid ")]
        assert "ready" in said, said
        await asyncio.sleep(rng.uniform(0.0, 0.25))
        os.kill(pid, signal.SIGKILL)
        assert await self.line() == f"ended {-signal.SIGKILL}"

    async def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert await asyncio.wait_for(self.process.wait(), 30) == 0


async def all_jobs(jobs: JobStore) -> dict[str, Job]:
    found = {}
    for member in CRASH_MEMBERS:
        for job in await jobs.list_for_member(GUILD, member, limit=1_000_000):
            found[job.id] = job
    return found


def read_acks(ack_log: Path) -> dict[str, list[list[str]]]:
    steps: dict[str, list[list[str]]] = defaultdict(list)
    if ack_log.exists():
        for line in ack_log.read_text().splitlines():
            words = line.split()
            if len(words) >= 2:  # a line cut by the kill has no job id after it is cut
                steps[words[1]].append(words)
    return steps


async def verify_after_restart(db: Path | str, ack_log: Path) -> None:
    store = await open_store(db)
    try:
        ledger, jobs = Ledger(store), JobStore(store)
        assert (await ledger.check()).problems == ()

        # Before the sweep: a hold is pending exactly when its job is still in flight.
        holds = {h.job_id: h for h in await ledger.holds(GUILD)}
        stored = await all_jobs(jobs)
        assert set(holds) == set(stored)  # accept stores both or neither
        for job_id, job in stored.items():
            assert (holds[job_id].state == "pending") == (job.state in IN_FLIGHT), job

        # The start-up sweep: accepted jobs never sent are refunded; one whose submit was
        # attempted may be at the provider, so it stays held until its deadline.
        await jobs.sweep(utcnow(), accept_grace=timedelta(0))
        holds = {h.job_id: h for h in await ledger.holds(GUILD)}
        for job_id, job in (await all_jobs(jobs)).items():
            was = stored[job_id]
            if was.state is JobState.ACCEPTED and was.submit_attempted_at is not None:
                assert job.state is JobState.ACCEPTED and holds[job_id].state == "pending", job
            elif was.state is JobState.ACCEPTED:
                assert job.state is JobState.FAILED and holds[job_id].state == "refunded", job
            else:
                assert job.state is was.state, job

        await jobs.sweep(utcnow() + timedelta(hours=1))  # past every deadline

        holds = {h.job_id: h for h in await ledger.holds(GUILD)}
        stored = await all_jobs(jobs)
        for job_id, job in stored.items():
            hold = holds[job_id]
            assert job.state not in IN_FLIGHT
            if job.result_url is not None:  # succeeded, perhaps delivered since
                assert (hold.state, hold.charged) == ("settled", job.charged_credits)
            else:  # failed, cancelled, or failed by the sweep
                assert (hold.state, hold.charged) == ("refunded", 0)

        # Every step the child saw acknowledged is durable.
        for job_id, steps in read_acks(ack_log).items():
            job = stored[job_id]
            done = {words[0] for words in steps}
            if "cancelled" in done:
                assert job.state is JobState.CANCELLED
            if "delivered" in done:
                assert job.state is JobState.DELIVERED
            if "submitting" in done:
                assert job.submit_attempted_at is not None
            if "submitted" in done:
                assert job.provider_task_id == f"task-{job_id}"
            if "succeeded" in done:
                charged = next(int(w[2]) for w in steps if w[0] == "succeeded")
                assert job.result_url is not None and job.charged_credits == charged
            if "failed" in done:
                assert job.error == "provider said no"

        # Credits add up: the grant, minus what settled holds charged.
        charged = sum(h.charged or 0 for h in holds.values())
        totals = [(await ledger.balance(GUILD, member, role_ids=())) for member in CRASH_MEMBERS]
        assert sum(b.total for b in totals) == GRANT * len(CRASH_MEMBERS) - charged
        assert all(b.held == 0 for b in totals)
        assert (await ledger.check()).problems == ()
    finally:
        await store.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_sigkill_at_random_moments_loses_nothing(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    db: Path | str = tmp_path / "crash.db"
    kills = KILLS
    if backend == "postgres":  # the server rolls back what the killed process left open
        db, kills = request.getfixturevalue("pg_url"), KILLS_ON_POSTGRES
    ack_log = tmp_path / "acks.log"
    store = await open_store(db)
    ledger = Ledger(store)
    for member in CRASH_MEMBERS:
        await ledger.grant(GUILD, member, GRANT, actor_id=1, reason="crash test", role_ids=())
    await store.close()

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    children = await ForkServer.start()
    try:
        for kill in range(kills):
            await children.run_and_kill(db, ack_log, seed + kill, rng)
            try:
                await verify_after_restart(db, ack_log)
            except AssertionError as error:
                raise AssertionError(f"after kill {kill + 1} (seed {seed})") from error
    finally:
        await children.close()
    steps = read_acks(ack_log)
    assert len(steps) > kills  # the children really worked between kills
    kinds = [{words[0] for words in job_steps} for job_steps in steps.values()]
    assert any("submitting" in k and "submitted" not in k for k in kinds)  # sent, never answered
