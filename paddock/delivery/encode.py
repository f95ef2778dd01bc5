"""The encoder process: ``python -m paddock.delivery.encode SOURCE LIMIT OUTPUT``.

Runs `fit_to_limit` at a lower CPU priority and prints its `FitResult` as JSON on
stdout. Exit status 3: the source is not a video (the reason on stderr's last line).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from paddock.delivery.fit import fit_to_limit
from paddock.delivery.probe import NotAVideo
from paddock.delivery.workers import ENCODER_NICENESS, NOT_A_VIDEO


def main(argv: list[str]) -> int:
    source, limit, output = Path(argv[0]), int(argv[1]), Path(argv[2])
    os.nice(ENCODER_NICENESS)
    try:
        result = fit_to_limit(source, limit, output)
    except NotAVideo as error:
        print(error, file=sys.stderr)
        return NOT_A_VIDEO
    print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
