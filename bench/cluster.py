"""One bot in several processes on one PostgreSQL: throughput, first answers, and how soon
the others resume the jobs of a process killed by SIGKILL.

Run from the repository root: ``python bench/cluster.py`` (``--jobs`` 1000, ``--held``
100, ``--render`` 2 s, ``--lease`` 30 s as by default, ``--runs`` 1, ``--layouts``,
``--logs``). The bench starts a throwaway PostgreSQL server itself (tests/pg_cluster.py),
a new database a run; the fake Discord holds four servers, one on each shard of four, and
the processes split the shards between them: 2 processes (shards 0,1 and 2,3) and 4 (one
shard each), all ``python bot.py`` on one ``DATABASE_URL``, against one JoyPix emulator.
The reference row is one process with all four shards on a SQLite file.

1. Throughput: ``--jobs`` ``/video text`` from 200 members (50 in each server), in waves
   of 200 arriving at once (the next wave once the last is answered); each render takes
   about ``--render`` s. Figures: jobs delivered per second (from the first command to
   the last video in its channel) and each command's first answer (the time from its
   INTERACTION_CREATE being queued on the gateway to the bot's first response reaching
   the fake, as bench/ack.py measures it).
2. Takeover (two processes or more): ``--held`` more jobs, in every server, whose renders
   last until the bench ends them. Once every one has been polled, the process running
   shard 0 (and 1, with two processes) is killed with SIGKILL. Figures, from the kill:
   the first and the last of its jobs at the provider polled by another process (its
   lease ended, another claimed it). Then every render ends.

At the end every job's video must be in its channel once and every job submitted once:
the bench counts the posts by job id and the submits by prompt, and prints the check.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from _common import machine_line, median, percentile, provider_env, render_times, table, when
from shards import SHARDS, bots, servers

from tests.bot.support import decided, posts_by_job
from tests.fakes.discord import BotProcess, FakeDiscord, Member
from tests.fakes.providers import ProviderEmulator, Task
from tests.pg_cluster import PostgresCluster

MEMBERS = 200
WAVE = 200
LAYOUTS = {
    "1 process, SQLite": ("sqlite", ["0,1,2,3"]),
    "2 processes, PostgreSQL": ("postgres", ["0,1", "2,3"]),
    "4 processes, PostgreSQL": ("postgres", ["0", "1", "2", "3"]),
}


@dataclass
class Run:
    """One layout's figures from one run."""

    jobs_per_second: float = 0.0
    first_answers_ms: list[float] = field(default_factory=list)
    late: int = 0  # no first answer within Discord's 3 s (the member saw a failure)
    first_resumed_s: float | None = None
    every_resumed_s: float | None = None
    jobs: int = 0  # accepted (a job card shown)
    refused: Counter[str] = field(default_factory=Counter)  # ephemeral answers, by text
    missing: str = ""  # what the bench gave up waiting for
    posted_once: int = 0
    posted_twice: int = 0
    submitted_once: int = 0
    submitted_twice: int = 0


    def check_line(self) -> str:
        never = self.jobs - self.posted_once - self.posted_twice
        line = (f"{self.jobs:,} jobs: {self.posted_once:,} posted once, {self.posted_twice} "
                f"more than once, {never} never; {self.submitted_once:,} submitted once, "
                f"{self.submitted_twice} more than once")
        if self.refused:
            line += f"; refused: {dict(self.refused)}"
        return line + (f"; {self.missing}" if self.missing else "")


def prompt_for(n: int, member: Member) -> str:
    return f"a horse, take {n}, server {member.guild.id}."


async def ask(crowd: list[Member], first: int, count: int, run: Run) -> int:
    """``count`` /video text, in waves of ``WAVE`` arriving at once; notes first answers
    and refusals; returns how many were accepted."""
    fake = crowd[0].fake
    accepted = 0
    for start in range(first, first + count, WAVE):
        wave = [await crowd[n % len(crowd)].slash("video text",
                                                   prompt=prompt_for(n, crowd[n % len(crowd)]))
                for n in range(start, min(first + count, start + WAVE))]
        await fake.wait_for(lambda w=wave: all(i.acknowledged or i.failed for i in w),
                            timeout=120)
        for interaction in wave:
            if interaction.responded_at is None:  # Discord's 3 s passed: no job
                run.late += 1
                continue
            ms = (interaction.responded_at - interaction.sent_at) * 1000
            run.first_answers_ms.append(ms)
            run.late += ms > 3000
            card = await decided(interaction, timeout=120)
            if card.ephemeral:
                run.refused[card.text[:80]] += 1
            else:
                accepted += 1
    return accepted


def videos_posted(fake: FakeDiscord) -> int:
    """Videos in every server's #general."""
    return sum(len(fake.channel("general", guild=guild).files) for guild in fake.guilds.values())


@contextlib.asynccontextmanager
async def database(backend: str, cluster: PostgresCluster | None,
                   folder: Path) -> AsyncIterator[dict[str, str]]:
    """A new database for one run, as the processes' environment names it."""
    if backend == "sqlite":
        yield {"DATABASE_PATH": str(folder / f"cluster-{time.monotonic_ns()}.db")}
        return
    assert cluster is not None
    with cluster.database(f"cluster_{time.monotonic_ns()}") as url:
        yield {"DATABASE_URL": url}


async def one_run(backend: str, layout: list[str], args: argparse.Namespace,
                  cluster: PostgresCluster | None, folder: Path) -> Run:
    run = Run()
    async with (
        FakeDiscord() as fake,
        ProviderEmulator("joypix", api_key="bench") as joypix,
        database(backend, cluster, folder) as where,
    ):
        fake.max_concurrency = SHARDS
        guilds = servers(fake)
        crowd = [fake.member(f"member{n}", guild=guilds[n % SHARDS]) for n in range(MEMBERS)]
        joypix.on_task_created = render_times(args.render, args.render / 4, seed=16)
        env = {**provider_env(joypix), **where, "DEV_GUILD_ID": "",
               "PADDOCK_PROVIDER_CONCURRENCY": "1000", "PADDOCK_POLL_SECONDS": "0.5",
               "PADDOCK_JOB_TIMEOUT_MINUTES": "60", "PADDOCK_LEASE_SECONDS": str(args.lease)}
        async with bots(fake, env, layout) as processes:
            for guild in guilds:
                owner = guild.members[fake.owner_user.id]
                for command, options in (
                    ("quota allowance", {"amount": 10**6, "period": "daily"}),
                    ("quota limits", {"member_jobs": 100, "server_jobs": 1000,
                                      "member_slots": 100}),
                ):
                    reply = await (await owner.slash(command, **options)).reply(timeout=30)
                    assert reply.ephemeral, reply.text

            started = time.perf_counter()
            try:
                run.jobs = await ask(crowd, 0, args.jobs, run)
                delivered = await when(lambda: videos_posted(fake) >= run.jobs,
                                       timeout=args.timeout, every=0.05)
                run.jobs_per_second = run.jobs / (delivered - started)
                if len(processes) > 1 and args.held:
                    run.jobs += await takeover(fake, joypix, crowd, processes, layout, args,
                                               run)
                await when(lambda: videos_posted(fake) >= run.jobs, timeout=args.timeout,
                           every=0.05)
            except TimeoutError as why:
                run.missing = f"gave up: {why}"
            finally:
                if args.logs is not None:
                    args.logs.mkdir(parents=True, exist_ok=True)
                    for n, process in enumerate(processes):
                        name = f"{backend}-{len(layout)}-{time.monotonic_ns()}-{n}.log"
                        (args.logs / name).write_text(process.output)
        check(fake, joypix, run)
    return run


async def takeover(fake: FakeDiscord, joypix: ProviderEmulator, crowd: list[Member],
                   processes: list[BotProcess], layout: list[str], args: argparse.Namespace,
                   run: Run) -> int:
    """Jobs held at the provider; the first process killed; its jobs resumed by others.
    Returns how many were accepted."""

    def hold(task: Task) -> None:
        task.render_seconds = 3600

    joypix.on_task_created = hold
    known = set(joypix.tasks)
    asking = Run()  # the first answers measured are the first phase's
    held = await ask(crowd, args.jobs, args.held, asking)
    run.refused += asking.refused
    await when(lambda: len(joypix.tasks) - len(known) >= held
               and all(joypix.tasks[t].polls for t in set(joypix.tasks) - known), every=0.05)
    victim_servers = {str(guild.id) for guild in fake.guilds.values()
                      if (guild.id >> 22) % SHARDS in map(int, layout[0].split(","))}
    victims = {task_id for task_id in set(joypix.tasks) - known
               if any(f"server {g}." in json.dumps(joypix.tasks[task_id].received)
                      for g in victim_servers)}
    killed = time.perf_counter()
    await processes[0].stop(signal.SIGKILL)
    polls_before = len(joypix.polls())  # every later one is another process's

    def polled_since() -> set[str]:
        return {r.path.rsplit("/", 1)[1] for r in joypix.polls()[polls_before:]}

    run.first_resumed_s = await when(lambda: polled_since() & victims, every=0.01) - killed
    run.every_resumed_s = await when(lambda: victims <= polled_since(), every=0.01) - killed
    for task_id in set(joypix.tasks) - known:
        joypix.finish(task_id)
    return held


def check(fake: FakeDiscord, joypix: ProviderEmulator, run: Run) -> None:
    """Counts each job's video posts and each job's submits."""
    posts = posts_by_job(fake)
    submits = Counter(json.dumps(request.json, sort_keys=True) for request in joypix.submits())
    run.posted_once = sum(1 for n in posts.values() if n == 1)
    run.posted_twice = sum(1 for n in posts.values() if n > 1)
    run.submitted_once = sum(1 for n in submits.values() if n == 1)
    run.submitted_twice = sum(1 for n in submits.values() if n > 1)


def loads() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--held", type=int, default=100,
                        help="jobs at the provider when a process is killed")
    parser.add_argument("--render", type=float, default=2.0, help="mean render seconds")
    parser.add_argument("--lease", type=float, default=30.0, help="PADDOCK_LEASE_SECONDS")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait for every video before giving up (and saying so)")
    parser.add_argument("--logs", type=Path, help="write each bot process's log here")
    parser.add_argument("--layouts", nargs="+", choices=list(LAYOUTS), default=list(LAYOUTS))
    args = parser.parse_args()
    print(machine_line("psycopg"))
    cluster = PostgresCluster.start()
    try:
        print(f"PostgreSQL {cluster.version.split()[0]} (a throwaway local server, fsync off); "
              f"{args.jobs} jobs from {MEMBERS} members in {SHARDS} servers (one a shard), "
              f"renders ~{args.render:g} s; lease {args.lease:g} s; median of {args.runs} "
              f"run(s)")
        print(f"load average before: {loads()}")
        rows, checks = [], []
        with tempfile.TemporaryDirectory() as folder:
            for name in args.layouts:
                backend, layout = LAYOUTS[name]
                runs = [await one_run(backend, layout, args, cluster, Path(folder))
                        for _ in range(args.runs)]
                resumed = [r for r in runs if r.first_resumed_s is not None]
                rows.append((
                    name,
                    median([r.jobs_per_second for r in runs]),
                    median([percentile(r.first_answers_ms, 0.5) for r in runs]),
                    median([percentile(r.first_answers_ms, 0.99) for r in runs]),
                    sum(r.late for r in runs),
                    median([r.first_resumed_s for r in resumed]) if resumed else "-",
                    median([r.every_resumed_s for r in resumed]) if resumed else "-",
                ))
                checks += [f"{name}: {r.check_line()}" for r in runs]
                print(f"{name} done; load average {loads()}", flush=True)
    finally:
        cluster.stop()
    print(table(("layout", "jobs/s", "first answer p50 ms", "p99 ms", "over 3 s",
                 "SIGKILL to first resumed s", "to every job resumed s"), rows))
    print("\n".join(checks))
    print(f"load average after: {loads()}")


if __name__ == "__main__":
    asyncio.run(main())
