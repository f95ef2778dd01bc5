"""Discord's message limits, in one place: every message the bot builds is checked here.

Also the one place member text is made safe to show: Markdown escaped (a prompt's
``[masked](link)`` must not become a link under the bot's name) and clipped to fit.
Limits are Discord's documented ones (message, embed, component and modal objects).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import discord

CONTENT = 2000
EMBEDS = 10
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR = 256
EMBED_TOTAL = 6000
ACTION_ROWS = 5
BUTTONS_PER_ROW = 5
BUTTON_LABEL = 80
LINK_URL = 512  # a link button's URL
CUSTOM_ID = 100
SELECT_OPTIONS = 25
SELECT_PLACEHOLDER = 150
SELECT_OPTION_LABEL = 100
MODAL_TITLE = 45
TEXT_INPUT_LABEL = 45
TEXT_INPUT_VALUE = 4000
CHOICE_NAME = 100
CHOICES = 25

ECHO = 100  # an option value repeated back in an answer: enough to recognise it

ELLIPSIS = "…"
_LINE_START = re.compile(r"(?m)^(\s*)([#>\-*+]|\d+\.)")


class MessageTooLarge(ValueError):
    """A message the bot built breaks one of Discord's limits; says which part."""

    def __init__(self, part: str, size: int, limit: int) -> None:
        super().__init__(f"{part} is {size} long, over Discord's limit of {limit}")
        self.part = part


def clip(text: str, limit: int) -> str:
    """``text``, cut to at most ``limit`` characters with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    if cut.endswith("\\") and not cut.endswith("\\\\"):
        cut = cut[:-1]  # never leave half an escape
    return cut + ELLIPSIS


def escape(text: str) -> str:
    """Member text with its Markdown shown as typed, never rendered."""
    escaped = discord.utils.escape_markdown(text)
    escaped = escaped.replace("](", "]\\(")  # a masked link needs "[...](": break both halves
    return _LINE_START.sub(_escape_line_start, escaped)


def _escape_line_start(match: re.Match[str]) -> str:
    indent, mark = match[1], match[2]
    if mark[0].isdigit():
        return f"{indent}{mark[:-1]}\\."  # "1\." : a backslash before a digit would show
    return f"{indent}\\{mark}"


def member_text(text: str, limit: int) -> str:
    """Member text escaped once, then clipped to ``limit`` characters."""
    return clip(escape(text), limit)


def echo(value: str, limit: int = ECHO) -> str:
    """An option value repeated back to the member: escaped, clipped, in quotes."""
    return f"'{member_text(value.strip(), limit)}'"


def link_fits_button(url: str) -> bool:
    return len(url) <= LINK_URL


def check_message(
    content: str | None = None,
    *,
    embeds: Sequence[discord.Embed] = (),
    view: discord.ui.View | None = None,
) -> None:
    """Raise :class:`MessageTooLarge` if Discord would refuse this message."""
    if content is not None and len(content) > CONTENT:
        raise MessageTooLarge("the message text", len(content), CONTENT)
    if len(embeds) > EMBEDS:
        raise MessageTooLarge("the number of embeds", len(embeds), EMBEDS)
    total = 0
    for embed in embeds:
        total += _check_embed(embed)
    if total > EMBED_TOTAL:
        raise MessageTooLarge("the embeds together", total, EMBED_TOTAL)
    if view is not None:
        _check_components(view.to_components())


def checked(embed: discord.Embed) -> discord.Embed:
    """``embed``, once it passed :func:`check_message`."""
    check_message(embeds=[embed])
    return embed


def _check_embed(embed: discord.Embed) -> int:
    # Every message the bot sends passes here, first answers too: a part is named (its
    # text formatted) only once it is over its limit.
    size = 0
    for part, text, limit in (
        ("the embed title", embed.title, EMBED_TITLE),
        ("the embed description", embed.description, EMBED_DESCRIPTION),
        ("the embed footer", embed.footer.text, FOOTER),
        ("the embed author", embed.author.name, AUTHOR),
    ):
        size += _measure(part, text or "", limit)
    fields = embed.fields
    if len(fields) > EMBED_FIELDS:
        raise MessageTooLarge("the number of embed fields", len(fields), EMBED_FIELDS)
    for field in fields:
        name, value = field.name or "", field.value or ""
        if len(name) > FIELD_NAME:
            raise MessageTooLarge(f"the name of field {name!r}", len(name), FIELD_NAME)
        if len(value) > FIELD_VALUE:
            raise MessageTooLarge(f"field {name!r}", len(value), FIELD_VALUE)
        size += len(name) + len(value)
    return size


def _measure(part: str, text: str, limit: int) -> int:
    if len(text) > limit:
        raise MessageTooLarge(part, len(text), limit)
    return len(text)


def _check_components(rows: Sequence[dict[str, Any]]) -> None:
    if len(rows) > ACTION_ROWS:
        raise MessageTooLarge("the rows of buttons", len(rows), ACTION_ROWS)
    for row in rows:
        for item in row.get("components", []):
            _measure("a button label", item.get("label") or "", BUTTON_LABEL)
            if item.get("url"):
                _measure("a link button's URL", item["url"], LINK_URL)
            if item.get("custom_id"):
                _measure("a custom_id", item["custom_id"], CUSTOM_ID)
            if item.get("placeholder"):
                _measure("a select's placeholder", item["placeholder"], SELECT_PLACEHOLDER)
            if len(item.get("options") or []) > SELECT_OPTIONS:
                raise MessageTooLarge("a select's options", len(item["options"]), SELECT_OPTIONS)
