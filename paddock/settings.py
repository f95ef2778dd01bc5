"""The bot's settings, read from the environment in one place.

:func:`read_settings` is the only reader: ``python bot.py`` starts from what it returns and
``python bot.py --check`` reports it (paddock/preflight.py), so the two never disagree.
It never stops at the first bad value: every one is a :class:`Problem`, one line naming
the variable, the value and what is allowed. Secrets are never in a problem or a repr,
and URLs are shown through :func:`hh_api.redact_url`.

Imports nothing from discord.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from hh_api import (
    DEMO_PROVIDER,
    PROVIDER_NAMES,
    ConfigurationError,
    DemoSettings,
    PollPolicy,
    PriceTable,
    ProviderConfig,
    Secret,
    load_providers,
    redact_url,
)
from paddock.leases import DEFAULT_TTL
from paddock.routing import AUTO
from paddock.runner import RunnerSettings
from paddock.store import DEFAULT_PATH

log = logging.getLogger("paddock")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
T = TypeVar("T")
MAX_SNOWFLAKE = 2**64 - 1
MAX_SHARDS = 100_000  # far past any bot's count; bounds a typo


@dataclass(frozen=True)
class Problem:
    """One bad setting: ``str()`` is the line an operator reads."""

    setting: str  # the environment variable to change
    detail: str  # what is wrong with it, starting with a verb: "must be ...", "is set but ..."

    def __str__(self) -> str:
        return f"{self.setting} {self.detail}"


class SettingsError(ValueError):
    """The environment cannot start the bot; one line per bad setting says what to set."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(map(str, self.problems)))


# -- the default provider: the one place that knows HH_PROVIDER's values ----------------------

HH_PROVIDER_CHOICES = (*PROVIDER_NAMES, DEMO_PROVIDER, AUTO)


def default_provider(chosen: str, keyed: Sequence[str]) -> str | Problem:
    """``HH_PROVIDER`` (already lower-cased, "" when unset) against the providers with a
    key: the provider new jobs go to, or the problem."""
    if chosen and chosen not in HH_PROVIDER_CHOICES:
        return Problem(
            "HH_PROVIDER", f"must be one of {', '.join(HH_PROVIDER_CHOICES)}, not {chosen!r}"
        )
    if chosen == AUTO and not keyed:
        return Problem("HH_PROVIDER", "is auto, but no provider has a key: set at least one "
                       "<PROVIDER>_API_KEY (two or more for failover)")
    if chosen and chosen not in (DEMO_PROVIDER, AUTO) and chosen not in keyed:
        return Problem("HH_PROVIDER", f"is {chosen}, but {chosen.upper()}_API_KEY is not set")
    return chosen or (keyed[0] if keyed else DEMO_PROVIDER)


def describe_default_provider(env_choice: str, default: str, keyed: Sequence[str]) -> str:
    """Why ``default`` is the default provider, for ``--check``."""
    if env_choice == DEMO_PROVIDER:
        return "demo (HH_PROVIDER): free sample videos"
    if env_choice == AUTO:
        spare = "" if len(keyed) > 1 else "; with one key there is nothing to fail over to"
        return f"auto (HH_PROVIDER): the cheapest working one of {', '.join(keyed)}{spare}"
    if env_choice:
        return f"{default} (HH_PROVIDER)"
    if keyed:
        return f"{default} (the first with a key)"
    return "demo: no provider has a key, so videos are free samples; set a key for real ones"


