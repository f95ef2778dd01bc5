"""Discord's message limits as the bot checks them (cogs/_limits.py) before sending: every
part of a message over its limit is caught and named, the job card included."""

from __future__ import annotations

import discord
import pytest

from cogs import _limits
from cogs._limits import MessageTooLarge
from cogs._render import reserving_embed
from hh_api import Mode, VideoRequest

REQUEST = VideoRequest(prompt="a horse " * 400, mode=Mode.TEXT, resolution="720p",
                       aspect_ratio="16:9", duration=15, seed=2**31 - 1)


def card(*, provider_title: str = "JoyPix") -> discord.Embed:
    return reserving_embed(REQUEST, job_id="f" * 32, user_id=2**63 - 1, held=10**9,
                           price=10**9, routed=True, provider_title=provider_title)


def test_the_job_card_fits_with_the_longest_prompt_and_figures() -> None:
    embed = card()  # 3,200 characters of prompt: clipped to fit, and checked
    assert (embed.description or "").endswith("…")
    _limits.check_message(embeds=[embed])


def test_a_job_card_over_a_limit_is_caught_and_names_the_part() -> None:
    with pytest.raises(MessageTooLarge, match=r"field 'Cost' is \d+ long, over .* 1024"):
        card(provider_title="P" * 1024)


def embed_with(**parts: object) -> discord.Embed:
    embed = discord.Embed(title=parts.get("title"), description=parts.get("description"))
    if "footer" in parts:
        embed.set_footer(text=parts["footer"])
    if "author" in parts:
        embed.set_author(name=parts["author"])
    for name, value in parts.get("fields", ()):  # type: ignore[attr-defined]
        embed.add_field(name=name, value=value)
    return embed


@pytest.mark.parametrize(("message", "named"), [
    (dict(content="x" * 2001), "the message text is 2001 long"),
    (dict(embeds=[embed_with(title="x" * 257)]), "the embed title is 257"),
    (dict(embeds=[embed_with(description="x" * 4097)]), "the embed description is 4097"),
    (dict(embeds=[embed_with(footer="x" * 2049)]), "the embed footer is 2049"),
    (dict(embeds=[embed_with(author="x" * 257)]), "the embed author is 257"),
    (dict(embeds=[embed_with(fields=[("n", "v")] * 26)]), "the number of embed fields is 26"),
    (dict(embeds=[embed_with(fields=[("n" * 257, "v")])]), "the name of field 'nnn"),
    (dict(embeds=[embed_with(fields=[("Status", "v" * 1025)])]), "field 'Status' is 1025"),
    (dict(embeds=[embed_with(description="x" * 4000, fields=[("n", "v" * 1000)] * 2)]),
     "the embeds together is 6002"),
    (dict(embeds=[embed_with(title="x")] * 11), "the number of embeds is 11"),
])
def test_every_part_over_its_limit_is_caught(message: dict, named: str) -> None:
    with pytest.raises(MessageTooLarge, match=named):
        _limits.check_message(message.get("content"), embeds=message.get("embeds", ()))
