"""Shared fixtures. The fake Discord's live in tests/fakes/discord/fixtures.py."""

from __future__ import annotations

from tests.fakes.discord.fixtures import fake_discord, paddock, paddock_settings, probe_bot

__all__ = ["fake_discord", "paddock", "paddock_settings", "probe_bot"]