# -- the settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Everything the bot needs from its environment."""

    discord_token: str = field(repr=False)  # never in a repr, a log line or an error
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    dev_guild_id: int | None = None
    guild_ready_timeout: float = 2.0
    shard_count: int | None = None  # None: one connection, no sharding (discord.py's Bot)
    shard_ids: tuple[int, ...] | None = None  # this process's shards; None: all of them
    database_path: Path = DEFAULT_PATH
    database_url: str | None = None  # PostgreSQL; None: SQLite at database_path
    # How long a SQLite write waits for another program's write lock before it fails.
    sqlite_busy_timeout: float = 5.0
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    default_provider: str | None = None  # None: none (from_env turns the demo on instead);
    # "auto": each job goes to the cheapest provider working now (paddock.routing)
    prices: PriceTable = field(default_factory=PriceTable)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)
    http_port: int | None = None  # None: no side door (health, metrics, callbacks)
    http_host: str = "127.0.0.1"
    public_url: str | None = None  # the side door's public https base URL
    hiapi_webhook_secret: Secret | None = None
    log_level: str = "INFO"  # main() applies it first, via setup_logging()

    def __repr__(self) -> str:
        """The settings as a log line may show them: URLs without their credentials."""
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        for name in ("discord_api_base", "discord_gateway_url", "public_url", "database_url"):
            if shown[name]:
                shown[name] = redact_url(shown[name])
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @property
    def sharded(self) -> bool:
        """Whether the bot runs shards (``DISCORD_SHARD_COUNT`` is set)."""
        return self.shard_count is not None

    @property
    def database(self) -> Path | str:
        """Where the store lives: the PostgreSQL URL when set, else the SQLite file."""
        return self.database_url or self.database_path

    @property
    def hiapi_callback_url(self) -> str | None:
        """Where HiAPI should post its callbacks, when the side door is public."""
        return f"{self.public_url}/callbacks/hiapi" if self.public_url else None

    @property
    def usable_providers(self) -> list[str]:
        """Providers with a key, and the demo when it is on (it needs none), the default
        first."""
        names = [
            name for name, config in self.providers.items()
            if config.api_key or name == DEMO_PROVIDER
        ]
        if self.default_provider in names:
            names.remove(self.default_provider)
            names.insert(0, self.default_provider)
        return names

    @property
    def routable_providers(self) -> list[str]:
        """The providers ``auto`` chooses among: those with a key (never the demo)."""
        return [name for name, config in self.providers.items()
                if config.api_key and name != DEMO_PROVIDER]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings, or :class:`SettingsError` listing every bad one (see
        :func:`read_settings`)."""
        settings, problems = read_settings(env)
        if problems or settings is None:
            raise SettingsError(problems)
        if settings.default_provider == DEMO_PROVIDER and not _text(env, "HH_PROVIDER"):
            log.info("no provider key is set, so videos come from the free demo provider "
                     "(a sample clip; credits are charged at real prices)")
        return settings


def read_settings(env: Mapping[str, str]) -> tuple[Settings | None, list[Problem]]:
    """Read ``DISCORD_TOKEN`` (required), ``DISCORD_API_BASE``, ``DISCORD_GATEWAY_URL``,
    ``DEV_GUILD_ID``, ``DISCORD_GUILD_READY_TIMEOUT``, ``DISCORD_SHARD_COUNT``,
    ``DISCORD_SHARD_IDS``, ``DATABASE_PATH``, ``DATABASE_URL``, the providers'
    keys and settings, ``HH_PROVIDER``, ``DEMO_RENDER_SECONDS``, ``DEMO_FAIL_RATE``, the
    prices, the runner's, the side door's and ``PADDOCK_LOG_LEVEL``.

    Returns the settings and no problem, or None and every problem found. The free demo
    provider is on when ``HH_PROVIDER`` is ``demo`` or no provider has a key; it is then
    the default.
    """
    reader = _Reader(env)
    token = env.get("DISCORD_TOKEN", "").strip()
    if not token:
        reader.problems.append(Problem(
            "DISCORD_TOKEN", "is not set; copy the bot's token from the Developer Portal "
            "(your application > Bot > Reset Token) into the environment or .env"))
    api_base = reader.url("DISCORD_API_BASE", ("http", "https"), "an http(s) URL")
    gateway = reader.url("DISCORD_GATEWAY_URL", ("ws", "wss", "http", "https"),
                         "a ws(s) URL")
    guild = reader.whole("DEV_GUILD_ID", None, 1, MAX_SNOWFLAKE, "a server id (digits)")
    ready = reader.number("DISCORD_GUILD_READY_TIMEOUT", 2.0, 0, 600)
    shard_count, shard_ids = reader.shards()
    database = Path(reader.text("DATABASE_PATH") or DEFAULT_PATH)  # opening it checks it
    location = database_location(env)
    if isinstance(location, Problem):
        reader.problems.append(location)
    database_url = location if isinstance(location, str) else None
    busy = reader.number("PADDOCK_SQLITE_BUSY_SECONDS", 5.0, 0.05, 600)
    providers = reader.hh_api(load_providers)
    keyed = [name for name, config in (providers or {}).items() if config.api_key]
    chosen = reader.text("HH_PROVIDER").lower()
    default = default_provider(chosen, keyed) if providers is not None else None
    if isinstance(default, Problem):
        reader.problems.append(default)
    demo = reader.hh_api(DemoSettings.from_env)
    prices = reader.hh_api(PriceTable.from_env)
    runner = reader.runner()
    side_door = reader.side_door(hiapi_keyed="hiapi" in keyed)
    log_level = reader.choice("PADDOCK_LOG_LEVEL", "INFO", LOG_LEVELS)
    if reader.problems:
        return None, reader.problems
    assert providers is not None and isinstance(default, str) and demo and prices and runner
    if default == DEMO_PROVIDER:
        providers[DEMO_PROVIDER] = ProviderConfig(DEMO_PROVIDER)
    settings = Settings(
        discord_token=token,
        discord_api_base=api_base.rstrip("/") if api_base else None,
        discord_gateway_url=gateway,
        dev_guild_id=guild,
        guild_ready_timeout=ready,
        shard_count=shard_count,
        shard_ids=shard_ids,
        database_path=database,
        database_url=database_url,
        sqlite_busy_timeout=busy,
        providers=providers,
        default_provider=default,
        prices=prices,
        runner=runner,
        demo=demo,
        log_level=log_level,
        **side_door,  # type: ignore[arg-type]
    )
    return settings, []


def describe_shards(settings: Settings) -> str:
    """This process's shards, for ``--check`` and the log: "shards 0,1 of 4"."""
    if settings.shard_count is None:
        return "one connection, no sharding (DISCORD_SHARD_COUNT unset)"
    ids = settings.shard_ids or tuple(range(settings.shard_count))
    listed = ",".join(map(str, ids))
    if len(ids) == settings.shard_count:
        return f"shards {listed} of {settings.shard_count}: all of them, in this process"
    return f"shards {listed} of {settings.shard_count}: the others run in other processes"


