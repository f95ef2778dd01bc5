"""Every setting the code reads is in .env.example and in README's settings table, and
.env.example names nothing the code ignores (see tests/settings_docs.py for how)."""

from __future__ import annotations

from tests.settings_docs import (
    ENV_EXAMPLE,
    covers,
    documented_names,
    names_asked_by_the_readers,
    names_read_literally,
    names_the_code_reads,
    readme_settings_rows,
)


def test_the_scan_finds_literal_and_built_names() -> None:
    assert {"DISCORD_TOKEN", "HH_PROVIDER"} <= names_read_literally()
    built = names_asked_by_the_readers()
    assert {"JOYPIX_API_KEY", "HIAPI_PRICE_1080P", "WAVESPEED_REFERENCE_MODEL"} <= built
    # Read through settings.database_location, which --check and a start share.
    assert {"DATABASE_PATH", "DATABASE_URL"} <= built


def test_every_setting_the_code_reads_is_in_env_example() -> None:
    text = ENV_EXAMPLE.read_text()
    missing = sorted(name for name in names_the_code_reads() if not covers(text, name))
    assert missing == []


def test_every_setting_the_code_reads_is_in_the_readme_settings_table() -> None:
    table = "\n".join(readme_settings_rows())
    missing = sorted(name for name in names_the_code_reads() if not covers(table, name))
    assert missing == []


def test_env_example_names_only_settings_the_code_reads() -> None:
    stale = sorted(documented_names(ENV_EXAMPLE.read_text()) - names_the_code_reads())
    assert stale == []
