"""The README's figures are the code's: the invite link's permissions and the providers'
table (modes, limits, prices) are recomputed here from discord.py and hh_api."""

from __future__ import annotations

import re

import discord

from hh_api import PROVIDER_NAMES, Mode, PriceTable, ProviderConfig, VideoRequest
from hh_api.providers import PROVIDERS
from tests.settings_docs import README


def section(title: str) -> str:
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def table(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_the_invite_link_asks_for_exactly_the_listed_permissions() -> None:
    invite = section("Invite the bot")
    link = re.search(r"https://discord\.com/oauth2/authorize\?\S+", invite)
    assert link
    assert "scope=bot+applications.commands" in link.group(0)
    asked = int(re.search(r"permissions=(\d+)", link.group(0)).group(1))  # type: ignore[union-attr]

    rows = table(invite)[2:]
    listed = discord.Permissions.none()
    for name, bit, _why in rows:
        flag = name.lower().replace(" ", "_").replace("view_channels", "view_channel")
        assert getattr(discord.Permissions, flag).flag == int(bit), name
        setattr(listed, flag, True)

    assert listed.value == asked
    assert f"**{asked}**" in invite


def provider_table() -> dict[str, list[str]]:
    rows = table(section("Providers: what each offers and costs"))
    header, body = rows[0], rows[2:]
    titles = [PROVIDERS[name].title for name in PROVIDER_NAMES]
    assert header[1:] == titles
    return {row[0]: row[1:] for row in body}


def test_the_provider_table_is_hh_apis() -> None:
    cells = provider_table()
    prices = PriceTable()
    for column, name in enumerate(PROVIDER_NAMES):
        offers = PROVIDERS[name](ProviderConfig(name=name)).offers
        reference = offers[Mode.REFERENCE]

        def cell(row: str, column: int = column) -> str:
            return cells[row][column]

        assert cell("modes") == ", ".join(mode.value for mode in offers)
        assert cell("resolutions") == ", ".join(reference.resolutions)
        durations = {(offer.min_duration, offer.max_duration) for offer in offers.values()}
        assert [f"{low}-{high} s" for low, high in durations] == [cell("durations")]
        assert cell("aspect ratios (text, reference)") == ", ".join(reference.aspect_ratios or ())
        assert cell("reference pictures").startswith(
            f"{reference.min_images}-{reference.max_images}"
        )
        seed = reference.seed_range
        assert cell("seed") == ("none" if seed is None else f"{seed[0]}-{seed[1]}")
        assert cell("negative prompt") == ("yes" if reference.negative_prompt else "no")
        if Mode.IMAGE not in offers:
            assert cell("image mode picture") == "not offered"

        rates = [prices.rate(name, resolution) for resolution in ("720p", "1080p")]
        sources = {prices.source(name, resolution) for resolution in ("720p", "1080p")}
        assert len(sources) == 1
        assert cell("price 720p / 1080p, credits/s") == (
            f"{rates[0]} / {rates[1]} ({sources.pop()})"
        )
        five_seconds = [
            prices.credits(name, VideoRequest("x", Mode.TEXT, resolution=r, duration=5))
            for r in ("720p", "1080p")
        ]
        assert cell("5 s at 720p / 1080p, credits") == " / ".join(map(str, five_seconds))


def first_commands() -> list[str]:
    """The two commands at the top of the README (install and run the bot, the tests)."""
    block = re.search(r"```sh\n(.*?)```", README.read_text(), re.S)
    assert block
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]


def test_the_install_lines_use_a_virtual_environment_and_ci_runs_the_test_line() -> None:
    bot_line, test_line = first_commands()
    for line in (bot_line, test_line):  # PEP 668 systems refuse a bare pip install
        assert line.startswith("python3 -m venv .venv && .venv/bin/pip install -r ")
    assert bot_line.endswith(".venv/bin/python bot.py")
    assert test_line.endswith(".venv/bin/python -m pytest")
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == test_line


def test_first_steps_follow_the_commands_invite_allowance_video() -> None:
    text = README.read_text()
    steps = section("First steps")
    assert text.index("```sh") < text.index("## First steps") < text.index("## Create the")
    order = [steps.index(words) for words in ("Invite the bot", "/quota allowance amount:",
                                               "/video text prompt:")]
    assert order == sorted(order)
