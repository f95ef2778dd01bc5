"""Extend: time from the provider's finished continuation to the joined clip posted.

Run from the repository root: ``python bench/extend.py`` (``--rounds N``, default 3).

``python bot.py`` against the fake Discord and the JoyPix emulator; a member's first
video (a real 720p H.264 + AAC clip at 2 Mbit/s, so the joined clip fits the 10 MiB
upload limit as it is), then Extend pressed under it, with the continuation held at
the provider for three polls: the figure is from the bot's download of the continuation
(its poll has just found it done) to the joined clip's post in the channel (the
downloads of both clips, the join, the fit, the upload). The continuation is the same
size and codec (packets copied) or another size (re-encoded). Aim: under 3 s when
nothing is re-encoded.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from pathlib import Path

from _common import bot_against, machine_line, median, provider_env, table

from tests.clips import make_clip
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import ProviderEmulator

LIMIT = 10 * 1024 * 1024
BITRATE = 2_000_000
CASES = [  # (label, first clip s, continuation s, continuation size)
    ("5 s + 5 s, 720p", 5, 5, (1280, 720)),
    ("15 s + 15 s, 720p", 15, 15, (1280, 720)),
    ("5 s + 5 s, 720p + 540p", 5, 5, (960, 540)),
]


async def one_case(folder: Path, first_s: int, next_s: int, size: tuple[int, int],
                   rounds: int) -> tuple[list[float], str, float]:
    """(seconds from done to posted, per round; how the clips were joined; MB posted)."""
    first = make_clip(first_s, 1280, 720, bitrate=BITRATE)
    continuation = make_clip(next_s, *size, bitrate=BITRATE)
    async with FakeDiscord() as fake, ProviderEmulator("joypix") as joypix:
        fake.guild.upload_limit = LIMIT
        joypix.video_bytes = first
        env = {**provider_env(joypix), "PADDOCK_POLL_SECONDS": "0.05"}
        async with bot_against(fake, folder / f"extend-{first_s}-{size[0]}.db", env) as bot:
            owner = fake.owner
            await (await owner.slash("quota allowance", amount=10**6,
                                     period="daily")).reply(timeout=10)
            await (await owner.slash("video text", prompt="a horse",
                                     duration=first_s)).reply(timeout=10)
            post = await owner.wait_to_see(lambda m: m.pings(owner) and bool(m.attachments),
                                           timeout=120)
            joypix.video_bytes = continuation
            took, size_mb = [], 0.0
            for done in range(1, rounds + 1):
                modal = await (await owner.press(post, "Extend")).opened_modal()
                card = await (await owner.submit_modal(
                    modal, {"Duration of the continuation (seconds)": str(next_s)})
                              ).reply(timeout=30)
                # The bot's download of the continuation: its poll has just found it done.
                await joypix.wait_for_requests("file", 1 + done, timeout=120)
                started = time.monotonic()
                joined = await owner.wait_to_see(
                    lambda m, after=card.id: m.pings(owner) and bool(m.attachments)
                    and m.id > after, after=card, timeout=120)
                took.append(time.monotonic() - started)
                size_mb = sum(a.size for a in joined.attachments) / 1_048_576
            kinds = re.findall(r"joined two clips \((\w+)\)", bot.output)
    return took, ",".join(sorted(set(kinds))) or "?", size_mb


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(machine_line("av"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="paddock-bench-") as folder:
        for label, first_s, next_s, size in CASES:
            took, kind, size_mb = await one_case(Path(folder), first_s, next_s, size,
                                                 args.rounds)
            rows.append((label, kind, size_mb, median(took), max(took)))
    print(table(["clips", "join", "MB posted", "median s", "max s"], rows))


if __name__ == "__main__":
    asyncio.run(main())
