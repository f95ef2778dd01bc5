"""One reader of the settings (paddock/settings.py) for a start and for ``--check``: every
setting the code reads, with bad values, gets the same one line from both.

A start refuses through ``Settings.from_env`` (``bot.py`` prints each problem as
``paddock: <line>``); ``--check`` prints each as ``FAIL  <setting>: <detail>``. Both are
run as subprocesses in tests/test_check.py for the values that used to crash one of them;
here every setting is covered in process.
"""

from __future__ import annotations

import re

import pytest

from hh_api import redact_url
from paddock.preflight import Finding, Verdict, check_settings
from paddock.settings import HH_PROVIDER_CHOICES, Problem, Settings, SettingsError
from tests.settings_docs import names_the_code_reads

TOKEN = "MTIz.settings-test.token"
SERVER_MAX = "18446744073709551615"

# setting -> (bad value, what the line says after the setting's name)
BAD_VALUES: dict[str, list[tuple[str, str]]] = {
    "DISCORD_TOKEN": [
        (" ", "is not set; copy the bot's token from the Developer Portal (your application "
              "> Bot > Reset Token) into the environment or .env"),
    ],
    "DISCORD_API_BASE": [
        ("proxy.local/api/v10", "must be an http(s) URL, not 'proxy.local/api/v10'"),
        ("ws://proxy.local", "must be an http(s) URL, not 'ws://proxy.local'"),
        ("http://proxy.local:port", "must be an http(s) URL, not 'http://proxy.local:port'"),
    ],
    "DISCORD_GATEWAY_URL": [
        ("gateway.local", "must be a ws(s) URL, not 'gateway.local'"),
        ("ftp://gateway.local", "must be a ws(s) URL, not 'ftp://gateway.local'"),
    ],
    "DATABASE_URL": [
        ("mysql://paddock:hunter2@db.example.com/paddock",
         "must be a PostgreSQL URL such as postgresql://user:password@host:5432/paddock, not "
         "'mysql://paddock:***@db.example.com/paddock'"),
        ("db.example.com:5432/paddock",
         "must be a PostgreSQL URL such as postgresql://user:password@host:5432/paddock, not "
         "'db.example.com:5432/paddock'"),
        ("postgresql://paddock:hunter2@db.example.com:port/paddock",
         "must be a PostgreSQL URL such as postgresql://user:password@host:5432/paddock, not "
         "'postgresql://paddock:***@db.example.com:port/paddock'"),
    ],
    "DEV_GUILD_ID": [
        ("my-server", "must be a server id (digits), not 'my-server'"),
        ("-5", "must be a server id (digits), not '-5'"),
        ("0", "must be a server id (digits), not '0'"),
        ("١٢٣", "must be a server id (digits), not '١٢٣'"),
        (SERVER_MAX + "0", f"must be a server id (digits), not '{SERVER_MAX}0'"),
    ],
    "DISCORD_GUILD_READY_TIMEOUT": [
        ("-5", "must be a number from 0 to 600, not '-5'"),
        ("soon", "must be a number from 0 to 600, not 'soon'"),
        ("inf", "must be a number from 0 to 600, not 'inf'"),
        ("nan", "must be a number from 0 to 600, not 'nan'"),
    ],
    "DISCORD_SHARD_COUNT": [
        (value, f"must be a whole number of shards from 1 to 100000, not '{value}'")
        for value in ("two", "0", "-2", "1.5", "100001", "٢")
    ],
    # With DISCORD_SHARD_COUNT=2 beside it (CONTEXT); without it, see the test below.
    "DISCORD_SHARD_IDS": [
        ("0,2", "must be shard ids from 0 to 1 (below DISCORD_SHARD_COUNT=2), separated by "
                "commas, not '0,2'"),
        ("1,1", "must be shard ids each named once, not '1,1'"),
        ("0,,1", "must be shard ids separated by commas, such as 0,1, not '0,,1'"),
        ("0-1", "must be shard ids separated by commas, such as 0,1, not '0-1'"),
        ("-1", "must be shard ids separated by commas, such as 0,1, not '-1'"),
    ],
    "HH_PROVIDER": [
        ("runway", f"must be one of {', '.join(HH_PROVIDER_CHOICES)}, not 'runway'"),
        ("joypix", "is joypix, but JOYPIX_API_KEY is not set"),
        ("auto", "is auto, but no provider has a key: set at least one <PROVIDER>_API_KEY "
                 "(two or more for failover)"),
    ],
    "DEMO_RENDER_SECONDS": [
        ("-1", "must be a number of seconds >= 0, not '-1'"),
        ("inf", "must be a number of seconds >= 0, not 'inf'"),
        ("nan", "must be a number of seconds >= 0, not 'nan'"),
    ],
    "DEMO_FAIL_RATE": [
        ("1.5", "must be a share between 0 and 1, such as 0.2, not '1.5'"),
        ("nan", "must be a share between 0 and 1, such as 0.2, not 'nan'"),
        ("20%", "must be a share between 0 and 1, such as 0.2, not '20%'"),
    ],
    "<PROVIDER>_PRICE_<RES>": [
        ("cheap", "must be credits per second (a number >= 0), not 'cheap'"),
        ("-1", "must be credits per second (a number >= 0), not '-1'"),
        ("inf", "must be credits per second (a number >= 0), not 'inf'"),
        ("NaN", "must be credits per second (a number >= 0), not 'NaN'"),
    ],
    "<PROVIDER>_BASE_URL": [
        ("api.example.com", "must be an http(s) URL such as https://api.example.com, not "
                            "'api.example.com'"),
        ("https://user:hunter2@proxy.example.com/v1",
         "must be a scheme and host only, such as https://api.example.com (the documented "
         "paths are added to it), not 'https://user:***@proxy.example.com/v1'"),
    ],
    "PADDOCK_PROVIDER_CONCURRENCY": [
        (value, f"must be a whole number from 1 to 10000, not '{value}'")
        for value in ("many", "0", "2.5", "inf", "nan", "10001")
    ],
    "PADDOCK_JOB_TIMEOUT_MINUTES": [
        (value, f"must be a number from 1 to 10080, not '{value}'")
        for value in ("soon", "0.5", "inf", "-inf", "nan", "1e400", "10081")
    ],
    "PADDOCK_POLL_SECONDS": [
        (value, f"must be a number from 0.001 to 600, not '{value}'")
        for value in ("often", "0", "inf", "nan", "601")
    ],
    "PADDOCK_LEASE_SECONDS": [
        (value, f"must be a number from 1 to 3600, not '{value}'")
        for value in ("long", "0.5", "0", "-1", "inf", "nan", "3601")
    ],
    "PADDOCK_HTTP_PORT": [
        (value, f"must be a port number from 0 (any free port) to 65535, not '{value}'")
        for value in ("http", "-1", "65536", "80.5", "inf")
    ],
    "PADDOCK_PUBLIC_URL": [
        ("http://paddock.example.com", "must be the side door's public https address, such "
         "as https://paddock.example.com, not 'http://paddock.example.com'"),
        ("https://paddock.example.com/?token=abc", "must be the side door's public https "
         "address, such as https://paddock.example.com, not "
         "'https://paddock.example.com/?token=***'"),
    ],
    "PADDOCK_SQLITE_BUSY_SECONDS": [
        (value, f"must be a number from 0.05 to 600, not '{value}'")
        for value in ("long", "0", "0.01", "inf", "nan", "601")
    ],
    "PADDOCK_LOG_LEVEL": [
        ("chatty", "must be one of DEBUG, INFO, WARNING, ERROR, not 'chatty'"),
    ],
}
# Settings where any text is allowed (a key, a name, a path at the provider), and the one
# checked by opening it (tests/test_check.py runs those).
FREE_TEXT = re.compile(
    r".*_API_KEY|HIAPI_WEBHOOK_SECRET|PADDOCK_HTTP_HOST|.*_(TEXT|IMAGE|REFERENCE)_(MODEL|PATH)"
    r"|PIXELDOJO_ASPECT_RATIO_FIELD|DATABASE_PATH"
)
# What a problem of one setting needs beside it (a side door for a public URL).
CONTEXT = {"PADDOCK_PUBLIC_URL": {"PADDOCK_HTTP_PORT": "8080"},
           "DISCORD_SHARD_IDS": {"DISCORD_SHARD_COUNT": "2"}}
