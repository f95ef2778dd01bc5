"""What the fake Discord holds, and the Discord-shaped JSON it sends about each thing.

Objects here are the fake's single source of truth: the REST API and the gateway build
their payloads from them, and tests read them as a member sees them (see
:class:`Message`, :class:`Interaction` and :class:`Modal`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.discord import limits
from tests.fakes.waiting import WAIT_LIMIT

if TYPE_CHECKING:
    import discord

    from tests.fakes.discord.members import Member
    from tests.fakes.discord.server import FakeDiscord

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_DEFAULT = (
    ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
BOT_DEFAULT = EVERYONE_DEFAULT | MANAGE_MESSAGES | MENTION_EVERYONE

# Interaction types and callback types.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

# Message types.
DEFAULT = 0
REPLY = 19
CHAT_INPUT_COMMAND = 20

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def as_permissions(value: int | discord.Permissions) -> int:
    """Accept a plain bit field or a ``discord.Permissions``."""
    return value if isinstance(value, int) else int(value.value)


@dataclass(eq=False)
class User:
    """A Discord account: a member's person, or the bot itself."""

    id: int
    name: str
    bot: bool = False

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": None if self.bot else self.name.title(),
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }


@dataclass(eq=False)
class Role:
    """A guild role; the role whose id is the guild's is @everyone."""

    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False
    bot_id: int | None = None

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class Overwrite:
    """A channel permission overwrite for a role (``type`` 0) or a member (``type`` 1)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(self.allow),
            "deny": str(self.deny),
        }


@dataclass(eq=False)
class Channel:
    """A guild text channel and every message ever posted in it (deleted ones included).

    Member-facing helpers: :attr:`visible` (what everyone sees), :attr:`files`,
    :attr:`last_message`. Ephemeral messages live here too but only their member sees them.
    """

    id: int
    guild: Guild
    name: str
    position: int = 0
    topic: str | None = None
    overwrites: dict[int, Overwrite] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    @property
    def visible(self) -> list[Message]:
        """Messages everyone in the channel sees: not ephemeral, not deleted."""
        return [m for m in self.messages if not m.deleted and not m.ephemeral]

    @property
    def last_message(self) -> Message | None:
        visible = self.visible
        return visible[-1] if visible else None

    @property
    def files(self) -> list[StoredAttachment]:
        """Every file everyone can see in the channel, oldest first."""
        return [a for m in self.visible for a in m.attachments]

    def set_permissions(
        self,
        target: Role | Member,
        *,
        allow: int | discord.Permissions = 0,
        deny: int | discord.Permissions = 0,
    ) -> None:
        """Add a permission overwrite for a role or a member (as a moderator would)."""
        kind = 0 if isinstance(target, Role) else 1
        target_id = target.id if isinstance(target, Role) else target.user.id
        self.overwrites[target_id] = Overwrite(
            target_id, kind, as_permissions(allow), as_permissions(deny)
        )

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": 0,
            "guild_id": str(self.guild.id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [o.payload() for o in self.overwrites.values()],
            "topic": self.topic,
            "nsfw": False,
            "last_message_id": str(self.messages[-1].id) if self.messages else None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }


@dataclass(eq=False)
class Guild:
    """A server: roles, channels and members, with Discord's permission arithmetic.

    ``upload_limit`` is the ``attachment_size_limit`` Discord reports for the server
    (10 MiB by default; boosted servers get 50 or 100 MiB).
    """

    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    upload_limit: int = limits.DEFAULT_UPLOAD_LIMIT
    created_at: str = ""

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]

    def base_permissions(self, member: Member) -> int:
        if member.user.id == self.owner_id:
            return ALL_PERMISSIONS
        permissions = self.everyone.permissions
        for role in member.roles:
            permissions |= role.permissions
        return ALL_PERMISSIONS if permissions & ADMINISTRATOR else permissions

    def permissions_in(self, member: Member, channel: Channel | None) -> int:
        """The member's permissions in a channel, overwrites applied in Discord's order."""
        permissions = self.base_permissions(member)
        if channel is None or permissions == ALL_PERMISSIONS:
            return permissions
        everyone = channel.overwrites.get(self.id)
        if everyone:
            permissions = (permissions & ~everyone.deny) | everyone.allow
        allow = deny = 0
        for role in member.roles:
            overwrite = channel.overwrites.get(role.id)
            if overwrite:
                allow |= overwrite.allow
                deny |= overwrite.deny
        permissions = (permissions & ~deny) | allow
        own = channel.overwrites.get(member.user.id)
        if own and own.type == 1:
            permissions = (permissions & ~own.deny) | own.allow
        return permissions

    def payload(self, *, application_id: int) -> dict[str, Any]:
        """The full guild object sent in GUILD_CREATE."""
        first_channel = next(iter(self.channels.values()), None)
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(first_channel.id) if first_channel else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None,
            "max_video_channel_users": 25,
            "joined_at": self.created_at,
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "voice_states": [],
            "members": [m.payload() for m in self.members.values()],
            "channels": [c.payload() for c in self.channels.values()],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass(eq=False)
class DirectMessage:
    """A message the bot sent a member privately (a DM); only its text and embeds."""

    id: int
    user_id: int
    content: str
    embed_payloads: list[dict[str, Any]]

    @property
    def embeds(self) -> list[discord.Embed]:
        import discord

        return [discord.Embed.from_dict(dict(e)) for e in self.embed_payloads]

    @property
    def text(self) -> str:
        """The content and every embed's title, description and fields, for searching."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.title or "", embed.description or ""]
            parts += [f"{f.name}: {f.value}" for f in embed.fields]
        return "\n".join(p for p in parts if p)


