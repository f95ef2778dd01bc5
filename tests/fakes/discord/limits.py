"""What Discord refuses, checked on every message, modal and command the bot sends.

Each check raises :class:`~tests.fakes.discord.errors.DiscordError` with the status,
code and error path Discord uses, so a bot that passes here does not fail there.
Limits are Discord's documented ones (message, embed, component, modal and application
command objects in the developer documentation).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from tests.fakes.discord import errors

CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELDS_MAX = 25
EMBED_FIELD_NAME_MAX = 256
EMBED_FIELD_VALUE_MAX = 1024
EMBED_FOOTER_MAX = 2048
EMBED_AUTHOR_MAX = 256
EMBED_TOTAL_MAX = 6000
ACTION_ROWS_MAX = 5
BUTTONS_PER_ROW_MAX = 5
COMPONENTS_V2_TOTAL_MAX = 40
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
LINK_URL_MAX = 512  # a link button's url
SELECT_OPTION_TEXT_MAX = 100  # a select option's label, value and description
SELECT_OPTIONS_MAX = 25
SELECT_PLACEHOLDER_MAX = 150
FILES_MAX = 10
MODAL_TITLE_MAX = 45
MODAL_COMPONENTS_MAX = 5
TEXT_INPUT_LABEL_MAX = 45
TEXT_INPUT_VALUE_MAX = 4000
TEXT_INPUT_PLACEHOLDER_MAX = 100
COMMAND_NAME_MAX = 32
COMMAND_DESCRIPTION_MAX = 100
COMMAND_OPTIONS_MAX = 25
COMMAND_CHOICES_MAX = 25
CHOICE_NAME_MAX = 100
CHOICE_STRING_VALUE_MAX = 100
# "Slash commands can have a maximum of 8000 characters for combined name, description,
# and value properties" (application-commands, "Slash Commands"; it was 4000 until 2024).
COMMAND_SIZE_MAX = 8000
# "100 global CHAT_INPUT commands, 15 global USER commands, 15 global MESSAGE commands,
# 1 global PRIMARY_ENTRY_POINT command", and as many per guild (application-commands).
COMMANDS_PER_TYPE_MAX = {1: 100, 2: 15, 3: 15, 4: 1}
COMMAND_CHAT_INPUT, COMMAND_USER, COMMAND_MESSAGE = 1, 2, 3  # application command types
MESSAGE_ATTACHMENTS_MAX = 10
COMMANDS_PER_OVERWRITE_MAX = 130
MAX_APPLICATION_COMMANDS = 30032
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024

FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15

COMPONENT_ACTION_ROW = 1
COMPONENT_BUTTON = 2
COMPONENT_STRING_SELECT = 3
COMPONENT_TEXT_INPUT = 4
COMPONENT_SELECTS = {3, 5, 6, 7, 8}
COMPONENT_LABEL = 18
BUTTON_STYLE_LINK = 5
BUTTON_STYLE_PREMIUM = 6

_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


def check_message(
    payload: dict[str, Any],
    files: Sequence[tuple[str, bytes]] = (),
    *,
    upload_limit: int = DEFAULT_UPLOAD_LIMIT,
    editing: bool = False,
    keeps_attachments: bool = False,
) -> None:
    """Refuse a message body Discord would refuse.

    ``files`` are the uploaded ``(filename, bytes)``; ``upload_limit`` is the channel's
    ``attachment_size_limit``. ``editing`` allows an edit that changes only some fields;
    ``keeps_attachments`` tells the emptiness check that the message keeps old files.
    """
    content = payload.get("content")
    if content is not None and len(content) > CONTENT_MAX:
        raise errors.too_long(("content",), CONTENT_MAX)
    embeds = payload.get("embeds") or []
    check_embeds(embeds)
    flags = int(payload.get("flags") or 0)
    components = payload.get("components") or []
    if flags & FLAG_COMPONENTS_V2:
        check_components_v2(components)
    else:
        check_action_rows(components)
    if len(files) > FILES_MAX:
        raise errors.too_long(("files",), FILES_MAX)
    # "The file upload size limit applies to each file in a request" (Discord's
    # reference, "Uploading Files"): files are measured one by one, not summed.
    for _name, data in files:
        if len(data) > upload_limit:
            raise errors.entity_too_large()
    if editing:
        return
    has_body = bool(content) or bool(embeds) or bool(components) or bool(files)
    if not (has_body or keeps_attachments or payload.get("sticker_ids") or payload.get("poll")):
        raise errors.empty_message()


def check_embeds(embeds: Sequence[dict[str, Any]]) -> None:
    """Discord's embed limits, per field and 6000 characters across the whole message."""
    if len(embeds) > EMBEDS_MAX:
        raise errors.too_long(("embeds",), EMBEDS_MAX)
    total = 0
    for index, embed in enumerate(embeds):
        total += _check_embed(index, embed)
    if total > EMBED_TOTAL_MAX:
        raise errors.invalid_form_body(
            ("embeds",),
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {EMBED_TOTAL_MAX}",
        )


