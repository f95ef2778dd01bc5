"""``python bot.py --check`` as an operator runs it: a real subprocess, its lines and exit code.

Every run starts from an environment where each documented setting is blank (so a
developer's ``.env`` cannot leak in), and every run checks that no token, key or secret
it was given appears in what it printed.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlite_utils import Database

from paddock.migrations import MIGRATIONS
from paddock.store.pg_migrations import MIGRATIONS as PG_MIGRATIONS
from tests.pg_cluster import PASSWORD as PG_PASSWORD
from tests.pg_cluster import PostgresCluster
from tests.settings_docs import ENV_EXAMPLE, documented_names

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.check-token-never-printed-0123456789"
SECRETS = {
    "JOYPIX_API_KEY": "jp-check-key-never-printed",
    "HIAPI_API_KEY": "hi-check-key-never-printed",
    "HIAPI_WEBHOOK_SECRET": "whsec-check-never-printed",
}
MIGRATION_NAMES = [migration.name for migration in MIGRATIONS.pending(Database(memory=True))]


@dataclass
class Checked:
    code: int
    lines: list[str]

    def has(self, line: str) -> bool:
        return line in self.lines


def run_check(settings: dict[str, str], *, python: str = sys.executable) -> Checked:
    """Run ``python bot.py --check`` with only ``settings`` set; secrets must not show."""
    blank = dict.fromkeys(documented_names(ENV_EXAMPLE.read_text()), "")
    base = {name: value for name, value in os.environ.items() if name not in blank}
    base.pop("PYTHONPATH", None)  # what runs must come from the interpreter's own install
    result = subprocess.run(
        [python, "bot.py", "--check"],
        cwd=ROOT,
        env={**base, **blank, **settings},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    for name, value in settings.items():
        if name == "DISCORD_TOKEN" or name.endswith(("_API_KEY", "_SECRET")):
            assert value == "" or value not in output, f"{name} leaked into the output"
    assert result.stderr == "", result.stderr
    return Checked(result.returncode, result.stdout.splitlines())


@pytest.fixture
def quiet_port() -> Iterator[socket.socket]:
    """A listening socket that every Discord and provider URL points at: any connection
    the check made would wait in its backlog."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener


def no_connection_arrived(listener: socket.socket) -> bool:
    listener.setblocking(False)
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return True
    connection.close()
    return False


def good_settings(tmp_path: Path, port: int) -> dict[str, str]:
    local = f"http://127.0.0.1:{port}"
    return {
        "DISCORD_TOKEN": TOKEN,
        **SECRETS,
        "DATABASE_PATH": str(tmp_path / "db" / "paddock.db"),
        "DEV_GUILD_ID": "123456789012345678",
        "WAVESPEED_PRICE_1080P": "20",
        "PADDOCK_HTTP_PORT": "8080",
        "PADDOCK_PUBLIC_URL": "https://paddock.example.com/",
        "DISCORD_API_BASE": f"{local}/api/v10",
        "DISCORD_GATEWAY_URL": f"ws://127.0.0.1:{port}",
        **{f"{name}_BASE_URL": local for name in ("JOYPIX", "WAVESPEED", "PIXELDOJO", "HIAPI")},
    }


def test_a_good_configuration_is_reported_item_by_item_and_exits_0(
    tmp_path: Path, quiet_port: socket.socket
) -> None:
    port = quiet_port.getsockname()[1]
    database = tmp_path / "db" / "paddock.db"
    checked = run_check(good_settings(tmp_path, port))

    assert checked.code == 0, checked.lines
    local = f"http://127.0.0.1:{port}"
    expected = [
        "ok    DISCORD_TOKEN: set",
        "ok    commands: registered instantly in server 123456789012345678 (DEV_GUILD_ID)",
        f"ok    provider joypix: key set (JOYPIX_API_KEY), at {local}",
        "off   provider wavespeed: no key (WAVESPEED_API_KEY)",
        "off   provider pixeldojo: no key (PIXELDOJO_API_KEY)",
        f"ok    provider hiapi: key set (HIAPI_API_KEY), at {local}",
        "ok    default provider: joypix (the first with a key)",
        "ok    price joypix: 720p 14 credits/s (documented), 1080p 24 credits/s (documented)",
        "ok    price wavespeed: 720p 14 credits/s (documented), 1080p 20 credits/s (configured)",
        "ok    price hiapi: 720p 14 credits/s (highest known), 1080p 24 credits/s "
        "(highest known)",
        "ok    jobs: 8 at once per provider; failed and refunded after 30 min; first status "
        "check after 2 s",
        "ok    side door: http://127.0.0.1:8080 (/healthz, /metrics, /callbacks/hiapi)",
        "ok    callbacks: HiAPI calls back https://paddock.example.com/callbacks/hiapi; "
        "HIAPI_WEBHOOK_SECRET set",
        "ok    log level: INFO",
        f"ok    database: {database} is writable; schema at {MIGRATION_NAMES[-1]} "
        f"({len(MIGRATION_NAMES)} of {len(MIGRATION_NAMES)} migrations, "
        f"{len(MIGRATION_NAMES)} applied just now)",
    ]
    assert [line for line in expected if not checked.has(line)] == []
    assert any(line.startswith("ok    code: ") for line in checked.lines)
    assert checked.lines[-1] == "paddock --check: ready to start"
    assert not any(line.startswith("FAIL") for line in checked.lines)
    # The database is really there, migrated, and the write probe left nothing behind.
    with sqlite3.connect(database) as db:
        applied = [row[0] for row in db.execute("SELECT name FROM _sqlite_migrations")]
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
    assert applied == MIGRATION_NAMES
    assert "_paddock_check" not in tables
    # Neither Discord nor any provider was contacted.
    assert no_connection_arrived(quiet_port)

    again = run_check(good_settings(tmp_path, port))
    assert again.code == 0
    assert again.has(
        f"ok    database: {database} is writable; schema at {MIGRATION_NAMES[-1]} "
        f"({len(MIGRATION_NAMES)} of {len(MIGRATION_NAMES)} migrations)"
    )