def token_doubt(token: str) -> str | None:
    """Why ``token`` does not look like a bot token, if it does not: the usual paste
    mistakes. ``--check`` reports it; a start lets Discord judge (a proxy or a test
    server may issue tokens of another shape)."""
    if token.isdigit():
        return "is only digits: that is the application id, not the bot's token"
    if token.lower().startswith("bot "):
        return "starts with 'Bot '; put the token alone"
    if any(character.isspace() for character in token):
        return "contains spaces or line breaks; put the token alone on its line"
    if token.count(".") != 2:
        return ("does not look like a bot token (three parts separated by dots); the OAuth2 "
                "client secret is not the token")
    return None


def database_location(env: Mapping[str, str]) -> Path | str | Problem:
    """Where the store lives: ``DATABASE_URL`` when set (PostgreSQL), else the SQLite file
    at ``DATABASE_PATH``; a problem when ``DATABASE_URL`` is not a PostgreSQL URL."""
    reader = _Reader(env)
    url = reader.url(
        "DATABASE_URL", ("postgresql", "postgres"),
        "a PostgreSQL URL such as postgresql://user:password@host:5432/paddock")
    if reader.problems:
        return reader.problems[0]
    return url or Path(reader.text("DATABASE_PATH") or DEFAULT_PATH)


def database_blocker(path: Path) -> str | None:
    """Why ``path`` cannot be a database file, seen without opening it (the database is
    checked by opening it, at a start and by ``--check``: see :func:`database_unusable`)."""
    if path.is_dir():
        return f"is {str(path)!r}, a folder; it must be the database file's path"
    if blocker := next((p for p in path.parents if p.exists() and not p.is_dir()), None):
        return f"is {str(path)!r}, but {blocker} is a file, not a folder"
    return None


def database_unusable(path: Path | str, cause: BaseException) -> Problem:
    """The problem of a database that could not be opened and written."""
    if isinstance(path, str):
        url = redact_url(path)
        reason = " ".join(str(cause).split())  # libpq's messages run over several lines
        if password := urlsplit(path).password:
            reason = reason.replace(password, "***").replace(unquote(password), "***")
        return Problem(
            "DATABASE_URL",
            f"is {url!r}, which cannot be opened and written ({reason}); the server must be "
            "running, the database must exist, and the user must be able to create tables "
            "in it",
        )
    return Problem(
        "DATABASE_PATH",
        f"is {str(path)!r}, which cannot be opened and written ({cause}); it must be a file "
        "the bot can write, in a folder it can write",
    )