def _check_embed(index: int, embed: dict[str, Any]) -> int:
    path: tuple[str | int, ...] = ("embeds", index)
    size = 0
    for key, limit in (("title", EMBED_TITLE_MAX), ("description", EMBED_DESCRIPTION_MAX)):
        text = embed.get(key) or ""
        if len(text) > limit:
            raise errors.too_long((*path, key), limit)
        size += len(text)
    fields = embed.get("fields") or []
    if len(fields) > EMBED_FIELDS_MAX:
        raise errors.too_long((*path, "fields"), EMBED_FIELDS_MAX)
    for number, field in enumerate(fields):
        for key, limit in (("name", EMBED_FIELD_NAME_MAX), ("value", EMBED_FIELD_VALUE_MAX)):
            text = field.get(key)
            if not text:
                raise errors.required((*path, "fields", number, key))
            if len(text) > limit:
                raise errors.too_long((*path, "fields", number, key), limit)
            size += len(text)
    for key, inner, limit in (
        ("footer", "text", EMBED_FOOTER_MAX),
        ("author", "name", EMBED_AUTHOR_MAX),
    ):
        text = (embed.get(key) or {}).get(inner) or ""
        if len(text) > limit:
            raise errors.too_long((*path, key, inner), limit)
        size += len(text)
    return size


def check_action_rows(rows: Sequence[dict[str, Any]], *, path: tuple[str | int, ...] = ()) -> None:
    """Classic components: up to 5 action rows of up to 5 buttons or one select."""
    if len(rows) > ACTION_ROWS_MAX:
        raise errors.too_long((*path, "components"), ACTION_ROWS_MAX)
    seen: set[str] = set()
    for row_index, row in enumerate(rows):
        row_path = (*path, "components", row_index)
        if row.get("type") != COMPONENT_ACTION_ROW:
            raise errors.invalid_form_body(
                (*row_path, "type"),
                "UNION_TYPE_CHOICES",
                'Value of field "type" must be one of (1,).',
            )
        children = row.get("components") or []
        if not children:
            raise errors.bad_length((*row_path, "components"), 1, BUTTONS_PER_ROW_MAX)
        has_select = any(child.get("type") in COMPONENT_SELECTS for child in children)
        limit = 1 if has_select else BUTTONS_PER_ROW_MAX
        if len(children) > limit:
            raise errors.too_long((*row_path, "components"), limit)
        for child_index, child in enumerate(children):
            _check_interactive(child, (*row_path, "components", child_index), seen)


def check_components_v2(components: Sequence[dict[str, Any]]) -> None:
    """Components v2 layouts: 40 components in all, each custom_id within limits."""
    seen: set[str] = set()
    count = 0
    for path, component in _walk_components(components, ("components",)):
        count += 1
        _check_interactive(component, path, seen)
    if count > COMPONENTS_V2_TOTAL_MAX:
        raise errors.too_long(("components",), COMPONENTS_V2_TOTAL_MAX)


