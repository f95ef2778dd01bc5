"""A member of the fake server: what they do (slash, press, submit) and what they see."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.fakes.discord import limits
from tests.fakes.discord.options import (
    OptionRejected,
    Upload,
    build_command_data,
    find_command,
)
from tests.fakes.discord.state import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    DEFAULT,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    REPLY,
    Channel,
    DirectMessage,
    Guild,
    Interaction,
    Message,
    Modal,
    Role,
    User,
    parse_mentions,
)
from tests.fakes.waiting import WAIT_LIMIT

if TYPE_CHECKING:
    from tests.fakes.discord.server import FakeDiscord


class Member:
    """A person in the fake server, acting through Discord's client.

    Actions return the :class:`~tests.fakes.discord.state.Interaction` they start, at
    once (the bot answers asynchronously; wait with ``await ix.reply()``)::

        ix = await alice.slash("video text", prompt="a horse", duration=5)
        ix = await alice.press(message, "Re-roll")
        ix = await alice.submit_modal(modal, prompt="a faster horse")
        ix = await alice.use_app(message, "Animate with HappyHorse")  # Apps menu

    Views: :meth:`seen`, :meth:`last_seen`, :meth:`wait_to_see`, :meth:`pinged_in`.
    """

    def __init__(
        self, fake: FakeDiscord, guild: Guild, user: User, roles: list[Role], joined_at: str
    ) -> None:
        self.fake = fake
        self.guild = guild
        self.user = user
        self.roles = roles
        self.joined_at = joined_at
        self.nick: str | None = None
        self.accepts_dms = True  # False: "Cannot send messages to this user" (403, 50007)
        self.direct_messages: list[DirectMessage] = []

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def mention(self) -> str:
        return self.user.mention

    @property
    def permissions(self) -> int:
        """Server-wide permission bits (roles, ownership, Administrator)."""
        return self.guild.base_permissions(self)

    def permissions_in(self, channel: Channel) -> int:
        return self.guild.permissions_in(self, channel)

    def add_role(self, role: Role) -> None:
        """Give the member a role; later interactions carry it."""
        if role not in self.roles:
            self.roles.append(role)

    def remove_role(self, role: Role) -> None:
        if role in self.roles:
            self.roles.remove(role)

    def payload(self, *, channel: Channel | None = None, with_user: bool = True) -> dict[str, Any]:
        """The guild member object; with ``channel``, the interaction form with permissions."""
        data: dict[str, Any] = {
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(r.id) for r in self.roles],
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            "avatar_decoration_data": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        if channel is not None:
            data["permissions"] = str(self.guild.permissions_in(self, channel))
        return data

    def _channel(self, channel: Channel | str | None) -> Channel:
        if channel is None:  # the first channel of the member's server (#general)
            return next(iter(self.guild.channels.values()))
        if isinstance(channel, str):
            return self.fake.channel(channel, guild=self.guild)
        return channel

    # -- actions ---------------------------------------------------------------------
    async def slash(
        self, command: str, /, *, channel: Channel | str | None = None, **options: Any
    ) -> Interaction:
        """Run a slash command, e.g. ``slash("video text", prompt="...", duration=5)``.

        Subcommands and groups are words of ``command``. Option values: str, int, float,
        bool, a Member (user options), a Role, a Channel, or an ``Upload`` (attachment
        options; stored on the CDN with content type, size, width and height). Raises
        ``CommandNotFound``, ``CommandHidden`` or ``OptionRejected`` where Discord's own
        client would not let the member send it.
        """
        where = self._channel(channel)
        data = build_command_data(self.fake, command, options, member=self, channel=where)
        name = " ".join(command.strip().lstrip("/").split())
        return await self.fake.start_interaction(
            APPLICATION_COMMAND, self, where, data, command_name=name
        )

    async def autocomplete(
        self,
        command: str,
        option: str,
        typed: str,
        /,
        *,
        channel: Channel | str | None = None,
        **options: Any,
    ) -> list[dict[str, Any]]:
        """Type ``typed`` into ``option`` and return the choices the bot offers."""
        where = self._channel(channel)
        values = {**options, option: typed}
        data = build_command_data(
            self.fake, command, values, member=self, channel=where, focused=option
        )
        name = " ".join(command.strip().lstrip("/").split())
        interaction = await self.fake.start_interaction(
            AUTOCOMPLETE, self, where, data, command_name=name
        )
        return await interaction.autocomplete_choices()

    async def use_app(self, message: Message, command: str) -> Interaction:
        """Right-click a message > Apps > ``command``: a message context-menu command
        (APPLICATION_COMMAND of type 3, with ``target_id`` and the message resolved)."""
        self._check_visible(message)
        registered = find_command(
            self.fake, command, message.channel, self, kind=limits.COMMAND_MESSAGE
        )
        data: dict[str, Any] = {
            "id": registered["id"],
            "name": registered["name"],
            "type": limits.COMMAND_MESSAGE,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): message.payload()}},
        }
        if registered.get("guild_id"):
            data["guild_id"] = registered["guild_id"]
        return await self.fake.start_interaction(
            APPLICATION_COMMAND, self, message.channel, data, command_name=registered["name"]
        )

    async def press(self, message: Message, button: str) -> Interaction:
        """Press the button with this label (or custom_id) on a message the member sees."""
        self._check_visible(message)
        found = message.button(button)
        if found.url is not None or found.custom_id is None:
            raise OptionRejected(f"button {button!r} is a link; pressing it opens {found.url}")
        if found.disabled:
            raise OptionRejected(f"button {button!r} is disabled")
        data = {"custom_id": found.custom_id, "component_type": limits.COMPONENT_BUTTON}
        return await self.fake.start_interaction(
            MESSAGE_COMPONENT, self, message.channel, data, source_message=message
        )

    async def choose(self, message: Message, select: str, values: list[str]) -> Interaction:
        """Pick ``values`` in the string select with this custom_id (or placeholder)."""
        self._check_visible(message)
        for menu in message.selects:
            if select in (menu.custom_id, menu.placeholder):
                break
        else:
            raise KeyError(f"no select {select!r} on message {message.id}")
        if menu.disabled:
            raise OptionRejected(f"select {select!r} is disabled")
        if not menu.min_values <= len(values) <= menu.max_values:
            raise OptionRejected(
                f"select {select!r} takes {menu.min_values} to {menu.max_values} values"
            )
        offered = {o["value"] for o in menu.options}
        if menu.type == limits.COMPONENT_STRING_SELECT and not set(values) <= offered:
            raise OptionRejected(f"select {select!r} offers {sorted(offered)}, not {values}")
        data = {"custom_id": menu.custom_id, "component_type": menu.type, "values": list(values)}
        return await self.fake.start_interaction(
            MESSAGE_COMPONENT, self, message.channel, data, source_message=message
        )

    async def submit_modal(
        self,
        modal: Modal | Interaction,
        values: dict[str, Any] | None = None,
        /,
        **by_custom_id: Any,
    ) -> Interaction:
        """Fill in and submit a modal the bot opened for this member.

        ``values`` maps field labels (or custom_ids) to text; keyword arguments map
        custom_ids. Untouched fields keep their pre-filled value. Pass the modal or the
        interaction that opened it.
        """
        if isinstance(modal, Interaction):
            modal = await modal.opened_modal()
        if modal.interaction.member is not self:
            raise OptionRejected("a modal can only be submitted by the member it was shown to")
        given = {**(values or {}), **by_custom_id}
        filled: dict[str, Any] = {}
        for field in modal.fields:
            value = (
                given.pop(field.label, None)
                if field.label in given
                else given.pop(field.custom_id, None)
            )
            if value is None:
                value = field.value or ("" if field.type == limits.COMPONENT_TEXT_INPUT else [])
            if field.required and not value:
                raise OptionRejected(f"modal field {field.label or field.custom_id!r} is required")
            if isinstance(value, str):
                low, high = field.min_length or 0, field.max_length or limits.TEXT_INPUT_VALUE_MAX
                if value and not low <= len(value) <= high:
                    raise OptionRejected(
                        f"modal field {field.label!r} takes {low} to {high} characters"
                    )
            filled[field.custom_id] = value
        if given:
            raise OptionRejected(f"modal {modal.title!r} has no fields {sorted(given)}")
        data = {"custom_id": modal.custom_id, "components": _mirror(modal.components, filled)}
        opened_by = modal.interaction
        return await self.fake.start_interaction(
            MODAL_SUBMIT, self, opened_by.channel, data, source_message=opened_by.source_message
        )

    async def say(
        self,
        content: str,
        *,
        channel: Channel | str | None = None,
        reply_to: Message | None = None,
        files: list[Upload] | None = None,
    ) -> Message:
        """Post a message in a channel, as the member typing it, with ``files`` attached
        (stored on the CDN as channel attachments, with their size and dimensions)."""
        where = self._channel(channel)
        uploads = list(files or [])
        if len(uploads) > limits.MESSAGE_ATTACHMENTS_MAX:
            raise OptionRejected(f"a message holds at most {limits.MESSAGE_ATTACHMENTS_MAX} files")
        attachments = [
            self.fake.store_channel_file(where, u.filename, u.data, u.description)
            for u in uploads
        ]
        pinged, roles = parse_mentions(content, None, reply_to)
        message = self.fake.new_message(
            where,
            self.user,
            content=content,
            pinged_ids=pinged,
            pinged_role_ids=roles,
            type=REPLY if reply_to is not None else DEFAULT,
            reference=self.fake.reference_to(reply_to),
            referenced=reply_to,
            attachments=attachments,
        )
        self.fake.announce_message(message, member=self)
        return message

    def _check_visible(self, message: Message) -> None:
        if not message.is_visible_to(self):
            raise OptionRejected(f"{self.name} cannot see message {message.id}")

    # -- views -----------------------------------------------------------------------
    def seen(self, channel: Channel | str | None = None) -> list[Message]:
        """Every message this member sees, oldest first: public ones and their own
        ephemerals, in one channel or (``None``) the whole server."""
        channels = (
            [self._channel(channel)] if channel is not None else list(self.guild.channels.values())
        )
        found = [m for c in channels for m in c.messages if m.is_visible_to(self)]
        return sorted(found, key=lambda m: m.id)

    def last_seen(self, channel: Channel | str | None = None) -> Message | None:
        """The newest message this member sees (edits do not reorder)."""
        seen = self.seen(channel)
        return seen[-1] if seen else None

    def ephemerals(self) -> list[Message]:
        """The messages only this member sees."""
        return [m for m in self.seen() if m.ephemeral]

    def pinged_in(self, channel: Channel | str | None = None) -> list[Message]:
        """Messages that notified this member."""
        return [m for m in self.seen(channel) if m.pings(self)]

    async def wait_to_see(
        self,
        check: Callable[[Message], bool] = lambda _m: True,
        *,
        channel: Channel | str | None = None,
        after: Message | None = None,
        timeout: float = WAIT_LIMIT,
    ) -> Message:
        """The first message this member sees (newer than ``after``) that passes ``check``."""
        floor = after.id if after is not None else 0

        def find() -> Message | None:
            return next((m for m in self.seen(channel) if m.id > floor and check(m)), None)

        return await self.fake.wait_for(find, timeout=timeout, what=f"a message {self.name} sees")

    def __repr__(self) -> str:
        return f"<Member {self.user.name} ({self.user.id})>"


def _mirror(components: list[dict[str, Any]], filled: dict[str, Any]) -> list[dict[str, Any]]:
    """The modal's components as a MODAL_SUBMIT carries them, with the member's values."""
    mirrored: list[dict[str, Any]] = []
    for component in components:
        kind = component.get("type")
        if kind == limits.COMPONENT_ACTION_ROW:
            mirrored.append(
                {"type": kind, "components": _mirror(component.get("components") or [], filled)}
            )
        elif kind == limits.COMPONENT_LABEL:
            mirrored.append(
                {"type": kind, "component": _mirror([component["component"]], filled)[0]}
            )
        elif "custom_id" in component and component["custom_id"] in filled:
            value = filled[component["custom_id"]]
            key = "value" if kind == limits.COMPONENT_TEXT_INPUT else "values"
            mirrored.append({"type": kind, "custom_id": component["custom_id"], key: value})
        else:
            mirrored.append(
                {"type": kind, **({"id": component["id"]} if "id" in component else {})}
            )
    return mirrored
