"""The codebase stays ruff-clean and Discord-free where it must be."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Library code that must be usable without discord.py (STYLE.md, habit 1).
DISCORD_FREE = ["hh_api", "paddock"]


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_library_code_imports_no_discord() -> None:
    offenders = []
    for package in DISCORD_FREE:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [
                    f"{path.relative_to(ROOT)}: {name}"
                    for name in names
                    if name == "discord" or name.startswith("discord.")
                ]
    assert offenders == []


def test_a_bot_on_sqlite_never_loads_the_postgresql_driver() -> None:
    """psycopg is imported where a PostgreSQL store needs it, not by every start."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, bot; print(sorted(m for m in sys.modules"
         " if m.split('.')[0] in ('psycopg', 'psycopg_pool')))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert loaded.stdout.strip() == "[]"
