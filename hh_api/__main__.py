"""Run the hh_api command line: ``python -m hh_api --help``."""

from __future__ import annotations

import sys

from hh_api.cli import main

sys.exit(main())