def test_a_missing_token_fails(tmp_path: Path) -> None:
    checked = run_check(
        {"DISCORD_TOKEN": "", **SECRETS, "DATABASE_PATH": str(tmp_path / "paddock.db")}
    )

    assert checked.code == 1
    assert checked.lines[0] == (
        "FAIL  DISCORD_TOKEN: is not set; copy the bot's token from the Developer Portal "
        "(your application > Bot > Reset Token) into the environment or .env"
    )
    assert checked.lines[-1] == "paddock --check: 1 problem; fix the FAIL lines above"


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("123456789012345678", "is only digits: that is the application id, not the bot's token"),
        (f"Bot {TOKEN}", "starts with 'Bot '; put the token alone"),
        ("abcdefghijklmnopqrstuvwxyz012345", "does not look like a bot token (three parts "
         "separated by dots); the OAuth2 client secret is not the token"),
    ],
    ids=["application id", "Bot prefix", "client secret"],
)
def test_a_token_pasted_wrong_fails_without_showing_it(
    tmp_path: Path, token: str, why: str
) -> None:
    checked = run_check({"DISCORD_TOKEN": token, "DATABASE_PATH": str(tmp_path / "p.db")})

    assert checked.code == 1
    assert checked.has(f"FAIL  DISCORD_TOKEN: {why}")
    assert not any(token in line for line in checked.lines)


def test_an_unwritable_database_path_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be\n")
    inside_a_file = blocker / "paddock.db"

    checked = run_check({"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": str(inside_a_file)})

    assert checked.code == 1
    assert checked.has(
        f"FAIL  DATABASE_PATH: is '{inside_a_file}', but {blocker} is a file, not a folder"
    )
    assert checked.lines[-1] == "paddock --check: 1 problem; fix the FAIL lines above"

    a_folder = run_check({"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": str(tmp_path)})
    assert a_folder.code == 1
    assert a_folder.has(
        f"FAIL  DATABASE_PATH: is '{tmp_path}', a folder; it must be the database file's path"
    )


def test_every_malformed_setting_gets_its_own_line(tmp_path: Path) -> None:
    checked = run_check(
        {
            "DISCORD_TOKEN": TOKEN,
            **SECRETS,
            "HIAPI_WEBHOOK_SECRET": "",
            "DATABASE_PATH": str(tmp_path / "paddock.db"),
            "DEV_GUILD_ID": "my-server",
            "HH_PROVIDER": "wavespeed",
            "JOYPIX_PRICE_720P": "cheap",
            "PADDOCK_POLL_SECONDS": "0",
            "PADDOCK_PROVIDER_CONCURRENCY": "many",
            "DEMO_FAIL_RATE": "1.5",
            "PADDOCK_HTTP_PORT": "80800",
            "PADDOCK_LOG_LEVEL": "chatty",
        }
    )

    assert checked.code == 1
    problems = [line for line in checked.lines if line.startswith("FAIL")]
    assert problems == [
        "FAIL  DEV_GUILD_ID: must be a server id (digits), not 'my-server'",
        "FAIL  HH_PROVIDER: is wavespeed, but WAVESPEED_API_KEY is not set",
        "FAIL  DEMO_FAIL_RATE: must be a share between 0 and 1, such as 0.2, not '1.5'",
        "FAIL  JOYPIX_PRICE_720P: must be credits per second (a number >= 0), not 'cheap'",
        "FAIL  PADDOCK_PROVIDER_CONCURRENCY: must be a whole number from 1 to 10000, not "
        "'many'",
        "FAIL  PADDOCK_POLL_SECONDS: must be a number from 0.001 to 600, not '0'",
        "FAIL  PADDOCK_HTTP_PORT: must be a port number from 0 (any free port) to 65535, not "
        "'80800'",
        "FAIL  PADDOCK_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, not 'chatty'",
    ]
    assert checked.lines[-1] == "paddock --check: 8 problems; fix the FAIL lines above"


