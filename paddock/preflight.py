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
import pkgutil
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlite_utils import Database

from hh_api import DEMO_PROVIDER, PROVIDER_NAMES, ConfigurationError, load_providers, redact_url
from hh_api.pricing import RESOLUTIONS
from paddock.errors import StoreBusy, StoreUnavailable
from paddock.migrations import MIGRATIONS
from paddock.refused_keys import refused_in
from paddock.settings import (
    Problem,
    Settings,
    database_blocker,
    database_location,
    database_unusable,
    describe_default_provider,
    describe_shards,
    read_settings,
    token_doubt,
)
from paddock.store import Store, open_store
from paddock.store.pg_migrations import MIGRATIONS as PG_MIGRATIONS

if TYPE_CHECKING:
    from paddock.store.postgres import PostgresDatabase


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


async def preflight(env: Mapping[str, str], *, packages: Iterable[str] = ()) -> list[Finding]:
    """Every finding about this configuration, in the order a person would fix them.

    The settings are read by :func:`paddock.settings.read_settings`, the very reader a
    start uses. ``packages`` are imported module by module, to catch a missing dependency.
    """
    findings = check_settings(env)
    location = database_location(env)
    if not isinstance(location, Problem):  # else check_settings has said what is wrong
        findings.append(await check_database(location))
        if not findings[-1].problem:
            findings += await check_refused_keys(location, env)
    if packages:
        findings.append(check_imports(packages))
    return findings


def check_settings(env: Mapping[str, str]) -> list[Finding]:
    """The findings that need only the settings themselves (no database, no imports): one
    per bad setting, or, when every setting is good, one per item."""
    settings, problems = read_settings(env)
    if settings is None:
        return [Finding(problem.setting, problem.detail, Verdict.PROBLEM) for problem in problems]
    findings = [_token(settings.discord_token), *_discord(settings)]
    findings += _providers(settings, env)
    findings += _prices(settings)
    findings.append(_jobs(settings))
    findings += _side_door(settings, env)
    findings.append(Finding("log level", settings.log_level))
    return findings


def _token(token: str) -> Finding:
    if why := token_doubt(token):
        return Finding("DISCORD_TOKEN", why, Verdict.PROBLEM)
    return Finding("DISCORD_TOKEN", "set")


def _discord(settings: Settings) -> list[Finding]:
    guild = settings.dev_guild_id
    where = (
        f"registered instantly in server {guild} (DEV_GUILD_ID)"
        if guild is not None
        else "registered globally (new commands can take up to an hour to show; set "
        "DEV_GUILD_ID to try the bot in one server)"
    )
    findings = [Finding("commands", where)]
    findings.append(Finding("gateway", describe_shards(settings),
                            Verdict.OK if settings.sharded else Verdict.OFF))
    if proxy := settings.discord_api_base or settings.discord_gateway_url:
        findings.append(Finding("discord", f"through a proxy ({redact_url(proxy)})"))
    return findings


def _providers(settings: Settings, env: Mapping[str, str]) -> list[Finding]:
    findings = []
    keyed = []
    for name, config in settings.providers.items():
        if name == DEMO_PROVIDER:
            continue
        variable = f"{name.upper()}_API_KEY"
        if not config.api_key:
            findings.append(Finding(f"provider {name}", f"no key ({variable})", Verdict.OFF))
            continue
        keyed.append(name)
        where = f", at {redact_url(config.base_url)}" if config.base_url else ""
        findings.append(Finding(f"provider {name}", f"key set ({variable}){where}"))
    chosen = env.get("HH_PROVIDER", "").strip().lower()
    assert settings.default_provider is not None
    findings.append(Finding("default provider", describe_default_provider(
        chosen, settings.default_provider, keyed)))
    if settings.default_provider == DEMO_PROVIDER:
        demo = settings.demo
        findings.append(Finding(
            "demo", f"renders take {demo.render_seconds:g} s; {demo.fail_rate:.0%} of jobs "
            "fail, and every prompt with #fail"))
    return findings


def _prices(settings: Settings) -> list[Finding]:
    findings = []
    for provider in (*PROVIDER_NAMES, DEMO_PROVIDER):
        rates = ", ".join(
            f"{resolution} {settings.prices.rate(provider, resolution)} credits/s "
            f"({settings.prices.source(provider, resolution)})"
            for resolution in RESOLUTIONS
        )
        findings.append(Finding(f"price {provider}", rates))
    return findings


