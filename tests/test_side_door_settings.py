"""The side door's and the logs' settings: read from the environment, refused in one line."""

from __future__ import annotations

import pytest

from bot import Settings, SettingsError
from hh_api import Secret


def test_the_side_door_is_off_and_logs_are_info_by_default() -> None:
    settings = Settings.from_env({"DISCORD_TOKEN": "abc"})
    assert (settings.http_port, settings.http_host, settings.public_url) == (
        None, "127.0.0.1", None)
    assert (settings.hiapi_webhook_secret, settings.hiapi_callback_url) == (None, None)
    assert settings.log_level == "INFO"


def test_the_side_door_settings_are_read() -> None:
    settings = Settings.from_env({
        "DISCORD_TOKEN": "abc",
        "HIAPI_API_KEY": "hi-key",
        "PADDOCK_HTTP_PORT": "8080",
        "PADDOCK_HTTP_HOST": "0.0.0.0",
        "PADDOCK_PUBLIC_URL": "https://paddock.example.org/",
        "HIAPI_WEBHOOK_SECRET": " whsec-123 ",
        "PADDOCK_LOG_LEVEL": "debug",
    })
    assert (settings.http_port, settings.http_host) == (8080, "0.0.0.0")
    assert settings.public_url == "https://paddock.example.org"
    assert settings.hiapi_callback_url == "https://paddock.example.org/callbacks/hiapi"
    assert settings.hiapi_webhook_secret == Secret("whsec-123")
    assert settings.log_level == "DEBUG"
    assert "whsec-123" not in repr(settings)


def test_a_public_url_needs_no_secret_when_hiapi_has_no_key() -> None:
    settings = Settings.from_env({"DISCORD_TOKEN": "abc", "JOYPIX_API_KEY": "k",
                                  "PADDOCK_HTTP_PORT": "0",
                                  "PADDOCK_PUBLIC_URL": "https://paddock.example.org"})
    assert settings.http_port == 0  # any free port
    assert settings.hiapi_webhook_secret is None


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"PADDOCK_HTTP_PORT": "http"},
         "PADDOCK_HTTP_PORT must be a port number from 0 (any free port) to 65535, not 'http'"),
        ({"PADDOCK_HTTP_PORT": "70000"},
         "PADDOCK_HTTP_PORT must be a port number from 0 (any free port) to 65535, "
         "not '70000'"),
        ({"PADDOCK_HTTP_PORT": "8080", "PADDOCK_PUBLIC_URL": "http://paddock.example.org"},
         "PADDOCK_PUBLIC_URL must be the side door's public https address, such as "
         "https://paddock.example.com, not 'http://paddock.example.org'"),
        ({"PADDOCK_PUBLIC_URL": "https://paddock.example.org"},
         "PADDOCK_PUBLIC_URL is set but PADDOCK_HTTP_PORT is not: "
         "nothing would answer HiAPI's callbacks"),
        ({"PADDOCK_HTTP_PORT": "8080", "PADDOCK_PUBLIC_URL": "https://paddock.example.org",
          "HIAPI_API_KEY": "hi-key"},
         "HIAPI_WEBHOOK_SECRET is not set; it is needed to check HiAPI's "
         "callbacks to PADDOCK_PUBLIC_URL"),
        ({"PADDOCK_LOG_LEVEL": "loud"},
         "PADDOCK_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, not 'loud'"),
    ],
    ids=["port-word", "port-range", "not-https", "no-port", "no-secret", "log-level"],
)
def test_a_bad_side_door_setting_is_refused_in_one_line(env, line) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"DISCORD_TOKEN": "abc", **env})
    assert str(refused.value) == line


def test_the_settings_never_show_the_token_or_a_key_or_the_secret() -> None:
    settings = Settings.from_env({
        "DISCORD_TOKEN": "MTIz.token-that-must-not-show",
        "HIAPI_API_KEY": "key-that-must-not-show",
        "PADDOCK_HTTP_PORT": "8080",
        "PADDOCK_PUBLIC_URL": "https://paddock.example.org",
        "HIAPI_WEBHOOK_SECRET": "secret-that-must-not-show",
    })
    shown = f"{settings!r} {settings}"
    assert "must-not-show" not in shown
    assert "discord_gateway_url" in shown  # the rest of the settings do show


def test_urls_in_the_settings_repr_show_no_credentials() -> None:
    settings = Settings.from_env({
        "DISCORD_TOKEN": "abc",
        "DISCORD_API_BASE": "https://bob:hunter2@proxy.example.org/api/v10",
        "DISCORD_GATEWAY_URL": "wss://gw.example.org/?token=gw-secret",
        "DATABASE_URL": "postgresql://paddock:db-secret@db.example.org:5432/paddock",
    })
    assert settings.discord_api_base == "https://bob:hunter2@proxy.example.org/api/v10"
    assert settings.database == "postgresql://paddock:db-secret@db.example.org:5432/paddock"
    shown = repr(settings)
    assert "hunter2" not in shown and "gw-secret" not in shown and "db-secret" not in shown
    assert "proxy.example.org" in shown and "gw.example.org" in shown
    assert "db.example.org" in shown
