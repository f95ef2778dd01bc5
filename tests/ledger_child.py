"""A child process for the ledger's race and crash tests: ``python -m tests.ledger_child``.

``race DB GO_FILE PREFIX COUNT AMOUNT MAX_BATCH`` (DB: a file, or a PostgreSQL URL)
    Print ``ready`` once the store is open, wait for GO_FILE to exist, fire COUNT reserves
    of AMOUNT credits at once for one member, and print a JSON line with how many were
    held and how many refused. MAX_BATCH 1 makes every reserve its own transaction, so the
    two processes fight for SQLite's write lock on every single one.

``crash DB ACK_LOG SEED`` (DB: a file, or a PostgreSQL URL)
    Run generation jobs through the job store forever (accept, record the submit attempt,
    submit, run, succeed or fail, deliver, sometimes cancel or abandon, also between the
    submit attempt and the provider's answer), appending a line to ACK_LOG after each
    operation returns, until the parent kills it. Prints ``ready`` once the store is open.

``forks``
    A fork server for the crash test: for each line ``crash DB ACK_LOG SEED`` on stdin,
    fork a child that runs ``crash`` as above (it prints ``ready``), print ``pid N``, wait
    for the child to end and print ``ended S``: minus the signal that ended it, or its exit
    status. Everything is imported once, before any fork, and no database is opened before
    one, so each of the test's 25 processes starts in milliseconds rather than the 0.6 s of
    CPU a new Python takes to import the store, the ledger and their libraries.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import traceback
from pathlib import Path

from paddock.errors import InsufficientCredits
from paddock.jobs import JobStore
from paddock.ledger import Ledger
from paddock.store import Store, is_postgres_url, open_store
from paddock.store.postgres import PostgresStore

GUILD = 1001
RACER = 11
CRASH_MEMBERS = (21, 22, 23)
CRASH_WORKERS = 6


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.002)


async def race(
    db: str, go_file: Path, prefix: str, count: int, amount: int, max_batch: int
) -> None:
    if is_postgres_url(db):
        store: Store | PostgresStore = await PostgresStore.open(db)
    else:
        store = await Store.open(Path(db), max_batch=max_batch)
    ledger = Ledger(store)
    print("ready", flush=True)
    await asyncio.to_thread(_wait_for, go_file)  # start together with the other process
    rng = random.Random(prefix)

    async def one(i: int) -> object:
        await asyncio.sleep(rng.uniform(0, 0.05))  # spread out, so the processes interleave
        return await ledger.reserve(f"{prefix}-{i}", GUILD, RACER, amount, role_ids=())

    results = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    await store.close()
    held = sum(1 for r in results if not isinstance(r, BaseException))
    refused = sum(1 for r in results if isinstance(r, InsufficientCredits))
    print(json.dumps({"held": held, "refused": refused, "other": count - held - refused}))


async def crash(db: str, ack_log: Path, seed: int) -> None:
    store = await open_store(db)
    jobs = JobStore(store)
    log = ack_log.open("a", buffering=1)  # line-buffered: one write() per acknowledged step

    def ack(*words: object) -> None:
        log.write(" ".join(str(w) for w in words) + "\n")

    async def worker(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        step = 0
        while True:
            step += 1
            estimate = rng.randint(1, 20)
            try:
                accepted = await jobs.accept(
                    guild_id=GUILD,
                    user_id=rng.choice(CRASH_MEMBERS),
                    channel_id=5,
                    request={"prompt": f"horse {seed}-{n}-{step}", "seconds": 5},
                    estimated_credits=estimate,
                    role_ids=(),
                    idempotency_key=f"{seed}-{n}-{step}",
                )
            except InsufficientCredits:
                continue
            job = accepted.job.id
            ack("accepted", job, estimate)
            roll = rng.random()
            if roll < 0.1:
                await jobs.cancel(job)
                ack("cancelled", job)
                continue
            if roll < 0.2:
                continue  # the bot "forgot" it: the sweep must fail and refund it
            await jobs.mark_submitting(job)
            ack("submitting", job)
            if roll < 0.3:
                continue  # died with the request sent: may be at the provider until its deadline
            await asyncio.sleep(0)  # the provider's answer takes a moment; a kill may land here
            await jobs.mark_submitted(job, provider_task_id=f"task-{job}", provider="fake")
            ack("submitted", job)
            if rng.random() < 0.1:
                continue  # the provider never answers: the deadline sweep must catch it
            await jobs.mark_running(job)
            ack("running", job)
            if rng.random() < 0.75:
                done = await jobs.mark_succeeded(
                    job, result_url=f"https://cdn.example/{job}.mp4", charged=rng.randint(0, 23)
                )
                ack("succeeded", job, done.charged_credits)
            else:
                await jobs.mark_failed(job, error="provider said no")
                ack("failed", job)
            if rng.random() < 0.5:
                await jobs.mark_delivered(job)
                ack("delivered", job)

    _say("ready")
    await asyncio.gather(*(worker(n) for n in range(CRASH_WORKERS)))


def forks() -> None:
    for line in sys.stdin:
        mode, db, ack_log, seed = line.split()
        assert mode == "crash", line
        sys.stdout.flush()  # nothing buffered may be written twice, by the child too
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                asyncio.run(crash(db, Path(ack_log), int(seed)))
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)  # a crash that returns is a failure: only a kill may end it
        _say(f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        _say(f"ended {os.waitstatus_to_exitcode(status)}")


def _say(line: str) -> None:
    """One line to stdout in one write: a forked child and its server share the pipe, and
    ``print`` writes a line and its end apart when Python runs unbuffered."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), f"{line}\n".encode())


def main(argv: list[str]) -> None:
    if argv == ["forks"]:
        forks()
        return
    mode, db, *rest = argv
    if mode == "race":
        go_file, prefix, count, amount, max_batch = rest
        asyncio.run(race(db, Path(go_file), prefix, int(count), int(amount), int(max_batch)))
    elif mode == "crash":
        ack_log, seed = rest
        asyncio.run(crash(db, Path(ack_log), int(seed)))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
