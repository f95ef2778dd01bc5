"""``python bot.py --check``: the configuration, item by item, without connecting anywhere.

:func:`preflight` reads the settings (the environment, after ``.env``), opens the database
as a start would (creating it and applying pending migrations), proves it is writable with
a write that is rolled back, and can import every module the bot runs. It talks to neither
Discord nor a provider. Each item gives one :class:`Finding`, printed as one line; a
malformed setting is a problem of its own, so one run lists everything there is to fix.

No finding ever carries a secret: the token, the provider keys and the webhook secret are
reported as set or not set, never shown.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import math
import pkgutil
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlite_utils import Database

from hh_api import PROVIDER_NAMES, ConfigurationError, PriceTable, load_providers
from hh_api.pricing import RESOLUTIONS
from paddock.errors import StoreBusy, StoreUnavailable
from paddock.migrations import MIGRATIONS
from paddock.refused_keys import refused_in
from paddock.store import DEFAULT_PATH, Store

DEMO = "demo"
AUTO = "auto"  # paddock.routing.AUTO
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Verdict(enum.Enum):
    OK = "ok"
    OFF = "off"  # not set up, and that is allowed
    PROBLEM = "FAIL"


@dataclass(frozen=True)
class Finding:
    """What one check found; ``detail`` is safe to print (it never holds a secret)."""

    item: str
    detail: str
    verdict: Verdict = Verdict.OK

    @property
    def problem(self) -> bool:
        return self.verdict is Verdict.PROBLEM

    def line(self) -> str:
        return f"{self.verdict.value:<4}  {self.item}: {self.detail}"


def summary(findings: Iterable[Finding]) -> str:
    """The closing line of a check."""
    problems = sum(finding.problem for finding in findings)
    if problems == 0:
        return "paddock --check: ready to start"
    noun = "problem" if problems == 1 else "problems"
    return f"paddock --check: {problems} {noun}; fix the FAIL lines above"


async def preflight(
    env: Mapping[str, str],
    *,
    parse: Callable[[Mapping[str, str]], object] | None = None,
    packages: Iterable[str] = (),
) -> list[Finding]:
    """Every finding about this configuration, in the order a person would fix them.

    ``parse`` is the bot's own reading of the settings (``Settings.from_env``); when every
    item here passes but it refuses (raises ``ValueError``), its reason is a problem too.
    ``packages`` are imported module by module, to catch a missing dependency.
    """
    findings = check_settings(env)
    findings.append(await check_database(_database_path(env)))
    if not findings[-1].problem:
        findings += await check_refused_keys(_database_path(env), env)
    if packages:
        findings.append(check_imports(packages))
    if parse is not None and not any(finding.problem for finding in findings):
        try:
            parse(env)
        except ValueError as error:
            findings.append(Finding("settings", str(error), Verdict.PROBLEM))
    return findings


def check_settings(env: Mapping[str, str]) -> list[Finding]:
    """The findings that need only the settings themselves (no database, no imports)."""
    settings = _Settings(env)
    findings = [settings.token(), *settings.discord()]
    findings += settings.providers()
    findings += settings.prices()
    findings += settings.jobs()
    findings += settings.side_door()
    findings.append(settings.log_level())
    return findings


def _database_path(env: Mapping[str, str]) -> Path:
    return Path(env.get("DATABASE_PATH", "").strip() or DEFAULT_PATH)


class _Settings:
    """Reads the settings; each reader returns findings, one per item or bad setting."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def number(
        self, name: str, default: float, *, low: float, high: float = math.inf
    ) -> float | Finding:
        """The setting as a number in [low, high], its default when unset, or a problem."""
        text = self.text(name)
        if not text:
            return default
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # also false for nan
            wanted = f"from {low:g} to {high:g}" if high < math.inf else f"of at least {low:g}"
            return Finding(name, f"must be a number {wanted}, not {text!r}", Verdict.PROBLEM)
        return value

    # -- Discord -------------------------------------------------------------------------

    def token(self) -> Finding:
        token = self.text("DISCORD_TOKEN")
        if not token:
            return Finding(
                "DISCORD_TOKEN",
                "not set; copy the bot's token from the Developer Portal (your application > "
                "Bot > Reset Token) into .env",
                Verdict.PROBLEM,
            )
        if token.isdigit():
            why = "is only digits: that is the application id, not the bot's token"
        elif token.lower().startswith("bot "):
            why = "starts with 'Bot '; put the token alone"
        elif any(character.isspace() for character in token):
            why = "contains spaces or line breaks; put the token alone on its line"
        elif token.count(".") != 2:
            why = (
                "does not look like a bot token (three parts separated by dots); the OAuth2 "
                "client secret is not the token"
            )
        else:
            return Finding("DISCORD_TOKEN", "set")
        return Finding("DISCORD_TOKEN", why, Verdict.PROBLEM)

    def discord(self) -> list[Finding]:
        problems = []
        guild = self.text("DEV_GUILD_ID")
        if guild and not guild.isdigit():
            problems.append(
                Finding("DEV_GUILD_ID", f"must be a server id (digits), not {guild!r}",
                        Verdict.PROBLEM)
            )
        ready = self.number("DISCORD_GUILD_READY_TIMEOUT", 2.0, low=0)
        for name in ("DISCORD_API_BASE", "DISCORD_GATEWAY_URL"):
            if (url := self.text(name)) and not _is_url(url, ("http", "https", "ws", "wss")):
                problems.append(Finding(name, f"must be a URL, not {url!r}", Verdict.PROBLEM))
        problems += [ready] if isinstance(ready, Finding) else []
        if problems:
            return problems
        where = (
            f"registered instantly in server {guild} (DEV_GUILD_ID)"
            if guild
            else "registered globally (new commands can take up to an hour to show; set "
            "DEV_GUILD_ID to try the bot in one server)"
        )
        findings = [Finding("commands", where)]
        if proxy := self.text("DISCORD_API_BASE") or self.text("DISCORD_GATEWAY_URL"):
            findings.append(Finding("discord", f"through a proxy ({proxy})"))
        return findings

    # -- providers and prices ------------------------------------------------------------

    def providers(self) -> list[Finding]:
        try:
            configs = load_providers(self.env)
        except ConfigurationError as error:
            return [Finding("provider settings", str(error), Verdict.PROBLEM)]
        findings = []
        keyed = []
        for name, config in configs.items():
            variable = f"{name.upper()}_API_KEY"
            if not config.api_key:
                findings.append(Finding(f"provider {name}", f"no key ({variable})", Verdict.OFF))
                continue
            keyed.append(name)
            where = f", at {config.base_url}" if config.base_url else ""
            findings.append(Finding(f"provider {name}", f"key set ({variable}){where}"))
        findings.append(self.default_provider(keyed))
        findings += self.demo(keyed)
        return findings

    def default_provider(self, keyed: list[str]) -> Finding:
        chosen = self.text("HH_PROVIDER").lower()
        names = (*PROVIDER_NAMES, DEMO, AUTO)
        if chosen and chosen not in names:
            return Finding(
                "HH_PROVIDER", f"must be one of {', '.join(names)}, not {chosen!r}",
                Verdict.PROBLEM,
            )
        if chosen == AUTO:
            if not keyed:
                return Finding("HH_PROVIDER", "is auto, but no provider has a key",
                               Verdict.PROBLEM)
            among = ", ".join(keyed)
            spare = "" if len(keyed) > 1 else "; with one key there is nothing to fail over to"
            return Finding("default provider",
                           f"auto (HH_PROVIDER): the cheapest working one of {among}{spare}")
        if chosen and chosen not in (DEMO, AUTO) and chosen not in keyed:
            return Finding(
                "HH_PROVIDER", f"is {chosen}, but {chosen.upper()}_API_KEY is not set",
                Verdict.PROBLEM,
            )
        if chosen == DEMO:
            return Finding("default provider", "demo (HH_PROVIDER): free sample videos")
        if chosen:
            return Finding("default provider", f"{chosen} (HH_PROVIDER)")
        if keyed:
            return Finding("default provider", f"{keyed[0]} (the first with a key)")
        return Finding(
            "default provider",
            "demo: no provider has a key, so videos are free samples; set a key for real ones",
        )

    def demo(self, keyed: list[str]) -> list[Finding]:
        seconds = self.number("DEMO_RENDER_SECONDS", 8.0, low=0)
        rate = self.number("DEMO_FAIL_RATE", 0.0, low=0, high=1)
        problems = [value for value in (seconds, rate) if isinstance(value, Finding)]
        if problems:
            return problems
        assert isinstance(seconds, float) and isinstance(rate, float)
        if keyed and self.text("HH_PROVIDER").lower() != DEMO:
            return []
        return [
            Finding(
                "demo",
                f"renders take {seconds:g} s; {rate:.0%} of jobs fail, and every prompt "
                f"with #fail",
            )
        ]

    def prices(self) -> list[Finding]:
        try:
            table = PriceTable.from_env(self.env)
        except ConfigurationError as error:
            return [Finding("prices", str(error), Verdict.PROBLEM)]
        findings = []
        for provider in (*PROVIDER_NAMES, DEMO):
            rates = ", ".join(
                f"{resolution} {table.rate(provider, resolution)} credits/s "
                f"({table.source(provider, resolution)})"
                for resolution in RESOLUTIONS
            )
            findings.append(Finding(f"price {provider}", rates))
        return findings

    # -- jobs, the side door, logs -------------------------------------------------------

    def jobs(self) -> list[Finding]:
        slots = self.number("PADDOCK_PROVIDER_CONCURRENCY", 8, low=1)
        minutes = self.number("PADDOCK_JOB_TIMEOUT_MINUTES", 30, low=1)
        poll = self.number("PADDOCK_POLL_SECONDS", 2.0, low=0.001)
        problems = [value for value in (slots, minutes, poll) if isinstance(value, Finding)]
        if problems:
            return problems
        assert not isinstance(slots, Finding) and not isinstance(minutes, Finding)
        return [
            Finding(
                "jobs",
                f"{int(slots)} at once per provider; failed and refunded after {minutes:g} "
                f"min; first status check after {poll:g} s",
            )
        ]

    def side_door(self) -> list[Finding]:
        port = self.number("PADDOCK_HTTP_PORT", 0, low=1, high=65535)
        host = self.text("PADDOCK_HTTP_HOST") or "127.0.0.1"
        public = self.text("PADDOCK_PUBLIC_URL").rstrip("/")
        secret = self.text("HIAPI_WEBHOOK_SECRET")
        findings = []
        if isinstance(port, Finding):
            findings.append(port)
        elif port and not float(port).is_integer():
            findings.append(
                Finding("PADDOCK_HTTP_PORT", f"must be a whole number, not {port:g}",
                        Verdict.PROBLEM)
            )
        elif port:
            findings.append(
                Finding("side door", f"http://{host}:{int(port)} (/healthz, /metrics, "
                        "/callbacks/hiapi)")
            )
        else:
            findings.append(
                Finding("side door", "off (PADDOCK_HTTP_PORT unset): no /healthz, /metrics "
                        "or callbacks", Verdict.OFF)
            )
        if not public:
            findings.append(
                Finding("callbacks", "off (PADDOCK_PUBLIC_URL unset): HiAPI jobs are polled",
                        Verdict.OFF)
            )
            return findings
        parts = urlsplit(public)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            findings.append(
                Finding("PADDOCK_PUBLIC_URL", "must be the side door's public https address, "
                        "such as https://paddock.example.com", Verdict.PROBLEM)
            )
            return findings
        if not self.text("PADDOCK_HTTP_PORT"):
            findings.append(
                Finding("PADDOCK_PUBLIC_URL", "is set but PADDOCK_HTTP_PORT is not: nothing "
                        "would answer HiAPI's callbacks", Verdict.PROBLEM)
            )
        elif not self.text("HIAPI_API_KEY"):
            findings.append(
                Finding("callbacks", "off: HiAPI has no key, so nothing calls back", Verdict.OFF)
            )
        elif not secret:
            findings.append(
                Finding("HIAPI_WEBHOOK_SECRET", "not set; it is needed to check HiAPI's "
                        "callbacks to PADDOCK_PUBLIC_URL", Verdict.PROBLEM)
            )
        else:
            findings.append(
                Finding("callbacks", f"HiAPI calls back {public}/callbacks/hiapi; "
                        "HIAPI_WEBHOOK_SECRET set")
            )
        return findings

    def log_level(self) -> Finding:
        level = self.text("PADDOCK_LOG_LEVEL").upper() or "INFO"
        if level not in LOG_LEVELS:
            return Finding(
                "PADDOCK_LOG_LEVEL",
                f"must be one of {', '.join(LOG_LEVELS)}, not {self.text('PADDOCK_LOG_LEVEL')!r}",
                Verdict.PROBLEM,
            )
        return Finding("log level", level)