def test_callbacks_need_the_webhook_secret_and_the_side_door(tmp_path: Path) -> None:
    base = {"DISCORD_TOKEN": TOKEN, **SECRETS, "DATABASE_PATH": str(tmp_path / "p.db"),
            "PADDOCK_PUBLIC_URL": "https://paddock.example.com"}

    no_secret = run_check({**base, "PADDOCK_HTTP_PORT": "8080", "HIAPI_WEBHOOK_SECRET": ""})
    no_port = run_check(base)
    plain_http = run_check({**base, "PADDOCK_HTTP_PORT": "8080",
                            "PADDOCK_PUBLIC_URL": "http://paddock.example.com"})

    assert (no_secret.code, no_port.code, plain_http.code) == (1, 1, 1)
    assert no_secret.has(
        "FAIL  HIAPI_WEBHOOK_SECRET: is not set; it is needed to check HiAPI's callbacks to "
        "PADDOCK_PUBLIC_URL"
    )
    assert no_port.has(
        "FAIL  PADDOCK_PUBLIC_URL: is set but PADDOCK_HTTP_PORT is not: nothing would answer "
        "HiAPI's callbacks"
    )
    assert plain_http.has(
        "FAIL  PADDOCK_PUBLIC_URL: must be the side door's public https address, such as "
        "https://paddock.example.com, not 'http://paddock.example.com'"
    )


def test_without_any_provider_key_the_demo_is_used(tmp_path: Path) -> None:
    checked = run_check(
        {"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": str(tmp_path / "p.db"),
         "DEMO_RENDER_SECONDS": "3", "DEMO_FAIL_RATE": "0.25"}
    )

    assert checked.code == 0, checked.lines
    assert checked.has(
        "ok    default provider: demo: no provider has a key, so videos are free samples; "
        "set a key for real ones"
    )
    assert checked.has(
        "ok    demo: renders take 3 s; 25% of jobs fail, and every prompt with #fail"
    )
    assert checked.has(
        "ok    price demo: 720p 14 credits/s (highest known), 1080p 24 credits/s (highest known)"
    )


