"""hh_api against the official ``wavespeed`` SDK: the same WaveSpeed jobs, the same emulator.

Run from the repository root: ``python bench/vs_sdk.py`` (needs ``pip install -r
bench/requirements.txt`` for the SDK). Options: ``--jobs`` (200), ``--render`` (mean
render seconds, 30), ``--spread`` (their standard deviation, 3), ``--warmup`` (jobs the
learning client finishes before the measured ones, 20).

The WaveSpeed emulator runs in this process; each client runs alone in a child process,
so its memory and threads are its own. Every job renders for its own time (normal
around ``--render``), the same sequence for every client. Clients:

- ``sdk``: ``wavespeed.Client.run`` (synchronous; it polls every second), one job per
  thread of a ``ThreadPoolExecutor`` as wide as the batch, as its users would run it.
- ``hh_api``: ``HappyHorse.submit`` + ``wait`` with the default polling (2 s, growing 1.5x
  to 15 s), all jobs as tasks of one event loop.
- ``hh_api learned``: the same after four rounds of ``--warmup`` jobs have taught the
  client how long a render takes (as a bot that has been running a while knows), so it
  polls closely only around the expected finish.

Delivery delay: from the moment the emulator's render finished to the moment the client
had the video's link. Requests per job count every submit and status request the
emulator received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import ROOT, machine_line, percentile, render_times, table

from tests.fakes.providers import ProviderEmulator

KEY = "bench-wavespeed-key"
MODEL = "alibaba/happyhorse-1.1/text-to-video"
CLIENTS = ("sdk", "hh_api", "hh_api learned")
WARMUP_ROUNDS = 4


# -- the child: one client, one batch ---------------------------------------------------------


class ThreadWatch:
    """The most threads this process had at once (read from /proc), and its peak RSS."""

    def __init__(self) -> None:
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ThreadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            status = Path("/proc/self/status").read_text()
            count = int(next(line for line in status.splitlines()
                             if line.startswith("Threads:")).split()[1])
            self.most = max(self.most, count - 1)  # not counting the watcher itself


def run_sdk(base_url: str, jobs: int) -> dict[str, float]:
    import wavespeed

    client = wavespeed.Client(api_key=KEY, base_url=base_url)
    done: dict[str, float] = {}

    def one(n: int) -> None:
        result = client.run(MODEL, {"prompt": f"a horse, take {n}", "duration": 5,
                                    "resolution": "720p"}, poll_interval=1.0)
        url = result["outputs"][0]
        done[url.rsplit("/", 1)[1].removesuffix(".mp4")] = time.monotonic()

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(one, n) for n in range(jobs)]:
            future.result()
    return done


def run_hh_api(base_url: str, jobs: int, warmup: int, measuring: Callable[[], None]
               ) -> dict[str, float]:
    from hh_api import HappyHorse, Mode, PriceTable, ProviderConfig, VideoRequest

    async def batch() -> dict[str, float]:
        config = {"wavespeed": ProviderConfig("wavespeed", api_key=KEY, base_url=base_url)}
        done: dict[str, float] = {}
        async with HappyHorse(config, prices=PriceTable()) as hh:

            async def one(n: int, record: bool) -> None:
                request = VideoRequest(mode=Mode.TEXT, prompt=f"a horse, take {n}",
                                       duration=5, resolution="720p")
                submission = await hh.submit("wavespeed", request)
                state = await hh.wait("wavespeed", submission.task_id)
                assert state.video_url
                if record:
                    done[submission.task_id] = time.monotonic()

            for _ in range(WARMUP_ROUNDS if warmup else 0):  # each round uses what the last taught
                await asyncio.gather(*(one(n, False) for n in range(warmup)))
            measuring()
            await asyncio.gather(*(one(n, True) for n in range(jobs)))
        return done

    return asyncio.run(batch())


def child(client: str, base_url: str, jobs: int, warmup: int) -> None:
    """Run one client; wall and CPU time count the measured batch only (not a warm-up)."""
    start: dict[str, float] = {}

    def measuring() -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        start.update(at=time.monotonic(), cpu=usage.ru_utime + usage.ru_stime)

    with ThreadWatch() as threads:
        if client == "sdk":
            measuring()
            done = run_sdk(base_url, jobs)
        else:
            learning = warmup if client == "hh_api learned" else 0
            done = run_hh_api(base_url, jobs, learning, measuring)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    json.dump({
        "done": done,
        "began": start["at"],
        "ended": time.monotonic(),
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime - start["cpu"],
        "threads": threads.most,
    }, sys.stdout)


# -- the parent: the emulator, the children, the table ------------------------------------------


async def measure(client: str, args: argparse.Namespace) -> list[object]:
    async with ProviderEmulator("wavespeed", api_key=KEY) as emulator:
        emulator.on_task_created = render_times(args.render, args.spread, seed=7)
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", client, "--base-url", emulator.base_url,
            "--jobs", str(args.jobs), "--warmup", str(args.warmup),
            cwd=ROOT, stdout=subprocess.PIPE,
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"the {client} client failed ({process.returncode})")
        report = json.loads(out)
        done: dict[str, float] = report["done"]
        delays = [
            finished - (emulator.tasks[task_id].created + emulator.tasks[task_id].render_seconds)
            for task_id, finished in done.items()
        ]
        measured = set(done)
        polls = sum(1 for r in emulator.polls() if r.path.split("/")[4] in measured)
        requests = len(done) + polls  # one submit each, and their status checks
        submits = len(emulator.submits())
        warmup = args.warmup * WARMUP_ROUNDS if client == "hh_api learned" else 0
        assert submits == len(done) + warmup
    return [
        client,
        report["ended"] - report["began"],
        report["peak_rss_mb"],
        report["threads"],
        report["cpu_s"],
        requests / len(done),
        percentile(delays, 0.5),
        percentile(delays, 0.99),
    ]


async def parent(args: argparse.Namespace) -> None:
    print(machine_line("wavespeed"))
    print(f"{args.jobs} WaveSpeed text-to-video jobs at once, renders {args.render:g} s "
          f"(sd {args.spread:g} s); one run of each client")
    rows = [await measure(client, args) for client in args.clients]
    print(table(
        ("client", "wall s", "peak MB", "threads", "CPU s", "requests/job",
         "delay p50 s", "delay p99 s"),
        rows,
    ))
    if rows[0][0] != "sdk":
        return
    sdk = rows[0]
    for row in rows[1:]:
        print(f"{row[0]} vs sdk: requests/job {float(row[5]) / float(sdk[5]):.2f}x, "
              f"peak memory {float(row[2]) / float(sdk[2]):.2f}x, "
              f"CPU {float(row[4]) / float(sdk[4]):.2f}x, "
              f"delay p50 {float(row[6]) / float(sdk[6]):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--render", type=float, default=30.0)
    parser.add_argument("--spread", type=float, default=3.0)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        child(args.client, args.base_url, args.jobs, args.warmup)
    else:
        os.environ.setdefault("PYTHONPATH", str(ROOT))
        asyncio.run(parent(args))


if __name__ == "__main__":
    main()
