"""A job only waiting at its provider costs status checks and nothing else: a check that
finds nothing new writes nothing to the database.

Observed from a second connection to the bot's SQLite file: ``PRAGMA data_version``
changes whenever another connection commits. Leases are renewed once an hour here, so
that nothing else writes while the job waits.
"""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from tests.bot.support import decided, give_credits


@pytest.fixture
def paddock_settings(paddock_settings):
    runner = dataclasses.replace(paddock_settings.runner, lease_ttl=3 * 3600.0)
    return dataclasses.replace(paddock_settings, runner=runner)


async def test_a_status_check_that_finds_nothing_new_writes_nothing(
    fake_discord, paddock, providers
) -> None:
    joypix = providers["joypix"]
    joypix.steps = ["pending", "processing"]  # then processing at every check
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 200)
    card = await decided(await alice.slash("video text", prompt="a slow lighthouse"))
    await fake_discord.wait_for(lambda: "Rendering on" in card.text)
    await joypix.wait_for_requests("status", len(joypix.polls()) + 1)  # its state is kept

    watcher = sqlite3.connect(paddock.services.store.path)
    try:
        [before] = watcher.execute("PRAGMA data_version").fetchone()
        await joypix.wait_for_requests("status", len(joypix.polls()) + 5)
        [after] = watcher.execute("PRAGMA data_version").fetchone()
    finally:
        watcher.close()
    assert after == before