FAMILIES = {"<PROVIDER>": ("JOYPIX", "WAVESPEED", "PIXELDOJO", "HIAPI"),
            "<RES>": ("720P", "1080P")}


def concrete(family: str) -> list[str]:
    names = [family]
    for placeholder, choices in FAMILIES.items():
        names = [n.replace(placeholder, c) for n in names for c in choices]
    return names


CASES = [
    pytest.param(name, value, detail, id=f"{name}={value}")
    for family, values in BAD_VALUES.items()
    for name in concrete(family)
    for value, detail in values
]


@pytest.mark.parametrize(("setting", "value", "detail"), CASES)
def test_a_bad_value_is_one_line_for_a_start_and_for_the_check(
    setting: str, value: str, detail: str
) -> None:
    env = {"DISCORD_TOKEN": TOKEN, **CONTEXT.get(setting, {}), setting: value}

    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)

    assert refused.value.problems == [Problem(setting, detail)]
    assert str(refused.value) == f"{setting} {detail}"
    assert check_settings(env) == [Finding(setting, detail, Verdict.PROBLEM)]


def test_every_setting_the_code_reads_is_tried_with_bad_values() -> None:
    tried = {name for family in BAD_VALUES for name in concrete(family)}
    untried = sorted(
        name for name in names_the_code_reads()
        if name not in tried and not FREE_TEXT.fullmatch(name)
    )
    assert untried == []