def _walk_components(
    components: Sequence[dict[str, Any]], path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    for index, component in enumerate(components):
        here = (*path, index)
        yield here, component
        yield from _walk_components(component.get("components") or [], (*here, "components"))
        for key in ("accessory", "component"):
            if isinstance(component.get(key), dict):
                yield (*here, key), component[key]


def _check_interactive(
    component: dict[str, Any], path: tuple[str | int, ...], seen: set[str]
) -> None:
    kind = component.get("type")
    if kind == COMPONENT_BUTTON:
        label = component.get("label") or ""
        if len(label) > BUTTON_LABEL_MAX:
            raise errors.too_long((*path, "label"), BUTTON_LABEL_MAX)
        if component.get("style") == BUTTON_STYLE_LINK:
            url = component.get("url") or ""
            if not url:
                raise errors.required((*path, "url"))
            if len(url) > LINK_URL_MAX:
                raise errors.too_long((*path, "url"), LINK_URL_MAX)
            return
        if component.get("style") == BUTTON_STYLE_PREMIUM:
            return
        _check_custom_id(component, path, seen)
    elif kind in COMPONENT_SELECTS:
        _check_custom_id(component, path, seen)
        if len(component.get("placeholder") or "") > SELECT_PLACEHOLDER_MAX:
            raise errors.too_long((*path, "placeholder"), SELECT_PLACEHOLDER_MAX)
        if kind == COMPONENT_STRING_SELECT:
            options = component.get("options") or []
            if not 1 <= len(options) <= SELECT_OPTIONS_MAX:
                raise errors.bad_length((*path, "options"), 1, SELECT_OPTIONS_MAX)
            for number, option in enumerate(options):
                for key in ("label", "value", "description"):
                    if len(option.get(key) or "") > SELECT_OPTION_TEXT_MAX:
                        raise errors.too_long(
                            (*path, "options", number, key), SELECT_OPTION_TEXT_MAX
                        )


def _check_custom_id(
    component: dict[str, Any], path: tuple[str | int, ...], seen: set[str]
) -> None:
    custom_id = component.get("custom_id")
    if not custom_id:
        raise errors.required((*path, "custom_id"))
    if len(custom_id) > CUSTOM_ID_MAX:
        raise errors.too_long((*path, "custom_id"), CUSTOM_ID_MAX)
    if custom_id in seen:
        raise errors.invalid_form_body(
            (*path, "custom_id"),
            "COMPONENT_CUSTOM_ID_DUPLICATED",
            "Component custom id cannot be duplicated",
        )
    seen.add(custom_id)


def check_modal(data: dict[str, Any]) -> None:
    """A modal: title up to 45, custom_id up to 100, 1 to 5 rows or labels of inputs."""
    title = data.get("title") or ""
    if not 1 <= len(title) <= MODAL_TITLE_MAX:
        raise errors.bad_length(("data", "title"), 1, MODAL_TITLE_MAX)
    custom_id = data.get("custom_id") or ""
    if not 1 <= len(custom_id) <= CUSTOM_ID_MAX:
        raise errors.bad_length(("data", "custom_id"), 1, CUSTOM_ID_MAX)
    components = data.get("components") or []
    if not 1 <= len(components) <= MODAL_COMPONENTS_MAX:
        raise errors.bad_length(("data", "components"), 1, MODAL_COMPONENTS_MAX)
    seen: set[str] = set()
    for path, component in _walk_components(components, ("data", "components")):
        if component.get("type") == COMPONENT_TEXT_INPUT:
            _check_custom_id(component, path, seen)
            _check_text_input(component, path)
        elif component.get("type") == COMPONENT_LABEL:
            if len(component.get("label") or "") > TEXT_INPUT_LABEL_MAX:
                raise errors.too_long((*path, "label"), TEXT_INPUT_LABEL_MAX)
        elif component.get("type") in COMPONENT_SELECTS:
            _check_custom_id(component, path, seen)


def _check_text_input(component: dict[str, Any], path: tuple[str | int, ...]) -> None:
    if len(component.get("label") or "") > TEXT_INPUT_LABEL_MAX:
        raise errors.too_long((*path, "label"), TEXT_INPUT_LABEL_MAX)
    if len(component.get("value") or "") > TEXT_INPUT_VALUE_MAX:
        raise errors.too_long((*path, "value"), TEXT_INPUT_VALUE_MAX)
    if len(component.get("placeholder") or "") > TEXT_INPUT_PLACEHOLDER_MAX:
        raise errors.too_long((*path, "placeholder"), TEXT_INPUT_PLACEHOLDER_MAX)
    for key in ("min_length", "max_length"):
        value = component.get(key)
        if value is not None and not 0 <= value <= TEXT_INPUT_VALUE_MAX:
            raise errors.invalid_form_body(
                (*path, key),
                "NUMBER_TYPE_MAX",
                f"int value should be less than or equal to {TEXT_INPUT_VALUE_MAX}.",
            )


def check_autocomplete(data: dict[str, Any]) -> None:
    """An autocomplete answer offers at most 25 choices."""
    choices = data.get("choices") or []
    if len(choices) > COMMAND_CHOICES_MAX:
        raise errors.too_long(("data", "choices"), COMMAND_CHOICES_MAX)


def check_commands(commands: Sequence[dict[str, Any]], *, single: bool = False) -> None:
    """A bulk overwrite of application commands (or, with ``single``, the one command
    of a create, whose errors Discord reports from the body's root), as Discord
    validates it."""
    if len(commands) > COMMANDS_PER_OVERWRITE_MAX:
        raise errors.too_long((), COMMANDS_PER_OVERWRITE_MAX)
    names: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        kind = int(command.get("type", 1))
        path: tuple[str | int, ...] = () if single else (index,)
        _check_command_like(command, path, chat_input=kind == 1)
        if kind == 1 and command_size(command) > COMMAND_SIZE_MAX:
            raise errors.invalid_form_body(
                path,
                "APPLICATION_COMMAND_TOO_LARGE",
                f"Command exceeds maximum size ({COMMAND_SIZE_MAX})",
            )
        key = (kind, command["name"])
        if key in names:
            raise errors.invalid_form_body(
                (index, "name"),
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Application command names must be unique ({command['name']})",
            )
        names.add(key)


def _check_command_like(
    item: dict[str, Any], path: tuple[str | int, ...], *, chat_input: bool
) -> None:
    name = item.get("name") or ""
    if not 1 <= len(name) <= COMMAND_NAME_MAX:
        raise errors.bad_length((*path, "name"), 1, COMMAND_NAME_MAX)
    if chat_input and (not _COMMAND_NAME.match(name) or name != name.lower()):
        raise errors.invalid_form_body(
            (*path, "name"),
            "APPLICATION_COMMAND_INVALID_NAME",
            f"Command name is invalid ({name})",
        )
    if not chat_input:
        return
    description = item.get("description") or ""
    if not 1 <= len(description) <= COMMAND_DESCRIPTION_MAX:
        raise errors.bad_length((*path, "description"), 1, COMMAND_DESCRIPTION_MAX)
    options = item.get("options") or []
    if len(options) > COMMAND_OPTIONS_MAX:
        raise errors.too_long((*path, "options"), COMMAND_OPTIONS_MAX)
    optional_seen = False
    option_names: set[str] = set()
    for number, option in enumerate(options):
        option_path = (*path, "options", number)
        _check_command_like(option, option_path, chat_input=True)
        if option["name"] in option_names:
            raise errors.invalid_form_body(
                (*option_path, "name"),
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            )
        option_names.add(option["name"])
        if option.get("type") in (1, 2):
            continue
        if option.get("required"):
            if optional_seen:
                raise errors.invalid_form_body(
                    (*path, "options"),
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        _check_choices(option, option_path)


def _check_choices(option: dict[str, Any], path: tuple[str | int, ...]) -> None:
    choices = option.get("choices") or []
    if len(choices) > COMMAND_CHOICES_MAX:
        raise errors.too_long((*path, "choices"), COMMAND_CHOICES_MAX)
    for number, choice in enumerate(choices):
        if not 1 <= len(choice.get("name") or "") <= CHOICE_NAME_MAX:
            raise errors.bad_length((*path, "choices", number, "name"), 1, CHOICE_NAME_MAX)
        value = choice.get("value")
        if isinstance(value, str) and len(value) > CHOICE_STRING_VALUE_MAX:
            raise errors.too_long((*path, "choices", number, "value"), CHOICE_STRING_VALUE_MAX)


def check_command_counts(commands: Sequence[dict[str, Any]]) -> None:
    """The commands one scope (global, or one guild) would hold after a registration:
    too many of a type is 400 with code 30032, as Discord answers it."""
    for kind, most in COMMANDS_PER_TYPE_MAX.items():
        if sum(1 for c in commands if int(c.get("type", 1)) == kind) > most:
            raise errors.DiscordError(
                400,
                MAX_APPLICATION_COMMANDS,
                f"Maximum number of application commands reached ({most})",
            )


def command_size(item: dict[str, Any]) -> int:
    """Discord's size of a command: its name, description and choice values, and those
    of every option, subcommand and group, each counted at its longest localization."""
    size = _longest(item, "name") + _longest(item, "description")
    for choice in item.get("choices") or []:
        size += _longest(choice, "name") + len(str(choice.get("value", "")))
    return size + sum(command_size(option) for option in item.get("options") or [])


def _longest(item: dict[str, Any], key: str) -> int:
    localized = (item.get(f"{key}_localizations") or {}).values()
    return max([len(item.get(key) or ""), *(len(text or "") for text in localized)])