def start(settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python bot.py`` with only ``settings`` set (a bad one stops it before it
    connects anywhere)."""
    blank = dict.fromkeys(documented_names(ENV_EXAMPLE.read_text()), "")
    base = {name: value for name, value in os.environ.items() if name not in blank}
    return subprocess.run(
        [sys.executable, "bot.py"], cwd=ROOT, env={**base, **blank, **settings},
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"DISCORD_GUILD_READY_TIMEOUT": ("-5", "must be a number from 0 to 600, not '-5'"),
         "PADDOCK_PROVIDER_CONCURRENCY": (
             "nan", "must be a whole number from 1 to 10000, not 'nan'"),
         "PADDOCK_JOB_TIMEOUT_MINUTES": ("inf", "must be a number from 1 to 10080, not 'inf'")},
        {"PADDOCK_PROVIDER_CONCURRENCY": (
            "inf", "must be a whole number from 1 to 10000, not 'inf'"),
         "PADDOCK_JOB_TIMEOUT_MINUTES": ("nan", "must be a number from 1 to 10080, not 'nan'")},
    ],
    ids=["-5, nan, inf", "inf, nan"],
)
def test_check_and_a_start_refuse_bad_values_with_the_same_lines(
    tmp_path: Path, bad: dict[str, tuple[str, str]]
) -> None:
    settings = {"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": str(tmp_path / "p.db"),
                **{setting: value for setting, (value, _) in bad.items()}}

    checked = run_check(settings)
    started = start(settings)

    assert checked.code == 1
    assert sorted(line for line in checked.lines if line.startswith("FAIL")) == sorted(
        f"FAIL  {setting}: {detail}" for setting, (_, detail) in bad.items())
    assert (started.returncode, started.stdout) == (1, "")
    assert "Traceback" not in started.stderr
    assert sorted(line for line in started.stderr.splitlines() if line.startswith("paddock:")) \
        == sorted(f"paddock: {setting} {detail}" for setting, (_, detail) in bad.items())


def test_port_0_is_any_free_port_for_both(tmp_path: Path) -> None:
    checked = run_check({"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": str(tmp_path / "p.db"),
                         "PADDOCK_HTTP_PORT": "0"})

    assert checked.code == 0, checked.lines
    assert checked.has("ok    side door: http://127.0.0.1 on any free port (0) (/healthz, "
                       "/metrics, /callbacks/hiapi)")


def test_a_database_path_that_cannot_be_a_database_stops_a_start_in_one_line(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be\n")
    inside_a_file = start({"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": str(blocker / "p.db")})
    a_folder = start({"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": str(tmp_path)})
    not_a_database = start({"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": str(blocker)})

    for started in (inside_a_file, a_folder, not_a_database):
        assert started.returncode == 1
        assert "Traceback" not in started.stderr, started.stderr
    assert inside_a_file.stderr.splitlines()[-1] == (
        f"paddock: DATABASE_PATH is '{blocker / 'p.db'}', but {blocker} is a file, not a folder")
    assert a_folder.stderr.splitlines()[-1] == (
        f"paddock: DATABASE_PATH is '{tmp_path}', a folder; it must be the database file's path")
    assert not_a_database.stderr.splitlines()[-1] == (
        f"paddock: DATABASE_PATH is '{blocker}', which cannot be opened and written (file is "
        "not a database); it must be a file the bot can write, in a folder it can write")


def test_credentials_in_a_url_are_never_printed(
    tmp_path: Path, quiet_port: socket.socket
) -> None:
    port = quiet_port.getsockname()[1]
    settings = {
        **good_settings(tmp_path, port),
        "DISCORD_API_BASE": f"http://paddock:proxy-password-never-printed@127.0.0.1:{port}"
                            "/api/v10",
        "JOYPIX_BASE_URL": f"http://paddock:joypix-password-never-printed@127.0.0.1:{port}",
    }

    checked = run_check(settings)
    refused = run_check({**settings, "DISCORD_GATEWAY_URL":
                         "gateway?token=gateway-token-never-printed"})

    assert checked.code == 0, checked.lines
    assert checked.has(
        f"ok    discord: through a proxy (http://paddock:***@127.0.0.1:{port}/api/v10)")
    assert checked.has(
        f"ok    provider joypix: key set (JOYPIX_API_KEY), at http://paddock:***@127.0.0.1:{port}")
    assert refused.has(
        "FAIL  DISCORD_GATEWAY_URL: must be a ws(s) URL, not 'gateway?token=***'")
    assert "never-printed" not in "\n".join(checked.lines + refused.lines)


@pytest.mark.postgres
def test_the_check_names_postgresql_its_version_and_migrations_but_not_the_password(
    pg_cluster: PostgresCluster,
) -> None:
    with pg_cluster.database("check_fresh") as url:
        shown = url.replace(PG_PASSWORD, "***")
        version = pg_cluster.version.split()[0]
        first = run_check({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": url})
        again = run_check({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": url})

    names = PG_MIGRATIONS.names
    assert first.code == 0, first.lines
    assert first.has(
        f"ok    database: PostgreSQL {version} at {shown} is writable; schema at {names[-1]} "
        f"({len(names)} of {len(names)} migrations, {len(names)} applied just now)"
    )
    assert again.has(
        f"ok    database: PostgreSQL {version} at {shown} is writable; schema at {names[-1]} "
        f"({len(names)} of {len(names)} migrations)"
    )
    assert PG_PASSWORD not in "\n".join(first.lines + again.lines)


@pytest.mark.postgres
def test_a_postgresql_database_that_cannot_be_opened_fails_without_the_password(
    pg_cluster: PostgresCluster,
) -> None:
    url = pg_cluster.url("no_such_database")
    checked = run_check({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": url})

    assert checked.code == 1
    failed = [line for line in checked.lines if line.startswith("FAIL")]
    assert len(failed) == 1
    assert failed[0].startswith(
        f"FAIL  DATABASE_URL: is '{url.replace(PG_PASSWORD, '***')}', which cannot be opened "
        "and written ("
    )
    assert 'database "no_such_database" does not exist' in failed[0]
    assert PG_PASSWORD not in "\n".join(checked.lines)


@pytest.mark.postgres
def test_a_postgresql_database_that_cannot_be_opened_stops_a_start_in_one_line(
    pg_cluster: PostgresCluster,
) -> None:
    url = pg_cluster.url("no_such_database")
    started = start({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": url})

    assert started.returncode == 1
    assert "Traceback" not in started.stderr, started.stderr
    last = started.stderr.splitlines()[-1]
    assert last.startswith(
        f"paddock: DATABASE_URL is '{url.replace(PG_PASSWORD, '***')}', which cannot be "
        "opened and written ("
    )
    assert 'database "no_such_database" does not exist' in last
    assert PG_PASSWORD not in started.stdout + started.stderr