def _is_url(text: str, schemes: tuple[str, ...]) -> bool:
    parts = urlsplit(text)
    return parts.scheme in schemes and bool(parts.netloc)


# -- the database --------------------------------------------------------------------------


class _RollBack(Exception):
    """Raised inside the probe write so that the store rolls it back."""


def _probe_write(db: Database) -> None:
    db.execute("CREATE TABLE _paddock_check (written INTEGER)")
    raise _RollBack


def _applied(db: Database) -> list[tuple[str, datetime]]:
    return [
        (migration.name, datetime.fromisoformat(migration.applied_at))
        for migration in MIGRATIONS.applied(db)
    ]


async def check_database(path: Path) -> Finding:
    """Open the database as the bot would (applying pending migrations), prove it takes
    a write, and say where its schema stands."""
    known = [migration.name for migration in MIGRATIONS.pending(Database(memory=True))]
    if blocker := next((p for p in path.parents if p.exists() and not p.is_dir()), None):
        return Finding(
            "database", f"cannot create {path}: {blocker} is a file, not a folder",
            Verdict.PROBLEM,
        )
    started = datetime.now(UTC)
    try:
        store = await Store.open(path)
        try:
            with contextlib.suppress(_RollBack):
                await store.write(_probe_write)
            applied = await store.read(_applied)
        finally:
            await store.close()
    except StoreBusy:
        return Finding(
            "database",
            f"{path} stayed locked by another process; is another Paddock using the file?",
            Verdict.PROBLEM,
        )
    except (OSError, sqlite3.Error, StoreUnavailable) as error:
        cause = error.__cause__ if isinstance(error, StoreUnavailable) else error
        return Finding(
            "database",
            f"cannot open and write {path} ({cause}); DATABASE_PATH must be a file the bot "
            "can write, in a folder it can write",
            Verdict.PROBLEM,
        )
    names = [name for name, _ in applied]
    unknown = [name for name in names if name not in known]
    if unknown:
        return Finding(
            "database",
            f"{path} has migrations this version does not know ({', '.join(unknown)}): it "
            "was used by a newer Paddock",
            Verdict.PROBLEM,
        )
    new = sum(when >= started for _, when in applied)
    now = f", {new} applied just now" if new else ""
    return Finding(
        "database",
        f"{path} is writable; schema at {names[-1]} ({len(names)} of {len(known)} "
        f"migrations{now})",
    )


