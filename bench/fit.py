"""Fitting videos to Discord's 10 MiB upload limit: re-encode time and size, and how fast
members are answered while videos are re-encoded.

Run from the repository root: ``python bench/fit.py`` (``--quick`` for 5 s clips only,
``--skip-latency``, ``--compare`` to time the same two passes with imageio-ffmpeg's
ffmpeg binary, which ``bench/requirements.txt`` installs).

1. Re-encode: 5, 10 and 15 s clips at 720p and 1080p (24 fps, a moving test pattern with
   grain and a tone, at the bitrate HappyHorse's outputs have: 24 Mbit/s at 720p, 32 at
   1080p), each fitted to 10 MiB as the bot does it: ``python -m
   paddock.delivery.encode`` in its own process at a lower priority. Aim: under the
   limit at the first try, in under 2x the clip's duration.
2. Answers while re-encoding: ``python bot.py`` against the fake Discord, three members'
   10 s 1080p videos to re-encode at once, and another member running ``/credits
   balance`` every 0.2 s until all three are posted; the figure is each command's time
   from the gateway to the bot's answer. Aim: every answer within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, bot_against, machine_line, median, percentile, provider_env, table

from tests.clips import make_clip
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import ProviderEmulator

LIMIT = 10 * 1024 * 1024
MB = 1_048_576
SOURCES = {720: (1280, 720, 24_000_000), 1080: (1920, 1080, 32_000_000)}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fit_once(source: Path, output: Path) -> tuple[dict, float, float]:
    """The bot's encoder process on `source`: (its FitResult, wall s, CPU s)."""
    cpu, started = children_cpu(), time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "paddock.delivery.encode", str(source), str(LIMIT), str(output)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout), time.monotonic() - started, children_cpu() - cpu


def ffmpeg_two_pass(source: Path, output: Path, result: dict) -> tuple[float, float, int]:
    """The same two passes (bitrate, size, preset, audio copy) with imageio-ffmpeg's
    binary: (wall s, CPU s, bytes)."""
    import imageio_ffmpeg

    plan = result["plan"]
    rate = plan["video_bitrate"]
    common = ["-y", "-loglevel", "error", "-i", str(source), "-c:v", "libx264", "-preset",
              "veryfast", "-b:v", str(rate), "-maxrate", str(int(rate * 1.5)), "-bufsize",
              str(rate * 2), "-vf", f"scale={plan['width']}:{plan['height']}",
              "-passlogfile", str(output.with_suffix(""))]
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    cpu, started = children_cpu(), time.monotonic()
    subprocess.run([ffmpeg, *common, "-pass", "1", "-an", "-f", "null", os.devnull], check=True)
    subprocess.run([ffmpeg, *common, "-pass", "2", "-c:a", "copy", "-movflags", "+faststart",
                    str(output)], check=True)
    return time.monotonic() - started, children_cpu() - cpu, output.stat().st_size


def reencode_table(folder: Path, durations: list[int], compare: bool) -> None:
    rows, compared = [], []
    for lines, (width, height, bitrate) in SOURCES.items():
        for seconds in durations:
            source = folder / f"{lines}p-{seconds}s.mp4"
            source.write_bytes(make_clip(seconds, width, height, bitrate=bitrate))
            output = folder / f"{lines}p-{seconds}s-fitted.mp4"
            result, wall, cpu = fit_once(source, output)
            attempts = result["attempts"]
            made = attempts[-1]["size"] if attempts else 0
            plan = result["plan"] or {}
            rows.append((
                f"{lines}p {seconds} s", source.stat().st_size / MB, made / MB,
                f"{plan.get('width')}x{plan.get('height')}",
                "yes" if len(attempts) == 1 and made <= LIMIT else "NO",
                wall, wall / seconds, cpu,
            ))
            if compare:
                ff_wall, ff_cpu, ff_size = ffmpeg_two_pass(source, folder / "ffmpeg.mp4", result)
                compared.append((f"{lines}p {seconds} s", wall, cpu, made / MB,
                                 ff_wall, ff_cpu, ff_size / MB))
            source.unlink()
            output.unlink(missing_ok=True)
    print(f"\nre-encode to fit {LIMIT / MB:.0f} MiB (two-pass x264 veryfast + AAC copied, "
          f"+faststart); load average now {os.getloadavg()[0]:.1f}")
    print(table(("clip", "source MB", "result MB", "size", "1st try", "encode s",
                 "x duration", "CPU s"), rows))
    if compared:
        print("\nPyAV (the bot's encoder process) against imageio-ffmpeg's ffmpeg, same passes:")
        print(table(("clip", "PyAV s", "PyAV CPU s", "PyAV MB", "ffmpeg s", "ffmpeg CPU s",
                     "ffmpeg MB"), compared))


