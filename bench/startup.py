"""How fast the bot comes back: ``python bot.py`` on a database holding 1,000 unfinished jobs.

Run from the repository root: ``python bench/startup.py`` (``--jobs``, ``--runs``).
The database is built first, through the job store, as a busy bot would leave it when
killed: 70% of the jobs rendering at the provider (JoyPix emulator; the tasks exist
there and render for an hour), 25% waiting in line, 5% finished but not yet posted.
Then ``python bot.py`` starts against the fake Discord. Figures, from the process
being started:

- ready: the gateway session is up, the commands are synced, and the runner has
  resumed every unfinished job (its "runner started; resumed N" line);
- polled: every resumed job at the provider has had its first status check (a task
  submitted less than 2 s before is first checked 2 s after its submission, as usual);
- posted: every finished-but-unposted video is in the channel.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from pathlib import Path

from _common import bot_against, machine_line, median, provider_env, table, when

from hh_api import HappyHorse, Mode, PriceTable, ProviderConfig, VideoRequest
from paddock.budget import Period
from paddock.services import Services
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import ProviderEmulator

READY = re.compile(r"runner started; resumed (\d+) unfinished job")


async def fill(database: Path, jobs: int, fake: FakeDiscord, joypix: ProviderEmulator) -> None:
    """Leave ``database`` as a killed bot would, with ``jobs`` unfinished jobs."""
    config = {"joypix": ProviderConfig("joypix", api_key=joypix.api_key,
                                       base_url=joypix.base_url)}
    channel = fake.channel("videos").id
    async with Services.open(database, config, prices=PriceTable()) as services:
        guild = fake.guild.id
        await services.ledger.set_allowance(guild, 10**6, Period.DAILY, actor_id=fake.owner.id,
                                            reason="bench")
        async with HappyHorse(config, prices=PriceTable()) as hh:
            for n in range(jobs):
                request = VideoRequest(mode=Mode.TEXT, prompt=f"a horse, take {n}",
                                       duration=5, resolution="720p")
                request = hh.validate("joypix", request)
                accepted = await services.jobs.accept(
                    guild_id=guild, user_id=1000 + n % 50, request=request.to_dict(),
                    estimated_credits=hh.price("joypix", request), channel_id=channel,
                    role_ids=(), provider="joypix",
                )
                job = accepted.job
                share = n % 20
                if share < 5:
                    continue  # waiting in line
                await services.jobs.mark_submitting(job.id)
                submission = await hh.submit("joypix", request, idempotency_key=job.id)
                await services.jobs.mark_submitted(job.id, provider_task_id=submission.task_id)
                await services.jobs.mark_running(job.id)
                if share == 19:
                    joypix.finish(submission.task_id)
                    await services.jobs.mark_succeeded(
                        job.id, result_url=joypix.video_url(submission.task_id),
                        charged=job.estimated_credits,
                    )


async def one_run(jobs: int, folder: Path) -> list[float]:
    async with FakeDiscord() as fake, ProviderEmulator("joypix", api_key="bench") as joypix:
        joypix.render_seconds = 3600
        database = folder / f"startup-{time.monotonic_ns()}.db"
        await fill(database, jobs, fake, joypix)
        at_provider = {task_id for task_id, task in joypix.tasks.items() if not task.finished}
        finished = len(joypix.tasks) - len(at_provider)
        polls_before = len(joypix.polls())
        channel = fake.channel("videos")
        env = {**provider_env(joypix), "PADDOCK_LOG_LEVEL": "INFO",
               "PADDOCK_PROVIDER_CONCURRENCY": str(jobs)}
        started = time.perf_counter()
        async with bot_against(fake, database, env, timeout=120) as bot:
            ready = await when(lambda: READY.search(bot.output))
            resumed = int(READY.search(bot.output).group(1))  # type: ignore[union-attr]
            if resumed != jobs:
                raise SystemExit(f"resumed {resumed} jobs, not {jobs}")

            def all_polled() -> bool:
                polled = {r.path.rsplit("/", 1)[1] for r in joypix.polls()[polls_before:]}
                return at_provider <= polled

            polled = await when(all_polled)
            posted = await when(lambda: len(channel.files) >= finished)
    return [ready - started, polled - started, posted - started]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    print(f"{args.jobs} unfinished jobs in the database; median of {args.runs} runs; "
          "aim: ready with every job resumed in under 3 s")
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            runs.append(await one_run(args.jobs, Path(folder)))
    rows = [(name, median([run[i] for run in runs]), min(run[i] for run in runs),
             max(run[i] for run in runs))
            for i, name in enumerate(("ready", "every resumed job polled",
                                      "every finished video posted"))]
    print(table(("from python bot.py to", "median s", "min s", "max s"), rows))


if __name__ == "__main__":
    asyncio.run(main())
