"""Turning ``alice.slash("video text", prompt=..., image=Upload(...))`` into the
``data`` of an INTERACTION_CREATE, the way Discord's client builds it from the commands
the bot registered, and refusing what that client would refuse to send.
"""

from __future__ import annotations

import io
import mimetypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.state import (
    ADMINISTRATOR,
    USE_APPLICATION_COMMANDS,
    VIEW_CHANNEL,
    Channel,
    Role,
)

if TYPE_CHECKING:
    from tests.fakes.discord.members import Member
    from tests.fakes.discord.server import FakeDiscord

SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11


class CommandNotFound(LookupError):
    """No registered command by that name: the member could not find it in the picker."""


class CommandHidden(PermissionError):
    """The command's ``default_member_permissions`` hide it from this member."""


class OptionRejected(ValueError):
    """Discord's client would not send this: unknown or missing option, bad choice, range."""


@dataclass
class Upload:
    """A file a member attaches to a slash command option or a message.

    ``content_type``, ``width`` and ``height`` are what Discord reports; they are worked
    out from the name and (for pictures) the bytes unless given.
    """

    filename: str
    data: bytes
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if self.content_type is None:
            self.content_type = mimetypes.guess_type(self.filename)[0]
        if self.width is None and (self.content_type or "").startswith("image/"):
            self.width, self.height = _picture_size(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    @classmethod
    def image(
        cls,
        filename: str = "picture.png",
        width: int = 640,
        height: int = 480,
        *,
        color: tuple[int, int, int] = (180, 90, 40),
    ) -> Upload:
        """A real picture of the given size, encoded as the file extension says."""
        from PIL import Image

        buffer = io.BytesIO()
        fmt = {"jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}.get(
            filename.rsplit(".", 1)[-1].lower(), "PNG"
        )
        Image.new("RGB", (width, height), color).save(buffer, format=fmt)
        return cls(filename, buffer.getvalue())

    @classmethod
    def blob(cls, filename: str, size: int, content_type: str | None = None) -> Upload:
        """A file of exactly ``size`` bytes (zeros), e.g. to cross an upload limit."""
        return cls(filename, bytes(size), content_type=content_type)


def _picture_size(data: bytes) -> tuple[int | None, int | None]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as picture:
            return picture.size
    except (UnidentifiedImageError, OSError):
        return None, None


def find_command(
    fake: FakeDiscord, name: str, channel: Channel, member: Member, *, kind: int = 1
) -> dict[str, Any]:
    """The registered command a member would pick (server commands first): chat input
    (``kind`` 1, a slash command) or a user's or message's Apps menu entry (2 or 3)."""
    registered = fake.registered_commands(channel.guild.id) + fake.registered_commands(None)
    permissions = channel.guild.permissions_in(member, channel)
    needed = VIEW_CHANNEL | USE_APPLICATION_COMMANDS
    if permissions & needed != needed:
        raise CommandHidden(f"{member.user.name} cannot use commands in #{channel.name}")
    for command in registered:
        if command["name"] == name and int(command.get("type", 1)) == kind:
            raw = command.get("default_member_permissions")
            required = int(raw) if raw is not None else 0
            # "0" means nobody but administrators; None means everyone.
            hidden = raw is not None and (required == 0 or permissions & required != required)
            if hidden and not permissions & ADMINISTRATOR:
                raise CommandHidden(
                    f"/{name} is hidden from {member.user.name} by its default permissions"
                )
            return command
    names = sorted({c["name"] for c in registered if int(c.get("type", 1)) == kind})
    shown = f"/{name}" if kind == 1 else repr(name)
    raise CommandNotFound(f"no registered command {shown}; registered: {names}")


def build_command_data(
    fake: FakeDiscord,
    path: str,
    values: dict[str, Any],
    *,
    member: Member,
    channel: Channel,
    focused: str | None = None,
) -> dict[str, Any]:
    """The ``data`` of an APPLICATION_COMMAND (or, with ``focused``, AUTOCOMPLETE) interaction."""
    words = path.strip().lstrip("/").split()
    command = find_command(fake, words[0], channel, member)
    builder = _Builder(fake, member, channel, focused)
    options = builder.options(command, words[1:], dict(values), "/" + words[0])
    data: dict[str, Any] = {
        "id": command["id"],
        "name": command["name"],
        "type": 1,
        "options": options,
    }
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    resolved = {k: v for k, v in builder.resolved.items() if v}
    if resolved:
        data["resolved"] = resolved
    return data


class _Builder:
    def __init__(
        self, fake: FakeDiscord, member: Member, channel: Channel, focused: str | None
    ) -> None:
        self.fake = fake
        self.member = member
        self.channel = channel
        self.focused = focused
        self.resolved: dict[str, dict[str, Any]] = {
            "users": {},
            "members": {},
            "roles": {},
            "channels": {},
            "attachments": {},
        }

    def options(
        self, node: dict[str, Any], words: list[str], values: dict[str, Any], shown: str
    ) -> list[dict[str, Any]]:
        definitions = node.get("options") or []
        nested = [d for d in definitions if d["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
        if nested:
            if not words:
                names = [d["name"] for d in nested]
                raise OptionRejected(f"{shown} needs a subcommand: one of {names}")
            for definition in nested:
                if definition["name"] == words[0]:
                    inner = self.options(definition, words[1:], values, f"{shown} {words[0]}")
                    return [{"type": definition["type"], "name": words[0], "options": inner}]
            raise OptionRejected(f"{shown} has no subcommand {words[0]!r}")
        if words:
            raise OptionRejected(f"{shown} has no subcommand {words[0]!r}")
        unknown = set(values) - {d["name"] for d in definitions}
        if unknown:
            known = [d["name"] for d in definitions]
            raise OptionRejected(f"{shown} has no option(s) {sorted(unknown)}; it has {known}")
        built = []
        for definition in definitions:
            name = definition["name"]
            if name not in values:
                if definition.get("required") and self.focused is None:
                    raise OptionRejected(f"{shown} needs option {name!r}")
                continue
            if name == self.focused:
                built.append(
                    {
                        "type": definition["type"],
                        "name": name,
                        "value": str(values[name]),
                        "focused": True,
                    }
                )
                continue
            built.append(
                {
                    "type": definition["type"],
                    "name": name,
                    "value": self.value(definition, values[name], shown),
                }
            )
        return built

    def value(self, definition: dict[str, Any], value: Any, shown: str) -> Any:
        kind = definition["type"]
        where = f"{shown} option {definition['name']!r}"
        if kind in (STRING, INTEGER, NUMBER):
            value = self._scalar(definition, value, where)
        elif kind == BOOLEAN:
            if not isinstance(value, bool):
                raise OptionRejected(f"{where} takes True or False, not {value!r}")
        elif kind in (USER, MENTIONABLE) and not isinstance(value, Role):
            value = self._user(value, where)
        elif kind in (ROLE, MENTIONABLE):
            value = self._role(value, where)
        elif kind == CHANNEL:
            value = self._channel(definition, value, where)
        elif kind == ATTACHMENT:
            value = self._attachment(value, where)
        return value

    def _scalar(self, definition: dict[str, Any], value: Any, where: str) -> Any:
        kind = definition["type"]
        choices = definition.get("choices") or []
        if choices:
            by_name = {c["name"]: c["value"] for c in choices}
            values = [c["value"] for c in choices]
            if value not in values:
                if value not in by_name:
                    raise OptionRejected(f"{where} must be one of {values}, not {value!r}")
                value = by_name[value]
        if kind == STRING:
            if not isinstance(value, str):
                raise OptionRejected(f"{where} takes text, not {value!r}")
            low, high = definition.get("min_length", 0), definition.get("max_length", 6000)
            if not low <= len(value) <= high:
                raise OptionRejected(f"{where} must be {low} to {high} characters long")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionRejected(f"{where} takes a number, not {value!r}")
        if kind == INTEGER and not float(value).is_integer():
            raise OptionRejected(f"{where} takes a whole number, not {value!r}")
        low, high = definition.get("min_value"), definition.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise OptionRejected(f"{where} must be between {low} and {high}, not {value!r}")
        return int(value) if kind == INTEGER else float(value)

    def _user(self, value: Any, where: str) -> str:
        from tests.fakes.discord.members import Member

        if not isinstance(value, Member):
            raise OptionRejected(f"{where} takes a member (fake.member(...)), not {value!r}")
        self.resolved["users"][str(value.user.id)] = value.user.payload()
        self.resolved["members"][str(value.user.id)] = value.payload(
            channel=self.channel, with_user=False
        )
        return str(value.user.id)

    def _role(self, value: Any, where: str) -> str:
        if not isinstance(value, Role):
            raise OptionRejected(f"{where} takes a role (fake.role(...)), not {value!r}")
        self.resolved["roles"][str(value.id)] = value.payload()
        return str(value.id)

    def _channel(self, definition: dict[str, Any], value: Any, where: str) -> str:
        if not isinstance(value, Channel):
            raise OptionRejected(f"{where} takes a channel (fake.channel(...)), not {value!r}")
        allowed = definition.get("channel_types")
        if allowed and 0 not in allowed:
            raise OptionRejected(f"{where} only takes channel types {allowed}")
        permissions = value.guild.permissions_in(self.member, value)
        self.resolved["channels"][str(value.id)] = {
            "id": str(value.id),
            "name": value.name,
            "type": 0,
            "permissions": str(permissions),
            "parent_id": None,
            "flags": 0,
        }
        return str(value.id)

    def _attachment(self, value: Any, where: str) -> str:
        if not isinstance(value, Upload):
            raise OptionRejected(f"{where} takes an Upload, not {value!r}")
        stored = self.fake.store_upload(value)
        self.resolved["attachments"][str(stored.id)] = stored.payload()
        return str(stored.id)