def test_shard_ids_without_a_shard_count_are_refused() -> None:
    env = {"DISCORD_TOKEN": TOKEN, "DISCORD_SHARD_IDS": "0,1"}
    detail = ("is '0,1' but DISCORD_SHARD_COUNT is not set: set the total number of shards "
              "of the bot, across every process")

    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)

    assert refused.value.problems == [Problem("DISCORD_SHARD_IDS", detail)]
    assert check_settings(env) == [Finding("DISCORD_SHARD_IDS", detail, Verdict.PROBLEM)]


@pytest.mark.parametrize(
    ("env", "count", "ids", "plan"),
    [
        ({}, None, None, "one connection, no sharding (DISCORD_SHARD_COUNT unset)"),
        ({"DISCORD_SHARD_COUNT": "2"}, 2, None, "shards 0,1 of 2: all of them, in this process"),
        ({"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": " 3, 1"}, 4, (3, 1),
         "shards 3,1 of 4: the others run in other processes"),
    ],
)
def test_the_shard_plan_is_read_and_shown_by_the_check(
    env: dict[str, str], count: int | None, ids: tuple[int, ...] | None, plan: str
) -> None:
    settings = Settings.from_env({"DISCORD_TOKEN": TOKEN, **env})

    assert (settings.shard_count, settings.shard_ids) == (count, ids)
    shown = [f for f in check_settings({"DISCORD_TOKEN": TOKEN, **env}) if f.item == "gateway"]
    assert shown == [Finding("gateway", plan, Verdict.OK if count else Verdict.OFF)]


def test_every_bad_value_is_listed_at_once() -> None:
    env = {"DISCORD_TOKEN": "", "DEV_GUILD_ID": "x", "PADDOCK_POLL_SECONDS": "nan",
           "PADDOCK_LOG_LEVEL": "loud"}

    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)

    assert [problem.setting for problem in refused.value.problems] == [
        "DISCORD_TOKEN", "DEV_GUILD_ID", "PADDOCK_POLL_SECONDS", "PADDOCK_LOG_LEVEL"]
    assert len(check_settings(env)) == 4


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:hunter2@proxy.local:3128/api/v10",
         "http://user:***@proxy.local:3128/api/v10"),
        ("https://hunter2@proxy.local", "https://***@proxy.local"),
        ("wss://gw.local/?v=10&token=hunter2&encoding=json",
         "wss://gw.local/?v=10&token=***&encoding=json"),
        ("https://x.local/?key=hunter2&api_key=hunter2&Secret=hunter2&sig=hunter2",
         "https://x.local/?key=***&api_key=***&Secret=***&sig=***"),
        ("https://paddock.example.com", "https://paddock.example.com"),
        ("http://[::1", "***"),
    ],
)
def test_a_url_is_shown_without_its_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown
