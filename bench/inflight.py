"""A thousand jobs in flight: memory, CPU while waiting, requests, and delivery delay.

Run from the repository root: ``python bench/inflight.py`` (``--jobs`` 1000, ``--render``
mean render seconds 120, ``--spread`` their standard deviation 10, ``--modes``).

``--profile out.txt`` records where the bot spends its CPU while it only waits (from every
card saying "Rendering" to the first render ending; py-spy, one file a mode).
``python bot.py`` runs in its own process against the fake Discord and a provider
emulator, which run here. 100 members ask for ``--jobs`` videos with ``/video text``
(in bursts of 100), every one of which then renders at the provider for its own time.
Modes:

- ``polling``: JoyPix, which only answers status checks; the bot has no history, so it
  polls at its default growing interval (2 s up to 15 s).
- ``learned``: the same, after the bot has finished a few jobs of this kind and learned
  how long they take (the renders of the measured jobs have the same distribution).
- ``callback``: HiAPI with ``PADDOCK_PUBLIC_URL`` set, so HiAPI calls the bot's side door
  when a render ends and the bot fetches the result at once.

Figures for the bot's process while the jobs render: resident memory (peak), CPU time
per minute of waiting (as a share of one core, and per job) from the moment every job is
at the provider to the first render ending; the same per job from the moment every job's
card says "Rendering" (its submit, first check, state change and card edit done: only
the waiting is left; "-" when the first render ends too soon after, under 10 s, so
give longer ``--render`` times for more jobs), and in that window the status checks per
job per minute and the bot's CPU per check (everything it did, over the checks made);
provider requests per job (submit and status checks), and the delay from a render ending
at the provider to its video being in the channel (p50, p99). Also the first answers to
the bursts of ``/video text`` (from the command sent to its first response, p99 and max
over every burst): they must stay within Discord's 3 s however many jobs are already in flight.

The delivery delay is then split where it goes (p50, p99): from the render's end to the
status answer that told the bot (how late it learned: the poll interval's share; with
callbacks, when the callback went out, so the check it prompts falls in the next), from
there to the bot asking the provider for the video (the job's store writes, a delivery
slot), and from there to the post being in the channel (download, fit, upload); with how
long the renders took to end, all of them, and the last post after the first ended;
and the CPU the bot and this process (the fake Discord and the provider emulator) used
meanwhile, as a share of one core (either near 100%: that process is the bottleneck).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from _common import (
    bot_against,
    machine_line,
    percentile,
    process_cpu,
    process_rss,
    render_times,
    table,
)
from ack import start_profiler, stop_profiler

from tests.bot.side_door_support import free_port
from tests.fakes.discord import FakeDiscord, Interaction
from tests.fakes.providers import ProviderEmulator

MODES = ("polling", "learned", "callback")
SECRET = "bench-webhook-secret"


async def ask(fake: FakeDiscord, jobs: int, tag: str) -> list[Interaction]:
    """``jobs`` /video text commands from 100 members, in bursts of 100."""
    crowd = [fake.member(f"member{n}") for n in range(100)]
    asked: list[Interaction] = []
    for start in range(0, jobs, 100):
        burst = [
            await crowd[n % 100].slash("video text", prompt=f"a horse, {tag} {n}.")
            for n in range(start, min(jobs, start + 100))
        ]
        await fake.wait_for(lambda b=burst: all(i.acknowledged for i in b), timeout=60)
        asked += burst
    return asked


def rendering(asked: Interaction) -> bool:
    """Whether a job's card says it is rendering: its submit, its first status check, its
    state change and the card's edit are behind it, and what is left is waiting."""
    card = asked.original
    return card is not None and any(
        str(f.get("value", "")).startswith("Rendering on")
        for e in card.embed_payloads for f in e.get("fields") or ())