async def check_refused_keys(path: Path, env: Mapping[str, str]) -> list[Finding]:
    """A problem for each provider key its provider refused (401/403) while the bot ran,
    as long as that same key is still set (see `paddock.refused_keys`)."""
    try:
        configs = load_providers(env)
    except ConfigurationError:
        return []  # already a finding of its own
    store = await Store.open(path)
    try:
        refused = await store.read(refused_in, configs)
    finally:
        await store.close()
    return [
        Finding(
            f"provider {key.provider}",
            f"{key.provider} refused this key at {key.at.isoformat(timespec='seconds')} "
            f"({key.reason}); replace {key.provider.upper()}_API_KEY",
            Verdict.PROBLEM,
        )
        for key in refused
    ]


# -- the code ------------------------------------------------------------------------------


def check_imports(packages: Iterable[str]) -> Finding:
    """Import every module of ``packages``: a dependency missing from the install shows
    here rather than when a member first uses the command that needs it."""
    imported = 0
    failed = []
    for package in packages:
        try:
            root = importlib.import_module(package)
        except ImportError as error:
            failed.append(f"{package} ({error})")
            continue
        imported += 1
        for module in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if module.name.endswith(".__main__"):  # importing it would run it
                continue
            try:
                importlib.import_module(module.name)
            except ImportError as error:
                failed.append(f"{module.name} ({error})")
            else:
                imported += 1
    if failed:
        return Finding(
            "code",
            f"cannot import {'; '.join(failed)}; install the requirements: "
            "python3 -m pip install -r requirements.txt",
            Verdict.PROBLEM,
        )
    return Finding("code", f"{imported} modules import ({', '.join(packages)})")