def encoder_processes(bot_pid: int) -> int:
    """How many of the bot's encoder processes run now."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == bot_pid and b"paddock.delivery.encode" in command:
            count += 1
    return count


async def answers_while_encoding(folder: Path, video: bytes) -> None:
    async with FakeDiscord() as fake, ProviderEmulator("joypix", api_key="bench") as joypix:
        fake.guild.upload_limit = LIMIT
        joypix.video_bytes = video
        joypix.render_seconds = 0.5
        async with bot_against(fake, folder / "fit.db", provider_env(joypix)) as bot:
            owner = fake.owner
            reply = await (await owner.slash("quota allowance", amount=10**6,
                                             period="daily")).reply(timeout=10)
            assert reply.ephemeral, reply.text
            idle = [await timed_answer(fake) for _ in range(20)]
            makers = [fake.member(f"maker{n}") for n in range(3)]
            for member in makers:
                await (await member.slash("video text", prompt="a horse")).reply(timeout=10)
            channel = fake.channel("general")

            def posted() -> int:
                return sum(1 for m in channel.visible if m.attachments)

            await fake.wait_for(lambda: encoder_processes(bot.process.pid) > 0, timeout=60)
            started = time.monotonic()
            busy, seen_encoding = [], 0
            while posted() < 3:
                running = encoder_processes(bot.process.pid)
                ms = await timed_answer(fake)
                if running:
                    busy.append(ms)
                    seen_encoding = max(seen_encoding, running)
                await asyncio.sleep(0.2)
            took = time.monotonic() - started
            sizes = [a.size for m in channel.visible for a in m.attachments
                     if a.filename.endswith(".mp4")]
    print(f"\n/credits balance answers (gateway to answer), bot.py with 3 x 10 s 1080p "
          f"({len(video) / MB:.0f} MB) re-encoded to {LIMIT / MB:.0f} MiB; encoder "
          f"processes at once: {seen_encoding}; all three posted {took:.0f} s after the "
          f"first encode started; posted sizes MB: "
          + ", ".join(f"{s / MB:.2f}" for s in sorted(sizes)))
    print(table(("while", "answers", "p50 ms", "p99 ms", "max ms"), [
        ("idle", len(idle), median(idle), percentile(idle, 0.99), max(idle)),
        ("re-encoding", len(busy), median(busy), percentile(busy, 0.99), max(busy)),
    ]))


async def timed_answer(fake: FakeDiscord) -> float:
    interaction = await fake.member("asker").slash("credits balance")
    await interaction.reply(timeout=10)
    assert interaction.responded_at is not None
    return (interaction.responded_at - interaction.sent_at) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s clips only")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--compare", action="store_true",
                        help="also time imageio-ffmpeg's ffmpeg on the same passes")
    args = parser.parse_args()
    print(machine_line("av"))
    durations = [5] if args.quick else [5, 10, 15]
    with tempfile.TemporaryDirectory(prefix="paddock-bench-fit-") as scratch:
        folder = Path(scratch)
        reencode_table(folder, durations, args.compare)
        if not args.skip_latency:
            width, height, bitrate = SOURCES[1080]
            asyncio.run(answers_while_encoding(folder, make_clip(10, width, height,
                                                                 bitrate=bitrate)))
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
