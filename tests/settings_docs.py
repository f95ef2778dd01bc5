"""Which settings the code reads, and which ones .env.example and README.md document.

The code's side is found two ways, so that neither a literal nor a built name escapes:
a scan of the source for literal reads (``env.get("X")``, ``os.environ["X"]``,
``os.getenv("X")``), and a run of the settings readers (``bot.Settings.from_env`` and the
``--check`` preflight) on an environment that records every name asked for, which catches
names built at run time such as ``f"{provider}_API_KEY"``.

Documentation may name a family with placeholders: ``<PROVIDER>`` (JOYPIX, WAVESPEED,
PIXELDOJO, HIAPI) and ``<MODE>`` (TEXT, IMAGE, REFERENCE).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from hh_api import PROVIDER_NAMES, Mode

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"
SOURCES = [ROOT / "bot.py", *(ROOT / "cogs").rglob("*.py"), *(ROOT / "hh_api").rglob("*.py"),
           *(ROOT / "paddock").rglob("*.py")]
PLACEHOLDERS = {
    "<PROVIDER>": "|".join(name.upper() for name in PROVIDER_NAMES),
    "<MODE>": "|".join(mode.name for mode in Mode),
}
NAME = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"
LITERAL_READS = [
    re.compile(rf"""\b(?:env|environ)\.get\(\s*["']({NAME})["']"""),
    re.compile(rf"""\b(?:env|environ)\[\s*["']({NAME})["']\s*\]"""),
    re.compile(rf"""\bgetenv\(\s*["']({NAME})["']"""),
]


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every name it was asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self.values[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.asked.add(name)
        return name in self.values

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.asked.add(name)
        return self.values.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def names_read_literally() -> set[str]:
    found = set()
    for path in SOURCES:
        text = path.read_text()
        for pattern in LITERAL_READS:
            found.update(pattern.findall(text))
    return found


def names_asked_by_the_readers() -> set[str]:
    from bot import Settings
    from paddock.preflight import check_settings

    env = RecordingEnv({"DISCORD_TOKEN": "a.b.c"})
    Settings.from_env(env)
    check_settings(env)
    return env.asked


def names_the_code_reads() -> set[str]:
    return names_read_literally() | names_asked_by_the_readers()


def documented_names(text: str) -> set[str]:
    """Names set in an env file, commented out or not: ``NAME=`` or ``# NAME=``."""
    return set(re.findall(rf"^#?\s*({NAME})=", text, flags=re.MULTILINE))


def family_patterns(text: str) -> list[re.Pattern[str]]:
    """The families named with placeholders anywhere in ``text``."""
    families = set(re.findall(r"[A-Z0-9_]*<[A-Z]+>[A-Z0-9_<>]*", text))
    patterns = []
    for family in families:
        regex = re.escape(family)
        for placeholder, choices in PLACEHOLDERS.items():
            regex = regex.replace(re.escape(placeholder), f"(?:{choices})")
        patterns.append(re.compile(regex))
    return patterns


def covers(text: str, name: str) -> bool:
    """Whether ``text`` names the setting ``name``, literally or in a family."""
    if re.search(rf"(?<![A-Z0-9_]){name}(?![A-Z0-9_])", text):
        return True
    return any(pattern.fullmatch(name) for pattern in family_patterns(text))


def readme_settings_rows() -> list[str]:
    """The first cells of the rows of README's settings table (section "## Settings")."""
    text = README.read_text()
    match = re.search(r"^## Settings\n(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Settings' section"
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")]
    return [row.split("|")[1] for row in rows[2:]]  # past the header and its rule