@dataclass(eq=False)
class StoredAttachment:
    """A file held by the fake CDN: what Discord reports about it, and its bytes."""

    id: int
    filename: str
    data: bytes
    url: str
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
        }
        if self.content_type:
            data["content_type"] = self.content_type
        if self.width is not None and self.height is not None:
            data["width"] = self.width
            data["height"] = self.height
        if self.description:
            data["description"] = self.description
        if self.ephemeral:
            data["ephemeral"] = True
        return data


@dataclass(frozen=True)
class Button:
    """A button as a member sees it on a message."""

    label: str | None
    custom_id: str | None
    style: int
    url: str | None = None
    disabled: bool = False
    emoji: str | None = None


@dataclass(frozen=True)
class Select:
    """A select menu as a member sees it on a message."""

    custom_id: str
    type: int
    placeholder: str | None
    options: tuple[dict[str, Any], ...]
    min_values: int = 1
    max_values: int = 1
    disabled: bool = False


def iter_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component, nested ones (rows, containers, sections, labels) included."""
    for component in components:
        yield component
        yield from iter_components(component.get("components") or [])
        for key in ("accessory", "component"):
            if isinstance(component.get(key), dict):
                yield from iter_components([component[key]])


@dataclass(eq=False)
class Message:
    """A message as Discord stores it, with member-view helpers.

    ``interaction`` is the interaction this message answers (original response or
    followup); ``visible_to`` is the one user an ephemeral message is shown to.
    ``versions`` keeps every earlier state of an edited message (as payloads), not the
    empty "thinking" state a deferred answer starts in.
    """

    id: int
    channel: Channel
    author: User
    content: str = ""
    embed_payloads: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = DEFAULT
    created_at: str = ""
    edited_at: str | None = None
    webhook_id: int | None = None
    interaction: Interaction | None = None
    visible_to: int | None = None
    reference: dict[str, Any] | None = None
    referenced: Message | None = None
    allowed_mentions: dict[str, Any] | None = None
    pinged_ids: list[int] = field(default_factory=list)
    pinged_role_ids: list[int] = field(default_factory=list)
    deleted: bool = False
    versions: list[dict[str, Any]] = field(default_factory=list)
    received_at: float = field(default_factory=time.monotonic)  # for benchmarks

    # -- a member's view -------------------------------------------------------------
    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & limits.FLAG_EPHEMERAL)

    @property
    def thinking(self) -> bool:
        """The deferred "Paddock is thinking..." state, before any answer replaces it."""
        return bool(self.flags & limits.FLAG_LOADING)

    @property
    def embeds(self) -> list[discord.Embed]:
        """The embeds as ``discord.Embed`` objects, for ``msg.embeds[0].title`` checks."""
        import discord

        return [discord.Embed.from_dict(dict(e)) for e in self.embed_payloads]

    @property
    def embed(self) -> discord.Embed | None:
        """The first embed, or None."""
        embeds = self.embeds
        return embeds[0] if embeds else None

    @property
    def buttons(self) -> list[Button]:
        """Every button on the message, in reading order."""
        return [
            Button(
                label=c.get("label"),
                custom_id=c.get("custom_id"),
                style=int(c.get("style", 1)),
                url=c.get("url"),
                disabled=bool(c.get("disabled", False)),
                emoji=(c.get("emoji") or {}).get("name"),
            )
            for c in iter_components(self.components)
            if c.get("type") == limits.COMPONENT_BUTTON
        ]

    def button(self, label_or_custom_id: str) -> Button:
        """The button with this label (or custom_id); KeyError listing the buttons if none."""
        for button in self.buttons:
            if label_or_custom_id in (button.label, button.custom_id):
                return button
        labels = [b.label or b.custom_id for b in self.buttons]
        raise KeyError(f"no button {label_or_custom_id!r} on message {self.id}; it has {labels}")

    @property
    def selects(self) -> list[Select]:
        return [
            Select(
                custom_id=c["custom_id"],
                type=int(c["type"]),
                placeholder=c.get("placeholder"),
                options=tuple(c.get("options") or ()),
                min_values=int(c.get("min_values", 1)),
                max_values=int(c.get("max_values", 1)),
                disabled=bool(c.get("disabled", False)),
            )
            for c in iter_components(self.components)
            if c.get("type") in limits.COMPONENT_SELECTS
        ]

    @property
    def files(self) -> list[StoredAttachment]:
        return list(self.attachments)

    @property
    def text(self) -> str:
        """Everything readable: content, embed texts and components-v2 text displays."""
        parts = [self.content]
        for embed in self.embed_payloads:
            parts += [
                embed.get("title") or "",
                embed.get("description") or "",
                (embed.get("author") or {}).get("name") or "",
                (embed.get("footer") or {}).get("text") or "",
            ]
            for f in embed.get("fields") or []:
                parts += [f.get("name") or "", f.get("value") or ""]
        parts += [
            c.get("content") or "" for c in iter_components(self.components) if c.get("type") == 10
        ]
        return "\n".join(p for p in parts if p)

    def is_visible_to(self, member: Member) -> bool:
        if self.deleted:
            return False
        return not self.ephemeral or self.visible_to == member.user.id

    def pings(self, member: Member) -> bool:
        """Whether this message notified the member (mention allowed by allowed_mentions)."""
        if member.user.id in self.pinged_ids:
            return True
        return any(role.id in self.pinged_role_ids for role in member.roles)

    @property
    def replies_to(self) -> Message | None:
        """The message this one replies to (``message_reference``), if any."""
        return self.referenced

    # -- the wire --------------------------------------------------------------------
    def payload(self, *, with_reference: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "channel_id": str(self.channel.id),
            "author": self.author.payload(),
            "content": self.content,
            "timestamp": self.created_at,
            "edited_timestamp": self.edited_at,
            "tts": False,
            "mention_everyone": False,
            "mentions": [
                self.channel.guild.members[uid].user.payload()
                for uid in self.pinged_ids
                if uid in self.channel.guild.members
            ],
            "mention_roles": [str(r) for r in self.pinged_role_ids],
            "mention_channels": [],
            "attachments": [a.payload() for a in self.attachments],
            "embeds": [dict(e) for e in self.embed_payloads],
            "reactions": [],
            "pinned": False,
            "flags": self.flags,
            "components": self.components,
        }
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
            data["application_id"] = str(self.webhook_id)
        if self.interaction is not None:
            data["interaction_metadata"] = self.interaction.metadata()
            if self.interaction.type == APPLICATION_COMMAND:
                data["interaction"] = {
                    "id": str(self.interaction.id),
                    "type": self.interaction.type,
                    "name": self.interaction.command_name,
                    "user": self.interaction.member.user.payload(),
                }
        if self.reference is not None:
            data["message_reference"] = self.reference
            if with_reference:
                data["referenced_message"] = (
                    self.referenced.payload(with_reference=False) if self.referenced else None
                )
        return data

    def snapshot(self) -> dict[str, Any]:
        return self.payload(with_reference=False)

    def __repr__(self) -> str:
        what = "thinking" if self.thinking else repr(self.text[:60])
        tags = " ephemeral" if self.ephemeral else ""
        tags += " deleted" if self.deleted else ""
        return f"<Message {self.id} in #{self.channel.name}{tags}: {what}>"


@dataclass(frozen=True)
class ModalField:
    """One input of a modal, as the member sees it."""

    custom_id: str
    label: str | None
    type: int
    style: int | None = None
    required: bool = True
    value: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    options: tuple[dict[str, Any], ...] = ()


@dataclass(eq=False)
class Modal:
    """A modal the bot opened for a member; submit it with ``member.submit_modal``."""

    custom_id: str
    title: str
    components: list[dict[str, Any]]
    interaction: Interaction

    @property
    def fields(self) -> list[ModalField]:
        found: list[ModalField] = []
        self._collect(self.components, None, found)
        return found

    def _collect(
        self, components: list[dict[str, Any]], label: str | None, found: list[ModalField]
    ) -> None:
        for component in components:
            kind = component.get("type")
            if kind == limits.COMPONENT_ACTION_ROW:
                self._collect(component.get("components") or [], None, found)
            elif kind == limits.COMPONENT_LABEL:
                self._collect([component["component"]], component.get("label"), found)
            elif kind == limits.COMPONENT_TEXT_INPUT:
                found.append(
                    ModalField(
                        custom_id=component["custom_id"],
                        label=label or component.get("label"),
                        type=kind,
                        style=component.get("style"),
                        required=bool(component.get("required", True)),
                        value=component.get("value"),
                        min_length=component.get("min_length"),
                        max_length=component.get("max_length"),
                    )
                )
            elif kind in limits.COMPONENT_SELECTS:
                found.append(
                    ModalField(
                        custom_id=component["custom_id"],
                        label=label or component.get("placeholder"),
                        type=kind,
                        required=bool(component.get("required", True)),
                        options=tuple(component.get("options") or ()),
                    )
                )

    def field(self, label_or_custom_id: str) -> ModalField:
        for item in self.fields:
            if label_or_custom_id in (item.label, item.custom_id):
                return item
        names = [f.label or f.custom_id for f in self.fields]
        raise KeyError(f"modal {self.title!r} has no field {label_or_custom_id!r}; it has {names}")


@dataclass(eq=False)
class Interaction:
    """One interaction a member started, and everything the bot did in answer.

    Read it as the member lived it: :attr:`thinking` while deferred, :attr:`failed` if
    the bot never answered within 3 seconds ("The application did not respond"),
    :attr:`original` and :attr:`followups` for what was shown, :attr:`modal` for a
    modal the bot opened, :attr:`choices` for autocomplete. Wait with :meth:`reply`,
    :meth:`followup` and :meth:`opened_modal`, never with sleeps.
    """

    id: int
    token: str
    type: int
    member: Member
    channel: Channel
    data: dict[str, Any]
    created_at: float
    fake: FakeDiscord
    command_name: str = ""
    source_message: Message | None = None
    response_type: int | None = None
    original: Message | None = None
    followups: list[Message] = field(default_factory=list)
    modal: Modal | None = None
    choices: list[dict[str, Any]] | None = None
    answered: list[Message] = field(default_factory=list)
    # perf_counter() readings for benchmarks: INTERACTION_CREATE queued, first response in.
    sent_at: float = 0.0
    responded_at: float | None = None

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None

    @property
    def thinking(self) -> bool:
        return self.original is not None and self.original.thinking

    @property
    def failed(self) -> bool:
        """No response within Discord's deadline: the member sees "did not respond"."""
        deadline = self.created_at + self.fake.response_deadline
        return not self.acknowledged and self.fake.clock.now() > deadline

    @property
    def token_expired(self) -> bool:
        return self.fake.clock.now() > self.created_at + self.fake.token_lifetime

    @property
    def messages(self) -> list[Message]:
        """The original response (if it is a message of its own) and the followups."""
        own = (
            [self.original]
            if self.original is not None and self.original.interaction is self
            else []
        )
        return [m for m in own + self.followups if not m.deleted]

    def metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "user": self.member.user.payload(),
            "authorizing_integration_owners": {"0": str(self.channel.guild.id)},
        }
        if self.type == APPLICATION_COMMAND:
            data["name"] = self.command_name
        if self.source_message is not None:
            data["interacted_message_id"] = str(self.source_message.id)
        return data

    async def _wait(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        return await self.fake.wait_for(check, timeout=timeout, what=f"{what} for {self!r}")

    async def reply(self, timeout: float = WAIT_LIMIT) -> Message:
        """The first answer the member can read (not "thinking"): the original response,
        the edit of a deferred one, the first followup, or the edited component message."""
        return await self._wait(
            "an answer", lambda: next((m for m in self.answered if not m.thinking), None), timeout
        )

    async def followup(self, index: int = 0, timeout: float = WAIT_LIMIT) -> Message:
        """The ``index``-th followup message (the first followup after a defer replaces
        the thinking message and counts as followup 0)."""
        return await self._wait(
            f"followup {index}",
            lambda: self.followups[index] if len(self.followups) > index else None,
            timeout,
        )

    async def opened_modal(self, timeout: float = WAIT_LIMIT) -> Modal:
        """The modal the bot opened in answer."""
        return await self._wait("a modal", lambda: self.modal, timeout)

    async def acknowledgement(self, timeout: float = WAIT_LIMIT) -> int:
        """The callback type of the bot's first response (4 message, 5 defer, ...)."""
        return await self._wait("a response", lambda: self.response_type, timeout)

    async def autocomplete_choices(self, timeout: float = WAIT_LIMIT) -> list[dict[str, Any]]:
        """The choices the bot answered with; an empty list is an answer too."""
        await self._wait("autocomplete choices", lambda: self.choices is not None, timeout)
        assert self.choices is not None
        return self.choices

    def __repr__(self) -> str:
        kind = {2: "/" + self.command_name, 3: "component", 4: "autocomplete", 5: "modal submit"}
        return f"<Interaction {kind.get(self.type, self.type)} by {self.member.user.name}>"


def parse_mentions(
    content: str,
    allowed: dict[str, Any] | None,
    replied_to: Message | None,
) -> tuple[list[int], list[int]]:
    """Who a message notifies: (user ids, role ids), applying ``allowed_mentions``.

    Without ``allowed_mentions`` every mention pings and a reply pings its author; with
    it, only what ``parse``/``users``/``roles``/``replied_user`` allow.
    """
    users = [int(u) for u in _USER_MENTION.findall(content)]
    roles = [int(r) for r in _ROLE_MENTION.findall(content)]
    if allowed is None:
        ping_users, ping_roles, replied = users, roles, True
    else:
        parse = set(allowed.get("parse") or [])
        listed_users = {int(u) for u in allowed.get("users") or []}
        listed_roles = {int(r) for r in allowed.get("roles") or []}
        ping_users = [u for u in users if "users" in parse or u in listed_users]
        ping_roles = [r for r in roles if "roles" in parse or r in listed_roles]
        replied = bool(allowed.get("replied_user", False))
    if replied and replied_to is not None and not replied_to.author.bot:
        ping_users.append(replied_to.author.id)
    return list(dict.fromkeys(ping_users)), list(dict.fromkeys(ping_roles))


class Changes:
    """Wakes waiters whenever the fake's state changes."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def next(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter
