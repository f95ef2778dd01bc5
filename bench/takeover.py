"""How fast a second process takes over the jobs of one killed by SIGKILL.

Run from the repository root: ``python bench/takeover.py`` (``--jobs``, ``--runs``,
``--lease``). Two ``python bot.py`` processes share one SQLite file against the fake
Discord and a JoyPix emulator whose tasks render for an hour: process A resumes
``--jobs`` jobs at the provider and polls them; process B starts beside it (it takes
nothing: A's leases are alive). Then A is killed with SIGKILL. Figures, from the kill:

- first taken over: B's first "taken over" log line (the lease of A's jobs ended);
- first resumed poll: B's first status check of one of A's tasks;
- every job polled: each of A's tasks has had a status check from B.

Nothing is submitted again (checked: the emulator's submit count does not move).
The aim is the lease time plus a heartbeat (a third of it) plus the first poll.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
from pathlib import Path

from _common import bot_against, machine_line, median, provider_env, table, when
from startup import fill

from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import ProviderEmulator


async def one_run(jobs: int, lease: float, folder: Path) -> list[float]:
    async with FakeDiscord() as fake, ProviderEmulator("joypix", api_key="bench") as joypix:
        joypix.render_seconds = 3600
        database = folder / f"takeover-{time.monotonic_ns()}.db"
        await fill(database, jobs, fake, joypix)  # 25% wait in line, A sends them
        env = {**provider_env(joypix), "PADDOCK_LOG_LEVEL": "INFO",
               "PADDOCK_PROVIDER_CONCURRENCY": str(jobs), "PADDOCK_LEASE_SECONDS": str(lease)}
        async with bot_against(fake, database, env, timeout=120) as first:
            await first.wait_for_output("runner started; resumed", timeout=120)
            async with bot_against(fake, database, env, timeout=120) as second:
                await second.wait_for_output("runner started; resumed 0", timeout=120)
                # A has sent its waiting jobs by now: all of its tasks render for an hour.
                at_provider = {task_id for task_id, task in joypix.tasks.items()
                               if not task.finished}
                submits = len(joypix.submits())
                polls_before = len(joypix.polls())
                killed = time.perf_counter()
                await first.stop(signal.SIGKILL)

                def polled_since() -> set[str]:
                    return {r.path.rsplit("/", 1)[1] for r in joypix.polls()[polls_before:]}

                taken = await when(lambda: "taken over" in second.output, timeout=300)
                first_poll = await when(lambda: polled_since() & at_provider, timeout=300)
                every = await when(lambda: at_provider <= polled_since(), timeout=300)
                if len(joypix.submits()) != submits:
                    raise SystemExit("a job was submitted again")
    return [taken - killed, first_poll - killed, every - killed]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lease", type=float, default=30.0)
    args = parser.parse_args()
    print(machine_line())
    print(f"{args.jobs} jobs of a killed process, lease {args.lease:g} s; median of "
          f"{args.runs} runs; aim: under the lease time plus 5 s")
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            runs.append(await one_run(args.jobs, args.lease, Path(folder)))
    rows = [(name, median([run[i] for run in runs]), min(run[i] for run in runs),
             max(run[i] for run in runs))
            for i, name in enumerate(("first taken over", "first resumed poll",
                                      "every job polled"))]
    print(table(("from SIGKILL to", "median s", "min s", "max s"), rows))


if __name__ == "__main__":
    asyncio.run(main())
