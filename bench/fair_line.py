"""What the fair line costs the event loop: a member asking (join and place in line), a
slot freeing (pick the next job) and the places shown on the first messages, in lines of
different lengths and shapes.

Run from the repository root: ``python bench/fair_line.py`` (``--repeat``). Each figure
is the median time of one operation over ``--repeat`` lines built the same way.
"""

from __future__ import annotations

import argparse
import time

from _common import median, table  # puts the repository on sys.path

from paddock.provider_line import FairLine
from paddock.runner import SHOWN_PLACES

SHAPES = [  # (jobs waiting, servers, members per server)
    (60, 1, 1),
    (60, 1, 10),
    (1000, 1, 50),
    (1000, 20, 10),
    (5000, 50, 20),
]


def build(jobs: int, servers: int, members: int) -> FairLine:
    line = FairLine()
    for n in range(jobs):
        line.join(f"j{n}", n % servers, (n // servers) % members)
    return line


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    repeat = parser.parse_args().repeat
    rows = []
    for jobs, servers, members in SHAPES:
        joins, picks, shown = [], [], []
        for _ in range(repeat):
            line = build(jobs, servers, members)
            line.serve(line.next() or "")
            joins.append(timed(lambda line=line: (line.join("new", 999, 1),
                                                  line.position("new"))))
            picks.append(timed(lambda line=line: line.serve(line.next() or "")))
            shown.append(timed(lambda line=line: line.order(SHOWN_PLACES)))
        rows.append([f"{jobs} jobs, {servers} server(s) x {members} member(s)",
                     f"{median(joins):.3f}", f"{median(picks):.3f}", f"{median(shown):.3f}"])
    print(table(["line", "ask + place (ms)", "slot frees (ms)",
                 f"first {SHOWN_PLACES} places (ms)"], rows))


if __name__ == "__main__":
    main()