def _text(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


class _Reader:
    """Reads one setting at a time; a bad one adds a :class:`Problem` and yields its
    default, so that reading goes on and every problem is found."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[Problem] = []

    def text(self, name: str) -> str:
        return _text(self.env, name)

    def refuse(self, name: str, allowed: str, text: str) -> None:
        self.problems.append(Problem(name, f"must be {allowed}, not {text!r}"))

    def number(self, name: str, default: float, low: float, high: float = math.inf) -> float:
        """A finite number in [low, high]; ``default`` when unset."""
        text = self.text(name)
        if not text:
            return default
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):  # nan, inf: refused
            wanted = f"from {low:g} to {high:g}" if high < math.inf else f"of at least {low:g}"
            self.refuse(name, f"a number {wanted}", text)
            return default
        return value

    def whole(
        self, name: str, default: int | None, low: int, high: int, allowed: str | None = None
    ) -> int | None:
        """A whole number in [low, high] written in digits; ``default`` when unset."""
        text = self.text(name)
        if not text:
            return default
        if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
            self.refuse(name, allowed or f"a whole number from {low} to {high}", text)
            return default
        return int(text)

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        text = self.text(name)
        if not text:
            return default
        if text.upper() not in choices:
            self.refuse(name, f"one of {', '.join(choices)}", text)
            return default
        return text.upper()

    def url(self, name: str, schemes: Sequence[str], allowed: str) -> str | None:
        text = self.text(name)
        if not text:
            return None
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in schemes or not parts.hostname:
            self.refuse(name, allowed, redact_url(text))
            return None
        return text

    def hh_api(self, read: Callable[[Mapping[str, str]], T]) -> T | None:
        """What one of hh_api's readers makes of the environment, or None and its problem."""
        try:
            return read(self.env)
        except ConfigurationError as error:
            setting = error.setting or "settings"
            detail = str(error).removeprefix(f"{setting} ")
            self.problems.append(Problem(setting, detail))
            return None

    def shards(self) -> tuple[int | None, tuple[int, ...] | None]:
        """``DISCORD_SHARD_COUNT`` (unset: no sharding) and ``DISCORD_SHARD_IDS``, the
        shards this process runs (comma-separated, each below the count, once; unset: all)."""
        count = self.whole("DISCORD_SHARD_COUNT", None, 1, MAX_SHARDS,
                           f"a whole number of shards from 1 to {MAX_SHARDS}")
        text = self.text("DISCORD_SHARD_IDS")
        if not text:
            return count, None
        if not self.text("DISCORD_SHARD_COUNT"):
            self.problems.append(Problem(
                "DISCORD_SHARD_IDS", f"is {text!r} but DISCORD_SHARD_COUNT is not set: "
                "set the total number of shards of the bot, across every process"))
            return None, None
        parts = [part.strip() for part in text.split(",")]
        if not all(part.isascii() and part.isdigit() for part in parts):
            self.refuse("DISCORD_SHARD_IDS", "shard ids separated by commas, such as 0,1", text)
            return count, None
        ids = tuple(int(part) for part in parts)
        if count is None:  # a bad count is its own problem; ids cannot be checked against it
            return None, None
        if any(shard >= count for shard in ids):
            self.refuse("DISCORD_SHARD_IDS", f"shard ids from 0 to {count - 1} (below "
                        f"DISCORD_SHARD_COUNT={count}), separated by commas", text)
            return count, None
        if len(set(ids)) != len(ids):
            self.refuse("DISCORD_SHARD_IDS", "shard ids each named once", text)
            return count, None
        return count, ids

    def runner(self) -> RunnerSettings:
        """``PADDOCK_PROVIDER_CONCURRENCY``, ``PADDOCK_JOB_TIMEOUT_MINUTES``,
        ``PADDOCK_POLL_SECONDS`` (the first status check; it then grows to 15 s),
        ``PADDOCK_LEASE_SECONDS`` (how long a process's hold on a job lasts unless renewed)."""
        slots = self.whole("PADDOCK_PROVIDER_CONCURRENCY", 8, 1, 10_000)
        minutes = self.number("PADDOCK_JOB_TIMEOUT_MINUTES", 30, 1, 7 * 24 * 60)
        poll = self.number("PADDOCK_POLL_SECONDS", 2.0, 0.001, 600)
        lease = self.number("PADDOCK_LEASE_SECONDS", DEFAULT_TTL, 1, 3600)
        return RunnerSettings(
            provider_slots=slots or 8,
            job_timeout=timedelta(minutes=minutes),
            poll=PollPolicy(initial=poll, maximum=max(15.0, poll)),
            lease_ttl=lease,
        )

    def side_door(self, *, hiapi_keyed: bool) -> dict[str, object]:
        """``PADDOCK_HTTP_PORT`` (0: any free port), ``PADDOCK_HTTP_HOST``,
        ``PADDOCK_PUBLIC_URL``, ``HIAPI_WEBHOOK_SECRET``."""
        port = self.whole("PADDOCK_HTTP_PORT", None, 0, 65535,
                          "a port number from 0 (any free port) to 65535")
        public = self.text("PADDOCK_PUBLIC_URL").rstrip("/")
        secret = self.text("HIAPI_WEBHOOK_SECRET")
        if public:
            parts = urlsplit(public)
            if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
                self.refuse("PADDOCK_PUBLIC_URL", "the side door's public https address, such "
                            "as https://paddock.example.com", redact_url(public))
            elif not self.text("PADDOCK_HTTP_PORT"):
                self.problems.append(Problem(
                    "PADDOCK_PUBLIC_URL", "is set but PADDOCK_HTTP_PORT is not: nothing would "
                    "answer HiAPI's callbacks"))
            elif hiapi_keyed and not secret:
                self.problems.append(Problem(
                    "HIAPI_WEBHOOK_SECRET", "is not set; it is needed to check HiAPI's "
                    "callbacks to PADDOCK_PUBLIC_URL"))
        return {
            "http_port": port,
            "http_host": self.text("PADDOCK_HTTP_HOST") or "127.0.0.1",
            "public_url": public or None,
            "hiapi_webhook_secret": Secret(secret) if secret else None,
        }