def _jobs(settings: Settings) -> Finding:
    runner = settings.runner
    minutes = runner.job_timeout.total_seconds() / 60
    poll = runner.poll.initial if runner.poll is not None else 2.0
    return Finding(
        "jobs",
        f"{runner.provider_slots} at once per provider; failed and refunded after "
        f"{minutes:g} min; first status check after {poll:g} s",
    )


def _side_door(settings: Settings, env: Mapping[str, str]) -> list[Finding]:
    findings = []
    port, host = settings.http_port, settings.http_host
    if port is None:
        findings.append(Finding("side door", "off (PADDOCK_HTTP_PORT unset): no /healthz, "
                                "/metrics or callbacks", Verdict.OFF))
    else:
        where = f"http://{host}:{port}" if port else f"http://{host} on any free port (0)"
        findings.append(Finding("side door", f"{where} (/healthz, /metrics, /callbacks/hiapi)"))
    public = settings.public_url
    if public is None:
        findings.append(Finding("callbacks", "off (PADDOCK_PUBLIC_URL unset): HiAPI jobs are "
                                "polled", Verdict.OFF))
    elif not settings.providers["hiapi"].api_key:
        findings.append(Finding("callbacks", "off: HiAPI has no key, so nothing calls back",
                                Verdict.OFF))
    else:
        findings.append(Finding("callbacks", f"HiAPI calls back "
                                f"{redact_url(public)}/callbacks/hiapi; HIAPI_WEBHOOK_SECRET set"))
    return findings


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


def _applied_on_postgres(db: PostgresDatabase) -> list[tuple[str, datetime]]:
    return PG_MIGRATIONS.applied(db.conn)


async def check_database(path: Path | str) -> Finding:
    """Open the database as the bot would (applying pending migrations), prove it takes
    a write, and say where its schema stands."""
    if isinstance(path, str):
        return await _check_postgres(path)
    known = [migration.name for migration in MIGRATIONS.pending(Database(memory=True))]
    if why := database_blocker(path):
        return Finding("DATABASE_PATH", why, Verdict.PROBLEM)
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
        problem = database_unusable(path, cause or error)
        return Finding(problem.setting, problem.detail, Verdict.PROBLEM)
    names = [name for name, _ in applied]
    unknown = [name for name in names if name not in known]
    if unknown:
        return Finding(
            "database",
            f"{path} has migrations this version does not know ({', '.join(unknown)}): it "
            "was used by a newer Paddock",
            Verdict.PROBLEM,
        )
    return Finding("database", f"{path} is writable; {_schema(applied, known, started)}")


async def _check_postgres(url: str) -> Finding:
    """``check_database`` for a ``DATABASE_URL``: the server's version too, never the
    password (the URL is shown through :func:`redact_url`)."""
    from paddock.store.postgres import PostgresStore

    started = datetime.now(UTC)
    try:
        store = await PostgresStore.open(url)
        try:
            with contextlib.suppress(_RollBack):
                await store.write(_probe_write)
            applied = await store.read(_applied_on_postgres)
        finally:
            await store.close()
    except StoreBusy:
        return Finding("database", f"{redact_url(url)} stayed busy", Verdict.PROBLEM)
    except StoreUnavailable as error:
        problem = database_unusable(url, error.__cause__ or error)
        return Finding(problem.setting, problem.detail, Verdict.PROBLEM)
    unknown = [name for name, _ in applied if name not in PG_MIGRATIONS.names]
    if unknown:
        return Finding(
            "database",
            f"{redact_url(url)} has migrations this version does not know "
            f"({', '.join(unknown)}): it was used by a newer Paddock",
            Verdict.PROBLEM,
        )
    return Finding(
        "database",
        f"PostgreSQL {store.server_version} at {redact_url(url)} is writable; "
        f"{_schema(applied, PG_MIGRATIONS.names, started)}",
    )


def _schema(applied: list[tuple[str, datetime]], known: list[str], started: datetime) -> str:
    """Where the schema stands: the last migration, how many of how many, how many new."""
    new = sum(when >= started for _, when in applied)
    now = f", {new} applied just now" if new else ""
    pending = len(known) - len(applied)
    waiting = f", {pending} pending" if pending > 0 else ""
    return (
        f"schema at {applied[-1][0]} ({len(applied)} of {len(known)} migrations{now}{waiting})"
    )


async def check_refused_keys(path: Path | str, env: Mapping[str, str]) -> list[Finding]:
    """A problem for each provider key its provider refused (401/403) while the bot ran,
    as long as that same key is still set (see `paddock.refused_keys`)."""
    try:
        configs = load_providers(env)
    except ConfigurationError:
        return []  # already a finding of its own
    store = await open_store(path)
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
