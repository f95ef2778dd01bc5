"""FakeDiscord: one aiohttp server on 127.0.0.1 (random port) with the REST API, the
gateway and the CDN, holding a server ("guild") with channels, roles and members, and
more servers on demand (:meth:`FakeDiscord.add_guild`) for a sharded bot.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from tests.fakes.discord import errors, limits
from tests.fakes.discord.cdn import CdnSigner
from tests.fakes.discord.clock import FakeClock, Snowflakes
from tests.fakes.discord.gateway import (
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILD_PRESENCES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    Gateway,
    GatewaySession,
)
from tests.fakes.discord.members import Member
from tests.fakes.discord.options import Upload, _picture_size
from tests.fakes.discord.rest import API, Cut, Hold, RateLimit, RecordedCall, RestApi
from tests.fakes.discord.state import (
    BOT_DEFAULT,
    EVERYONE_DEFAULT,
    Changes,
    Channel,
    Guild,
    Interaction,
    Message,
    Role,
    StoredAttachment,
    User,
    as_permissions,
    parse_mentions,
)
from tests.fakes.waiting import WAIT_LIMIT

log = logging.getLogger(__name__)
T = TypeVar("T")
Files = list[tuple[str, bytes]]


class WaitTimeout(AssertionError):
    """A wait helper gave up; the message includes the conversation so far."""


class FakeDiscord:
    """A wire-level fake of Discord for one bot and its servers: ``guild`` first, and
    those added with :meth:`add_guild`.

    ``async with FakeDiscord() as fake:`` starts it on a random port; point the bot at
    :attr:`api_base` and :attr:`gateway_url` (or pass :meth:`env` to a subprocess).
    See the package docstring for a guide.

    Knobs: ``upload_limit`` (the server's ``attachment_size_limit``),
    ``response_deadline`` (3 s) and ``token_lifetime`` (15 min), both measured on
    :attr:`clock`, which tests move with ``fake.clock.advance(seconds)``;
    ``privileged_intents`` (none by default, as for a new application), the intents
    switched on in the Developer Portal: see :meth:`enable_privileged_intents`;
    ``recommended_shards`` and ``max_concurrency``, what ``GET /gateway/bot`` answers.
    """

    def __init__(
        self,
        *,
        token: str = "fake-discord-bot-token",
        bot_name: str = "Paddock",
        guild_name: str = "Paddock Test Server",
        channels: Iterable[str] = ("general", "videos"),
        upload_limit: int = limits.DEFAULT_UPLOAD_LIMIT,
        response_deadline: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        privileged_intents: int = 0,
    ) -> None:
        self.clock = FakeClock()
        self.cdn = CdnSigner(self.clock)
        self.privileged_intents = privileged_intents
        self.ids = Snowflakes(self.clock)
        self.token = token
        self.response_deadline = response_deadline
        self.token_lifetime = token_lifetime
        self.application_id = self.ids.next()
        self.bot_name = bot_name
        self.bot_user = User(self.application_id, bot_name.lower(), bot=True)
        self.owner_user = User(self.ids.next(), "owner")
        self.users: dict[int, User] = {u.id: u for u in (self.bot_user, self.owner_user)}
        self.recommended_shards = 1  # GET /gateway/bot's "shards"
        self.max_concurrency = 1  # GET /gateway/bot's session_start_limit.max_concurrency
        self.gateway = Gateway(self)
        self._changes = Changes()
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.guild = self._new_guild(self.ids.next(), guild_name, channels, upload_limit)
        self.bot_member = self.bot_member_in(self.guild)
        self.owner = self.guild.members[self.owner_user.id]
        self.messages: dict[int, Message] = {}
        self.interactions: dict[int, Interaction] = {}
        self.interactions_by_token: dict[str, Interaction] = {}
        self.attachments: dict[int, StoredAttachment] = {}
        self.calls: list[RecordedCall] = []
        self.cdn_fetches: list[str] = []
        self.cdn_refused: list[tuple[str, str]] = []  # (path, why) the CDN answered 404
        self.dm_channels: dict[int, int] = {}  # DM channel id -> the member's user id
        self.rate_limits: list[RateLimit] = []
        self.holds: list[Hold] = []
        self.cuts: list[Cut] = []
        self._commands: dict[int | None, list[dict[str, Any]]] = {None: []}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        rest = RestApi(self)
        app = web.Application(middlewares=[rest.middleware], client_max_size=1024**3)
        app.router.add_get("/gateway", self.gateway.handle)
        rest.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("fake Discord listening on %s", self.base_url)

    async def stop(self) -> None:
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be (``DISCORD_API_BASE``)."""
        return self.base_url + API

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be (``DISCORD_GATEWAY_URL``)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def cdn_base(self) -> str:
        return self.base_url + "/cdn"

    def env(self, *, guild_ready_timeout: float = 0.05) -> dict[str, str]:
        """Environment for ``python bot.py`` against this fake, syncing to its server."""
        return {
            "DISCORD_TOKEN": self.token,
            "DISCORD_API_BASE": self.api_base,
            "DISCORD_GATEWAY_URL": self.gateway_url,
            "DEV_GUILD_ID": str(self.guild.id),
            "DISCORD_GUILD_READY_TIMEOUT": str(guild_ready_timeout),
        }

    def enable_privileged_intents(
        self, *, members: bool = False, presences: bool = False, message_content: bool = False
    ) -> None:
        """Switch on privileged intents for the application, as in the Developer Portal.

        Without this, a bot that IDENTIFYs with one is closed with 4014 (discord.py raises
        ``PrivilegedIntentsRequired``) and ``GET /guilds/{id}/members`` answers 403 50001.
        """
        for wanted, intent in (
            (members, INTENT_GUILD_MEMBERS),
            (presences, INTENT_GUILD_PRESENCES),
            (message_content, INTENT_MESSAGE_CONTENT),
        ):
            if wanted:
                self.privileged_intents |= intent

    # -- the servers, their people and places ----------------------------------------
    def _new_guild(
        self, guild_id: int, name: str, channels: Iterable[str], upload_limit: int
    ) -> Guild:
        """A server owned by the owner, with @everyone, the bot (and its managed role)
        and ``channels``."""
        guild = Guild(guild_id, name, self.owner_user.id, upload_limit=upload_limit,
                      created_at=self.clock.iso())
        guild.roles[guild_id] = Role(guild_id, guild_id, "@everyone", EVERYONE_DEFAULT)
        bot_role = Role(self.ids.next(), guild_id, self.bot_name, BOT_DEFAULT,
                        position=1, managed=True, bot_id=self.bot_user.id)
        guild.roles[bot_role.id] = bot_role
        self.guilds[guild_id] = guild
        self._add_member(self.bot_user, [bot_role], guild)
        self._add_member(self.owner_user, [], guild)
        for channel in channels:
            self.channel(channel, guild=guild)
        return guild

    def add_guild(
        self,
        name: str,
        *,
        shard: tuple[int, int] | None = None,
        channels: Iterable[str] = ("general", "videos"),
        upload_limit: int = limits.DEFAULT_UPLOAD_LIMIT,
    ) -> Guild:
        """Another server with the bot in it (the owner, #general and #videos), announced
        with GUILD_CREATE to the sessions it belongs to, as when the bot is invited.

        ``shard=(shard_id, shard_count)`` picks its id so that Discord's formula
        ``(guild_id >> 22) % shard_count`` gives ``shard_id``: its events then go to that
        shard only."""
        guild_id = self.ids.next()
        if shard is not None:
            shard_id, count = shard
            ms = (guild_id >> 22) + (shard_id - (guild_id >> 22)) % count
            guild_id = (ms << 22) | (guild_id & 0x3FFFFF)
        guild = self._new_guild(guild_id, name, channels, upload_limit)
        for session in self.gateway.sessions_for(guild.id):
            session.dispatch("GUILD_CREATE", self.gateway.guild_create(session, guild))
        self.changed()
        return guild

    def bot_member_in(self, guild: Guild) -> Member:
        """The bot as a member of ``guild``."""
        return guild.members[self.bot_user.id]

    def find_member(self, user_id: int) -> Member | None:
        """The user as a member of the first server they are in, if any."""
        for guild in self.guilds.values():
            if user_id in guild.members:
                return guild.members[user_id]
        return None

    def _add_member(self, user: User, roles: list[Role], guild: Guild | None = None) -> Member:
        guild = guild or self.guild
        member = Member(self, guild, user, list(roles), self.clock.iso())
        guild.members[user.id] = member
        return member

    def member(
        self,
        name: str,
        *,
        roles: Iterable[Role] = (),
        permissions: int | Any | None = None,
        guild: Guild | None = None,
    ) -> Member:
        """The member called ``name`` (of ``guild``, the first server by default), created
        on first use with these roles; one user may be a member of several servers.

        ``permissions`` (bits or ``discord.Permissions``) gives them a role of their own
        with those permissions, e.g. ``fake.member("mod", permissions=MANAGE_GUILD)``.
        """
        guild = guild or self.guild
        for member in guild.members.values():
            if member.user.name == name:
                return member
        assigned = list(roles)
        if permissions is not None:
            assigned.append(
                self.role(f"{name} permissions", as_permissions(permissions), guild=guild))
        user = next((u for u in self.users.values() if u.name == name and not u.bot), None)
        if user is None:
            user = User(self.ids.next(), name)
            self.users[user.id] = user
        member = self._add_member(user, assigned, guild)
        self.dispatch(
            "GUILD_MEMBER_ADD",
            {**member.payload(), "guild_id": str(guild.id)},
            intent=INTENT_GUILD_MEMBERS,
        )
        return member

    def role(self, name: str, permissions: int | Any = 0, *, guild: Guild | None = None) -> Role:
        """The role called ``name`` (in the first server by default), created on first use."""
        guild = guild or self.guild
        for role in guild.roles.values():
            if role.name == name:
                return role
        role = Role(
            self.ids.next(),
            guild.id,
            name,
            as_permissions(permissions),
            position=len(guild.roles),
        )
        guild.roles[role.id] = role
        self.dispatch(
            "GUILD_ROLE_CREATE",
            {"guild_id": str(guild.id), "role": role.payload()},
            intent=INTENT_GUILDS,
        )
        return role

    def channel(self, name: str, *, guild: Guild | None = None) -> Channel:
        """The text channel called ``name`` (in the first server by default), created on
        first use."""
        guild = guild or self.guild
        for channel in guild.channels.values():
            if channel.name == name:
                return channel
        channel = Channel(self.ids.next(), guild, name, position=len(guild.channels))
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        self.dispatch("CHANNEL_CREATE", channel.payload(), intent=INTENT_GUILDS)
        return channel

    def delete_channel(self, name: str, *, guild: Guild | None = None) -> None:
        """Delete a text channel, as a moderator would: posting there is 404, 10003."""
        channel = self.channel(name, guild=guild)
        del channel.guild.channels[channel.id]
        del self.channels[channel.id]
        self.dispatch("CHANNEL_DELETE", channel.payload(), intent=INTENT_GUILDS)
        self.changed()

    def dm_channel_for(self, user_id: int) -> int:
        """The id of the bot's DM channel with a user, opened on first use."""
        for channel_id, recipient in self.dm_channels.items():
            if recipient == user_id:
                return channel_id
        channel_id = self.ids.next()
        self.dm_channels[channel_id] = user_id
        return channel_id

    @property
    def default_channel(self) -> Channel:
        """Where members act unless told otherwise (the first channel, #general)."""
        return next(iter(self.guild.channels.values()))

    def bot_user_payload(self) -> dict[str, Any]:
        return self.bot_user.payload()

    # -- application commands ---------------------------------------------------------
    def registered_commands(self, guild_id: int | None) -> list[dict[str, Any]]:
        """The commands the bot registered globally (None) or for a server."""
        return list(self._commands.get(guild_id, []))

    def register_commands(
        self, guild_id: int | None, commands: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Replace a scope's commands, echoing them with ids; a command keeps its id
        when re-registered under the same name and type, as on Discord."""
        previous = {
            (c["name"], int(c.get("type", 1))): c["id"] for c in self._commands.get(guild_id, [])
        }
        registered = []
        for command in commands:
            kind = int(command.get("type", 1))
            echoed = {
                "id": previous.get((command["name"], kind)) or str(self.ids.next()),
                "application_id": str(self.application_id),
                "version": str(self.ids.next()),
                "type": kind,
                "default_member_permissions": None,
                "nsfw": False,
                "description": "",
                **command,
            }
            if guild_id is not None:
                echoed["guild_id"] = str(guild_id)
            registered.append(echoed)
        self._commands[guild_id] = registered
        self.changed()
        return registered

    def command(self, name: str, *, guild: Guild | None = None) -> dict[str, Any]:
        """A registered top-level command by name (the server's commands first)."""
        scope = (guild or self.guild).id
        for command in self.registered_commands(scope) + self.registered_commands(None):
            if command["name"] == name:
                return command
        raise KeyError(f"no registered command {name!r}")

    # -- messages and files -----------------------------------------------------------
    def store_upload(self, upload: Upload) -> StoredAttachment:
        """Put a member's upload on the CDN as an ephemeral attachment."""
        attachment_id = self.ids.next()
        folder = f"{self.cdn_base}/ephemeral-attachments/{self.application_id}"
        url = self.cdn.sign(f"{folder}/{attachment_id}/{quote(upload.filename)}")
        stored = StoredAttachment(
            attachment_id,
            upload.filename,
            upload.data,
            url,
            upload.content_type,
            upload.width,
            upload.height,
            upload.description,
            ephemeral=True,
        )
        self.attachments[attachment_id] = stored
        return stored

    def store_channel_file(
        self, channel: Channel, filename: str, data: bytes, description: str | None = None
    ) -> StoredAttachment:
        """A file posted in a channel, on the CDN under the channel's attachments."""
        return self._store_file(channel, filename, data, description)

    def _store_file(
        self, channel: Channel, filename: str, data: bytes, description: str | None
    ) -> StoredAttachment:
        attachment_id = self.ids.next()
        content_type = mimetypes.guess_type(filename)[0]
        width = height = None
        if (content_type or "").startswith("image/"):
            width, height = _picture_size(data)
        url = self.cdn.sign(
            f"{self.cdn_base}/attachments/{channel.id}/{attachment_id}/{quote(filename)}"
        )
        stored = StoredAttachment(
            attachment_id, filename, data, url, content_type, width, height, description
        )
        self.attachments[attachment_id] = stored
        return stored

    def _attachments(
        self, channel: Channel, data: dict[str, Any], files: Files, existing: list[StoredAttachment]
    ) -> list[StoredAttachment]:
        entries = data.get("attachments")
        by_index: dict[int, dict[str, Any]] = {}
        kept = list(existing)
        if entries is not None:
            wanted = {int(e["id"]) for e in entries}
            kept = [a for a in existing if a.id in wanted]
            by_index = {int(e["id"]): e for e in entries if int(e["id"]) < len(files)}
        new = [
            self._store_file(
                channel,
                by_index.get(i, {}).get("filename") or name,
                body,
                by_index.get(i, {}).get("description"),
            )
            for i, (name, body) in enumerate(files)
        ]
        return kept + new

    def reference_to(self, message: Message | None) -> dict[str, Any] | None:
        """The ``message_reference`` of a reply to ``message``."""
        if message is None:
            return None
        return {
            "type": 0,
            "message_id": str(message.id),
            "channel_id": str(message.channel.id),
            "guild_id": str(message.channel.guild.id),
        }

    def new_message(self, channel: Channel, author: User, **fields: Any) -> Message:
        message = Message(self.ids.next(), channel, author, created_at=self.clock.iso(), **fields)
        channel.messages.append(message)
        self.messages[message.id] = message
        return message

    def message_from_payload(
        self,
        channel: Channel,
        data: dict[str, Any],
        files: Files,
        *,
        flags: int,
        message_type: int,
        interaction: Interaction | None = None,
        referenced: Message | None = None,
    ) -> Message:
        """A message the bot sent: an interaction response, a followup or a channel post."""
        content = data.get("content") or ""
        allowed = data.get("allowed_mentions")
        ephemeral = bool(flags & limits.FLAG_EPHEMERAL)
        loading = bool(flags & limits.FLAG_LOADING)
        pinged, pinged_roles = (
            ([], []) if ephemeral or loading else parse_mentions(content, allowed, referenced)
        )
        return self.new_message(
            channel,
            self.bot_user,
            content=content,
            embed_payloads=list(data.get("embeds") or []),
            components=list(data.get("components") or []),
            attachments=self._attachments(channel, data, files, []),
            flags=flags,
            type=message_type,
            webhook_id=self.application_id if interaction is not None else None,
            interaction=interaction,
            visible_to=interaction.member.user.id
            if interaction is not None and ephemeral
            else None,
            reference=self.reference_to(referenced),
            referenced=referenced,
            allowed_mentions=allowed,
            pinged_ids=pinged,
            pinged_role_ids=pinged_roles,
        )

    def edit_message(
        self, message: Message, data: dict[str, Any], files: Files, *, replace_loading: bool = False
    ) -> None:
        """Apply an edit (fields present in ``data`` replace; ``attachments`` lists the
        files to keep). Filling a "thinking" message is not shown as an edit."""
        content = (data.get("content") or "") if "content" in data else message.content
        embeds = list(data.get("embeds") or []) if "embeds" in data else message.embed_payloads
        components = (
            list(data.get("components") or []) if "components" in data else message.components
        )
        attachments = message.attachments
        if "attachments" in data or files:
            attachments = self._attachments(message.channel, data, files, message.attachments)
        if not (content or embeds or components or attachments):
            raise errors.empty_message()
        was_loading = message.thinking
        if not was_loading:  # the empty "thinking" state is no version of the message
            message.versions.append(message.snapshot())
        message.content, message.embed_payloads = content, embeds
        message.components, message.attachments = components, attachments
        if data.get("flags") is not None and not replace_loading:
            changeable = limits.FLAG_SUPPRESS_EMBEDS | limits.FLAG_COMPONENTS_V2
            message.flags = (message.flags & ~changeable) | (int(data["flags"]) & changeable)
        message.flags &= ~limits.FLAG_LOADING
        if "allowed_mentions" in data:
            message.allowed_mentions = data["allowed_mentions"]
        if not was_loading:
            message.edited_at = self.clock.iso()
        if not message.ephemeral:
            payload = {**message.payload(), "guild_id": str(message.channel.guild.id)}
            self.dispatch("MESSAGE_UPDATE", payload, intent=INTENT_GUILD_MESSAGES)
        self.changed()

    def delete_message(self, message: Message) -> None:
        message.deleted = True
        if not message.ephemeral:
            payload = {
                "id": str(message.id),
                "channel_id": str(message.channel.id),
                "guild_id": str(message.channel.guild.id),
            }
            self.dispatch("MESSAGE_DELETE", payload, intent=INTENT_GUILD_MESSAGES)
        self.changed()

    def announce_message(self, message: Message, *, member: Member | None = None) -> None:
        """MESSAGE_CREATE to the bot for a public message; without the message content
        intent, other people's messages arrive with their content blanked, as on Discord."""
        if message.ephemeral:
            self.changed()
            return
        guild = message.channel.guild
        payload = {**message.payload(), "guild_id": str(guild.id)}
        if member is not None:
            payload["member"] = member.payload(with_user=False)
        # On the gateway each mentioned user carries a partial member, as on Discord.
        payload["mentions"] = [
            {**mention, "member": guild.members[int(mention["id"])].payload(with_user=False)}
            for mention in payload["mentions"]
        ]
        private = {**payload, "content": "", "embeds": [], "attachments": [], "components": []}
        for session in self.gateway.sessions_for(guild.id):
            if not session.intents & INTENT_GUILD_MESSAGES:
                continue
            readable = (
                message.author is self.bot_user
                or session.intents & INTENT_MESSAGE_CONTENT
                or self.bot_user.id in message.pinged_ids
            )
            session.dispatch("MESSAGE_CREATE", payload if readable else private)
        self.changed()

    # -- interactions -----------------------------------------------------------------
    async def start_interaction(
        self,
        kind: int,
        member: Member,
        channel: Channel,
        data: dict[str, Any],
        *,
        command_name: str = "",
        source_message: Message | None = None,
    ) -> Interaction:
        """Create an interaction and send INTERACTION_CREATE to the bot: to the session of
        the server's shard."""
        session = self.gateway.current(channel.guild.id)
        if session is None:
            raise RuntimeError(f"no bot session of {channel.guild.name!r}'s shard is connected "
                               "to the fake gateway")
        interaction = Interaction(
            id=self.ids.next(),
            token="aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48),
            type=kind,
            member=member,
            channel=channel,
            data=data,
            created_at=self.clock.now(),
            fake=self,
            command_name=command_name,
            source_message=source_message,
        )
        self.interactions[interaction.id] = interaction
        self.interactions_by_token[interaction.token] = interaction
        interaction.sent_at = time.perf_counter()
        session.dispatch("INTERACTION_CREATE", self._interaction_payload(interaction))
        self.changed()
        return interaction

    def _interaction_payload(self, interaction: Interaction) -> dict[str, Any]:
        channel, member = interaction.channel, interaction.member
        guild = channel.guild
        payload: dict[str, Any] = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": interaction.type,
            "data": interaction.data,
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "guild_id": str(guild.id),
            "channel_id": str(channel.id),
            "channel": {
                **channel.payload(),
                "permissions": str(guild.permissions_in(member, channel)),
            },
            "member": member.payload(channel=channel),
            "token": interaction.token,
            "version": 1,
            "app_permissions": str(guild.permissions_in(self.bot_member_in(guild), channel)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": guild.upload_limit,
        }
        if interaction.source_message is not None:
            payload["message"] = interaction.source_message.payload()
        return payload

    # -- gateway ----------------------------------------------------------------------
    def dispatch(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> None:
        """Send an event to every live bot session of its server's shard (``data``'s
        ``guild_id``; none: shard 0, as DMs) that has ``intent``, if given."""
        self.gateway.dispatch(event, data, intent=intent)

    def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py reconnects and RESUMEs its session."""
        self.gateway.request_reconnect()

    async def drop_connection(self) -> None:
        """Drop the bot's gateway socket (close code 4000); discord.py RESUMEs."""
        await self.gateway.drop()

    async def wait_for_bot(
        self,
        *,
        timeout: float = WAIT_LIMIT,
        commands: bool = True,
        replacing: GatewaySession | None = None,
        shard: tuple[int, int] | None = None,
    ) -> GatewaySession:
        """Wait until a bot is connected, has READY and GUILD_CREATE in hand, and (with
        ``commands``) has registered its commands. Use it for a bot in a subprocess.

        After a restart pass the old session as ``replacing`` to wait for the new bot
        (a killed bot's socket may not have closed yet); ``shard=(shard_id, count)``
        waits for a session of that shard."""

        def connected() -> GatewaySession | None:
            if shard is not None:
                live = [s for s in self.gateway.live_sessions() if s.shard == shard]
                session = live[-1] if live else None
            else:
                session = self.gateway.current()
            if session is None or not session.connected or session is replacing:
                return None
            return session

        what = f"shard {shard[0]} of {shard[1]} to connect" if shard else "a bot to connect"
        session = await self.wait_for(connected, timeout=timeout, what=what)
        if commands:
            await self.wait_for(
                lambda: self.registered_commands(self.guild.id) or self.registered_commands(None),
                timeout=timeout,
                what="the bot to register commands",
            )
        if session.outbox is not None:
            await asyncio.wait_for(session.outbox.join(), timeout)
        return session

    # -- test helpers -----------------------------------------------------------------
    def rate_limit(
        self, route: str, *, retry_after: float = 0.05, times: int = 1, is_global: bool = False
    ) -> None:
        """Answer the next ``times`` calls to ``route`` with 429 and ``retry_after``.

        ``route`` is a method and template, e.g. ``"POST /channels/{channel_id}/messages"``
        or ``"POST /webhooks/{application_id}/{token}"``.
        """
        method, template = route.split(" ", 1)
        self.rate_limits.append(RateLimit(method, template, retry_after, times, is_global))

    def hold(
        self, route: str, matching: Callable[[RecordedCall], bool] = lambda call: True
    ) -> Hold:
        """Keep the next call to ``route`` that ``matching`` accepts waiting, recorded but
        not applied, until the returned hold is released (a slow answer from Discord)."""
        method, template = route.split(" ", 1)
        hold = Hold(method, template, matching)
        self.holds.append(hold)
        return hold

    def cut(
        self, route: str, matching: Callable[[RecordedCall], bool] = lambda call: True,
        *, times: int = 1, applied: bool = False,
    ) -> Cut:
        """Close the connection, unanswered, on the next ``times`` calls to ``route`` that
        ``matching`` accepts (a network failing mid-request); with ``applied``, only after
        the call took effect (a post that landed, its answer lost)."""
        method, template = route.split(" ", 1)
        cut = Cut(method, template, matching, times, applied)
        self.cuts.append(cut)
        return cut

    def calls_to(self, route: str) -> list[RecordedCall]:
        """Recorded calls matching ``"METHOD /template"`` (or just ``"/template"``)."""
        if " " in route:
            return [c for c in self.calls if c.route == route]
        return [c for c in self.calls if c.route.split(" ", 1)[1] == route]

    def changed(self) -> None:
        """Wake everything waiting in :meth:`wait_for`."""
        self._changes.notify()

    async def wait_for(
        self, check: Callable[[], T | None], *, timeout: float = WAIT_LIMIT, what: str = ""
    ) -> T:
        """Wait until ``check()`` returns something truthy, and return it.

        ``check`` runs again whenever the fake's state changes (and every 50 ms, for
        conditions on state outside the fake). On timeout raises :class:`WaitTimeout`
        with the conversation so far.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeout(
                    f"gave up after {timeout}s waiting for {what or check}\n{self.transcript()}"
                )
            await asyncio.wait({self._changes.next()}, timeout=min(remaining, 0.05))

    def transcript(self) -> str:
        """The server as members see it, and the interactions: for failure messages."""
        lines = []
        for channel in self.channels.values():
            if not channel.messages:
                continue
            where = "" if channel.guild is self.guild else f" ({channel.guild.name})"
            lines.append(f"#{channel.name}{where}")
            for message in channel.messages:
                audience = "everyone"
                if message.ephemeral and message.visible_to in self.users:
                    audience = f"only {self.users[message.visible_to].name}"
                state = " (deleted)" if message.deleted else ""
                body = "thinking..." if message.thinking else repr(message.text[:200])
                extras = (
                    [f"buttons={[b.label for b in message.buttons]}"] if message.buttons else []
                )
                extras += (
                    [f"files={[a.filename for a in message.attachments]}"]
                    if message.attachments
                    else []
                )
                lines.append(
                    f"  {message.author.name} → {audience}{state}: {body} {' '.join(extras)}"
                )
        for interaction in self.interactions.values():
            status = (
                f"callback type {interaction.response_type}"
                if interaction.acknowledged
                else "no response"
            )
            if interaction.failed:
                status = "did not respond in time"
            lines.append(f"{interaction!r}: {status}, {len(interaction.followups)} followup(s)")
        return "\n".join(lines) or "(nothing happened)"