async def one_mode(
    mode: str, args: argparse.Namespace, folder: Path
) -> tuple[list[object], list[object]]:
    """The main table's row for ``mode``, and where its delivery delay went."""
    provider = "hiapi" if mode == "callback" else "joypix"
    callbacks = {"callback_secret": SECRET} if mode == "callback" else {}
    async with (
        FakeDiscord() as fake,
        ProviderEmulator(provider, api_key="bench", **callbacks) as emulator,
    ):
        emulator.on_task_created = render_times(args.render, args.spread, seed=11)
        port = free_port()
        env = {
            f"{provider.upper()}_API_KEY": emulator.api_key,
            f"{provider.upper()}_BASE_URL": emulator.base_url,
            "HH_PROVIDER": provider,
            # every job at the provider at once, up to the setting's most (10,000):
            # beyond it the rest wait in the bot's line, where nothing is polled
            "PADDOCK_PROVIDER_CONCURRENCY": str(min(args.jobs + 100, 10_000)),
            "PADDOCK_JOB_TIMEOUT_MINUTES": "60",
        }
        if mode == "callback":  # the emulator stands in for the HTTPS proxy in front
            emulator.callback_proxy = f"http://127.0.0.1:{port}"
            env |= {"PADDOCK_HTTP_PORT": str(port),
                    "PADDOCK_PUBLIC_URL": "https://paddock.bench.example",
                    "HIAPI_WEBHOOK_SECRET": SECRET}
        async with bot_against(fake, folder / f"inflight-{mode}.db", env,
                               script=str(args.bot.resolve())) as bot:
            owner = fake.owner
            await (await owner.slash("quota allowance", amount=10**6, period="daily")).reply()
            # every job at the provider at once: ten a member, past the fair line's 2
            await (await owner.slash("quota limits", member_slots=100)).reply()
            channel = fake.default_channel
            if mode == "learned":
                warm = await ask(fake, 20, "warm-up")
                await fake.wait_for(lambda: len(channel.files) >= len(warm),
                                    timeout=args.render * 3)
            before = len(emulator.requests)
            known = set(emulator.tasks)
            asked = await ask(fake, args.jobs, "take")
            await fake.wait_for(lambda: len(emulator.tasks) - len(known) >= len(asked),
                                timeout=120)
            measured = {tid: t for tid, t in emulator.tasks.items() if tid not in known}
            firsts = [i.responded_at - i.sent_at for i in asked if i.responded_at is not None]
            first_end = min(t.created + t.render_seconds for t in measured.values())
            # the waiting: from every job submitted to the first render ending
            spy = None
            cpu_start, wall_start = process_cpu(bot.process.pid), time.monotonic()
            peak_rss = process_rss(bot.process.pid)
            # (CPU, time, requests so far) once all are rendering
            steady: tuple[float, float, int] | None = None
            while time.monotonic() < first_end - 1:
                await asyncio.sleep(0.5)
                peak_rss = max(peak_rss, process_rss(bot.process.pid))
                if steady is None and all(rendering(i) for i in asked):
                    if args.profile is not None:  # the waiting only
                        spy = await start_profiler(bot.process.pid, args.profile.with_suffix(
                            f".{mode}{args.profile.suffix}"), rate=100)
                    steady = (process_cpu(bot.process.pid), time.monotonic(),
                              len(emulator.requests))
            cpu_end, wall_end = process_cpu(bot.process.pid), time.monotonic()
            requests_end = len(emulator.requests)
            cpu_waiting, waited = cpu_end - cpu_start, wall_end - wall_start
            if steady is not None and wall_end - steady[1] >= 10:
                steady_ms = 60_000 * (cpu_end - steady[0]) / (wall_end - steady[1]) / len(asked)
                steady_note = f"{steady_ms:.2f} ({wall_end - steady[1]:.0f} s)"
                checks = sum(r.kind == "status"
                             for r in emulator.requests[steady[2]:requests_end])
                per_minute = 60 * checks / (wall_end - steady[1]) / len(asked)
                check_note = (f"{per_minute:.2f} / "
                              f"{1000 * (cpu_end - steady[0]) / max(checks, 1):.2f} ms")
            else:  # the first renders ended before the last jobs' cards said so
                steady_note = check_note = "-"
            if spy is not None:
                await stop_profiler(spy)
            files = len(channel.files)
            # the delivering: both processes' CPU from the first render ending to the last post
            bot_cpu, own_cpu = process_cpu(bot.process.pid), process_cpu(os.getpid())
            delivering = time.monotonic()
            await fake.wait_for(lambda: len(channel.files) >= files + len(asked),
                                timeout=args.render * 3)
            delivering = time.monotonic() - delivering
            bot_cpu = process_cpu(bot.process.pid) - bot_cpu
            own_cpu = process_cpu(os.getpid()) - own_cpu
            peak_rss = max(peak_rss, process_rss(bot.process.pid))
        requests = [r for r in emulator.requests[before:] if r.kind in ("submit", "status")]
        posted = {
            m.embed.description: m.received_at for m in channel.visible if m.attachments
        }
    fetched: dict[str, float] = {}  # task id -> when the bot asked for its video
    for r in emulator.requests[before:]:
        if r.kind == "file":
            fetched.setdefault(r.path.removeprefix("/files/").removesuffix(".mp4"), r.at)
    delays, learned, to_fetch, to_post, ends, shows = [], [], [], [], [], []
    for task in measured.values():
        prompt = task.received.get("prompt") or task.received.get("input", {}).get("prompt")
        shown = next(at for text, at in posted.items() if text and prompt in text)  # "take 1."
        end = task.created + task.render_seconds
        delays.append(shown - end)
        ends.append(end)
        shows.append(shown)
        if task.ended_at is not None and task.id in fetched:
            learned.append(task.ended_at - end)
            to_fetch.append(fetched[task.id] - task.ended_at)
            to_post.append(shown - fetched[task.id])
    row = [
        mode, len(measured), peak_rss, 60 * cpu_waiting / waited, 100 * cpu_waiting / waited,
        60_000 * cpu_waiting / waited / len(measured), steady_note, check_note,
        len(requests) / len(measured), percentile(delays, 0.5), percentile(delays, 0.99),
        percentile(firsts, 0.99), max(firsts),
    ]
    stages = [mode, len(learned), *(f"{percentile(d, 0.5):.2f} / {percentile(d, 0.99):.2f}"
                                     for d in (learned, to_fetch, to_post)),
              f"{max(ends) - min(ends):.0f} s / {max(shows) - min(ends):.0f} s",
              f"{100 * bot_cpu / delivering:.0f}% / {100 * own_cpu / delivering:.0f}%"]
    return row, stages


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--render", type=float, default=120.0)
    parser.add_argument("--spread", type=float, default=10.0)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--bot", type=Path, default=Path("bot.py"),
                        help="the bot to measure (another checkout's bot.py)")
    parser.add_argument("--profile", type=Path,
                        help="write a py-spy profile of the waiting here (one file a mode)")
    args = parser.parse_args()
    print(machine_line())
    print(f"{args.jobs} jobs in flight, renders {args.render:g} s (sd {args.spread:g} s); "
          "aims: < 150 MB, <= 2 ms CPU per job per minute, delay < half the poll interval + upload "
          "(< 1 s with callbacks)")
    rows, stages = [], []
    with tempfile.TemporaryDirectory() as folder:
        for mode in args.modes:
            row, stage = await one_mode(mode, args, Path(folder))
            rows.append(row)
            stages.append(stage)
    print(table(("mode", "jobs", "peak RSS MB", "CPU s/min", "% of a core",
                 "CPU ms/job/min", "... all rendering (for)", "checks/job/min, CPU/check",
                 "requests/job", "delay p50 s",
                 "delay p99 s", "first answer p99 s", "max s"), rows))
    print("Where the delay goes, p50 / p99 s: the provider answered a status check that the "
          "render had ended (learned), then the bot asked for the video (fetch started), then "
          "it was in the channel (posted); renders ended over, the last posted after the first "
          "render ended; the bot's and this process's (the fakes') CPU meanwhile")
    print(table(("mode", "jobs", "learned", "fetch started", "posted",
                 "renders ended over / last posted",
                 "CPU of a core: bot / fakes"), stages))


if __name__ == "__main__":
    asyncio.run(main())
