"""The fake REST API under ``/api/v10`` and the CDN under ``/cdn``.

Every call is recorded (see :class:`RecordedCall`), checked against Discord's limits,
and answered with Discord's payloads or Discord's error bodies. Responses carry
``Content-Type: application/json`` exactly, the only form discord.py parses as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord import errors, limits
from tests.fakes.discord.cdn import REFRESH_MAX
from tests.fakes.discord.gateway import INTENT_GUILD_MEMBERS
from tests.fakes.discord.state import (
    APPLICATION_COMMAND,
    ATTACH_FILES,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    CHAT_INPUT_COMMAND,
    DEFAULT,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    EMBED_LINKS,
    MANAGE_MESSAGES,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    REPLY,
    SEND_MESSAGES,
    UPDATE_MESSAGE,
    VIEW_CHANNEL,
    Channel,
    DirectMessage,
    Guild,
    Interaction,
    Message,
    Modal,
)

if TYPE_CHECKING:
    from tests.fakes.discord.server import FakeDiscord

log = logging.getLogger(__name__)

API = "/api/v10"
Files = list[tuple[str, bytes]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BODY = web.RequestKey("json_body", object)
FILES = web.RequestKey("uploaded_files", list)

# Which callback types each interaction type may use as its first response.
ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
    MESSAGE_COMPONENT: {
        CHANNEL_MESSAGE,
        DEFERRED_CHANNEL_MESSAGE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
        MODAL,
    },
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {
        CHANNEL_MESSAGE,
        DEFERRED_CHANNEL_MESSAGE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
    },
}


@dataclass
class RecordedCall:
    """One REST call the bot made, and what the fake answered.

    ``route`` is the template (``POST /channels/{channel_id}/messages``) for matching,
    or the plain path when the fake has no such route (``known`` is then False);
    ``json`` is the JSON body or multipart ``payload_json``; ``files`` the uploads.
    """

    method: str
    path: str
    route: str
    query: dict[str, str]
    json: Any
    files: Files
    status: int = 0
    response: Any = None
    known: bool = True

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} → {self.status}>"


@dataclass
class RateLimit:
    """A 429 the fake gives ``times`` times on a route, as a test asked."""

    method: str
    route: str
    retry_after: float
    times: int
    is_global: bool = False
    scope: str = "user"
    served: int = field(default=0)


@dataclass
class Hold:
    """A call the fake keeps waiting before it applies it, as a test asked: a slow Discord.

    The first call to ``route`` that ``matching`` accepts waits (already recorded, not yet
    applied) until :meth:`release`; ``call`` is it once it has arrived.
    """

    method: str
    route: str
    matching: Callable[[RecordedCall], bool]
    released: asyncio.Event = field(default_factory=asyncio.Event)
    call: RecordedCall | None = None

    def release(self) -> None:
        self.released.set()


@dataclass
class Cut:
    """Calls the fake answers by closing the connection, as a test asked: a network that
    fails mid-request. Each of the next ``times`` calls to ``route`` that ``matching``
    accepts is recorded (``status`` stays None), then (once applied, with ``applied``) its
    connection is closed unanswered.
    """

    method: str
    route: str
    matching: Callable[[RecordedCall], bool]
    times: int
    applied: bool = False  # apply the call first: it happened, only its answer is lost
    calls: list[RecordedCall] = field(default_factory=list)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with ``Content-Type: application/json`` and no charset, like Discord."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def no_content() -> web.Response:
    return web.Response(status=204)


class RestApi:
    """Route handlers; all state lives on the :class:`FakeDiscord`."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def add_routes(self, app: web.Application) -> None:
        add = app.router.add_route
        application = API + "/applications/{application_id}"
        webhook = API + "/webhooks/{application_id}/{token}"
        channel_messages = API + "/channels/{channel_id}/messages"
        guild = API + "/guilds/{guild_id}"
        for method, path, handler in [
            ("GET", API + "/users/@me", self.get_me),
            ("GET", API + "/users/{user_id}", self.get_user),
            ("GET", API + "/oauth2/applications/@me", self.get_application),
            ("GET", API + "/applications/@me", self.get_application),
            ("GET", API + "/gateway", self.get_gateway),
            ("GET", API + "/gateway/bot", self.get_gateway_bot),
            ("GET", application + "/commands", self.get_commands),
            ("PUT", application + "/commands", self.put_commands),
            ("POST", application + "/commands", self.post_command),
            ("DELETE", application + "/commands/{command_id}", self.delete_command),
            ("GET", application + "/guilds/{guild_id}/commands", self.get_commands),
            ("PUT", application + "/guilds/{guild_id}/commands", self.put_commands),
            ("POST", application + "/guilds/{guild_id}/commands", self.post_command),
            (
                "DELETE",
                application + "/guilds/{guild_id}/commands/{command_id}",
                self.delete_command,
            ),
            (
                "POST",
                API + "/interactions/{interaction_id}/{token}/callback",
                self.interaction_callback,
            ),
            ("POST", webhook, self.create_followup),
            ("GET", webhook + "/messages/{message_id}", self.get_webhook_message),
            ("PATCH", webhook + "/messages/{message_id}", self.edit_webhook_message),
            ("DELETE", webhook + "/messages/{message_id}", self.delete_webhook_message),
            ("GET", API + "/channels/{channel_id}", self.get_channel),
            ("GET", channel_messages, self.get_channel_messages),
            ("POST", channel_messages, self.create_channel_message),
            ("GET", channel_messages + "/{message_id}", self.get_channel_message),
            ("PATCH", channel_messages + "/{message_id}", self.edit_channel_message),
            ("DELETE", channel_messages + "/{message_id}", self.delete_channel_message),
            ("POST", API + "/channels/{channel_id}/typing", self.typing),
            ("GET", guild, self.get_guild),
            ("GET", guild + "/channels", self.get_guild_channels),
            ("GET", guild + "/roles", self.get_guild_roles),
            ("GET", guild + "/members", self.get_guild_members),
            ("GET", guild + "/members/{user_id}", self.get_guild_member),
            ("POST", API + "/users/@me/channels", self.open_dm),
            ("POST", API + "/attachments/refresh-urls", self.refresh_urls),
            ("GET", "/cdn/{kind}/{owner_id}/{attachment_id}/{filename}", self.cdn),
        ]:
            add(method, path, handler)
        add("*", API + "/{tail:.*}", self.unknown_route)

    # -- middleware: parse, record, authenticate, rate limit, turn errors into bodies --
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API):
            return await handler(request)
        body, files = await _read_body(request)
        request[BODY], request[FILES] = body, files
        resource = request.match_info.route.resource
        known = resource is not None and "{tail}" not in resource.canonical
        template = resource.canonical if known and resource is not None else request.path
        call = RecordedCall(
            method=request.method,
            path=request.path[len(API) :],
            route=f"{request.method} {template[len(API) :]}",
            query=dict(request.query),
            json=body,
            files=files,
            known=known,
        )
        self.fake.calls.append(call)
        try:
            if (
                not _token_in_url(call.path)
                and request.headers.get("Authorization") != f"Bot {self.fake.token}"
            ):
                raise errors.unauthorized()
            cut = self._cut(call)
            if cut is not None:
                if cut.applied:
                    await handler(request)
                assert request.transport is not None
                request.transport.close()  # the client sees the server disconnect
                self.fake.changed()
                return web.Response(status=500)  # never reaches the client
            await self._held(call)
            limited = self._rate_limited(call)
            response = limited or await handler(request)
        except errors.DiscordError as error:
            log.info("%s %s refused: %s", request.method, request.path, error)
            response = json_response(error.body(), error.status)
        call.status = response.status
        if isinstance(response, web.Response) and response.body:
            call.response = json.loads(response.body)  # type: ignore[arg-type]
        self.fake.changed()
        return response

    def _cut(self, call: RecordedCall) -> Cut | None:
        for cut in self.fake.cuts:
            if (
                len(cut.calls) < cut.times
                and f"{cut.method} {cut.route}" == call.route
                and cut.matching(call)
            ):
                cut.calls.append(call)
                return cut
        return None

    async def _held(self, call: RecordedCall) -> None:
        for hold in self.fake.holds:
            if (
                hold.call is None
                and f"{hold.method} {hold.route}" == call.route
                and hold.matching(call)
            ):
                hold.call = call
                self.fake.changed()
                await hold.released.wait()
                return

    def _rate_limited(self, call: RecordedCall) -> web.Response | None:
        for rule in self.fake.rate_limits:
            if (
                rule.route == call.route.split(" ", 1)[1]
                and rule.method == call.method
                and rule.served < rule.times
            ):
                rule.served += 1
                reset_after = rule.retry_after
                headers = {
                    "Retry-After": str(math.ceil(reset_after)),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                    "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                    "X-RateLimit-Bucket": f"fake-{abs(hash(rule.route)):x}",
                    "X-RateLimit-Scope": "global" if rule.is_global else rule.scope,
                    "Via": "1.1 google",
                }
                if rule.is_global:
                    headers["X-RateLimit-Global"] = "true"
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": reset_after,
                    "global": rule.is_global,
                }
                return json_response(body, 429, headers)
        return None

    async def unknown_route(self, request: web.Request) -> web.Response:
        log.warning("the fake Discord has no route for %s %s", request.method, request.path)
        raise errors.not_found()

    # -- identity ---------------------------------------------------------------------
    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(
            {**self.fake.bot_user_payload(), "verified": True, "mfa_enabled": False}
        )

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.fake.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise errors.DiscordError(404, 10013, "Unknown User")
        return json_response(user.payload())

    async def get_application(self, request: web.Request) -> web.Response:
        fake = self.fake
        return json_response(
            {
                "id": str(fake.application_id),
                "name": fake.bot_user.name,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot": fake.bot_user_payload(),
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": fake.owner.user.payload(),
                "team": None,
                "flags": 0,
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": 1,
                "tags": [],
            }
        )

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000,
                 "max_concurrency": self.fake.max_concurrency}
        return json_response({"url": self.fake.gateway_url,
                              "shards": self.fake.recommended_shards,
                              "session_start_limit": limit})

    # -- application commands ---------------------------------------------------------
    def _command_scope(self, request: web.Request) -> int | None:
        if int(request.match_info["application_id"]) != self.fake.application_id:
            raise errors.missing_access()
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return None
        if int(guild_id) not in self.fake.guilds:
            raise errors.missing_access()
        return int(guild_id)

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.fake.registered_commands(self._command_scope(request)))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        body = request[BODY] or []
        limits.check_commands(body)
        limits.check_command_counts(body)
        return json_response(self.fake.register_commands(scope, body))

    async def post_command(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        body = request[BODY] or {}
        limits.check_commands([body], single=True)
        others = [
            c
            for c in self.fake.registered_commands(scope)
            if (c["name"], int(c.get("type", 1))) != (body["name"], int(body.get("type", 1)))
        ]
        limits.check_command_counts([*others, body])
        registered = self.fake.register_commands(scope, [*others, body])
        return json_response(registered[-1], 201)

    async def delete_command(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        commands = self.fake.registered_commands(scope)
        kept = [c for c in commands if c["id"] != request.match_info["command_id"]]
        if len(kept) == len(commands):
            raise errors.unknown_command()
        self.fake.register_commands(scope, kept)
        return no_content()

    # -- interactions -----------------------------------------------------------------
    async def interaction_callback(self, request: web.Request) -> web.Response:
        fake = self.fake
        interaction = fake.interactions.get(int(request.match_info["interaction_id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise errors.unknown_interaction()
        if interaction.responded_at is None:
            interaction.responded_at = time.perf_counter()
        if interaction.acknowledged:
            raise errors.already_acknowledged()
        if fake.clock.now() > interaction.created_at + fake.response_deadline:
            raise errors.unknown_interaction()
        body = request[BODY] or {}
        kind, data = int(body.get("type", 0)), body.get("data") or {}
        if kind not in ALLOWED_CALLBACKS[interaction.type] or (
            kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and interaction.source_message is None
        ):
            raise errors.invalid_form_body(
                ("type",),
                "INTERACTION_RESPONSE_TYPE_INVALID",
                "Interaction response type is invalid",
            )
        upload_limit = interaction.channel.guild.upload_limit
        resource: dict[str, Any] | None = None
        if kind == CHANNEL_MESSAGE:
            limits.check_message(data, request[FILES], upload_limit=upload_limit)
            message = self._new_response_message(interaction, data, request[FILES])
            interaction.original = message
            interaction.answered.append(message)
            fake.announce_message(message)
            resource = {"type": kind, "message": message.payload()}
        elif kind == DEFERRED_CHANNEL_MESSAGE:
            message = self._new_response_message(
                interaction, {"flags": data.get("flags", 0)}, [], loading=True
            )
            interaction.original = message
            fake.announce_message(message)
            resource = {"type": kind}
        elif kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            interaction.original = interaction.source_message
            if kind == UPDATE_MESSAGE and interaction.original is not None:
                limits.check_message(data, request[FILES], upload_limit=upload_limit, editing=True)
                fake.edit_message(interaction.original, data, request[FILES])
                interaction.answered.append(interaction.original)
                resource = {"type": kind, "message": interaction.original.payload()}
        elif kind == AUTOCOMPLETE_RESULT:
            limits.check_autocomplete(data)
            interaction.choices = list(data.get("choices") or [])
        elif kind == MODAL:
            limits.check_modal(data)
            interaction.modal = Modal(
                data["custom_id"], data["title"], data["components"], interaction
            )
        interaction.response_type = kind
        fake.changed()
        if request.query.get("with_response") not in ("1", "true", "True"):
            return no_content()
        original = interaction.original
        callback: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_id": str(original.id) if original else None,
                "response_message_loading": bool(original and original.thinking),
                "response_message_ephemeral": bool(original and original.ephemeral),
            }
        }
        if resource is not None:
            callback["resource"] = resource
        return json_response(callback)

    def _new_response_message(
        self, interaction: Interaction, data: dict[str, Any], files: Files, *, loading: bool = False
    ) -> Message:
        flags = int(data.get("flags") or 0) & (
            limits.FLAG_EPHEMERAL
            | limits.FLAG_SUPPRESS_EMBEDS
            | limits.FLAG_SUPPRESS_NOTIFICATIONS
            | limits.FLAG_COMPONENTS_V2
        )
        if loading:
            flags |= limits.FLAG_LOADING
        message_type = CHAT_INPUT_COMMAND if interaction.type == APPLICATION_COMMAND else DEFAULT
        return self.fake.message_from_payload(
            interaction.channel,
            data,
            files,
            flags=flags,
            message_type=message_type,
            interaction=interaction,
        )

    def _interaction_for_webhook(self, request: web.Request) -> Interaction:
        fake = self.fake
        interaction = fake.interactions_by_token.get(request.match_info["token"])
        if interaction is None or int(request.match_info["application_id"]) != fake.application_id:
            raise errors.unknown_webhook()
        if interaction.token_expired:
            raise errors.invalid_webhook_token()
        if not interaction.acknowledged:
            raise errors.unknown_webhook()
        return interaction

    def _webhook_message(self, interaction: Interaction, message_id: str) -> Message:
        if message_id == "@original":
            if interaction.original is None:
                raise errors.unknown_message()
            return interaction.original
        message = self.fake.messages.get(int(message_id))
        if (
            message is None
            or message.deleted
            or message not in (interaction.original, *interaction.followups)
        ):
            raise errors.unknown_message()
        return message

    async def create_followup(self, request: web.Request) -> web.Response:
        interaction = self._interaction_for_webhook(request)
        if interaction.channel.id not in self.fake.channels:
            raise errors.unknown_channel()  # deleted since the command was used
        data, files = request[BODY] or {}, request[FILES]
        limits.check_message(data, files, upload_limit=interaction.channel.guild.upload_limit)
        original = interaction.original
        if (original is not None and original.thinking and not original.deleted
                and not interaction.followups):
            # The first followup after a "thinking" defer replaces the loading message,
            # and keeps the defer's ephemerality (unless the bot deleted it: then the
            # followup is a message of its own, with its own flags).
            self.fake.edit_message(original, data, files, replace_loading=True)
            message = original
        else:
            flags = int(data.get("flags") or 0) & (
                limits.FLAG_EPHEMERAL
                | limits.FLAG_SUPPRESS_EMBEDS
                | limits.FLAG_SUPPRESS_NOTIFICATIONS
                | limits.FLAG_COMPONENTS_V2
            )
            message = self.fake.message_from_payload(
                interaction.channel,
                data,
                files,
                flags=flags,
                message_type=DEFAULT,
                interaction=interaction,
            )
            self.fake.announce_message(message)
        interaction.followups.append(message)
        interaction.answered.append(message)
        self.fake.changed()
        if request.query.get("wait") in ("1", "true", "True"):
            return json_response(message.payload())
        return no_content()

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction_for_webhook(request)
        return json_response(
            self._webhook_message(interaction, request.match_info["message_id"]).payload()
        )

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction_for_webhook(request)
        message = self._webhook_message(interaction, request.match_info["message_id"])
        data, files = request[BODY] or {}, request[FILES]
        limits.check_message(
            data, files, upload_limit=interaction.channel.guild.upload_limit, editing=True
        )
        self.fake.edit_message(message, data, files, replace_loading=message.thinking)
        if message not in interaction.answered:
            interaction.answered.append(message)
        return json_response(message.payload())

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction_for_webhook(request)
        message = self._webhook_message(interaction, request.match_info["message_id"])
        self.fake.delete_message(message)
        return no_content()

    # -- channels and messages --------------------------------------------------------
    def _channel(self, request: web.Request) -> Channel:
        channel = self.fake.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise errors.unknown_channel()
        return channel

    def _channel_message(self, request: web.Request) -> tuple[Channel, Message]:
        channel = self._channel(request)
        message = self.fake.messages.get(int(request.match_info["message_id"]))
        if (
            message is None
            or message.channel is not channel
            or message.deleted
            or message.ephemeral
        ):
            raise errors.unknown_message()
        return channel, message

    def _require(self, channel: Channel, permissions: int) -> None:
        have = channel.guild.permissions_in(self.fake.bot_member_in(channel.guild), channel)
        if have & permissions != permissions:
            raise errors.missing_permissions()

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self._channel(request).payload())

    async def get_channel_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self._require(channel, VIEW_CHANNEL)
        limit = min(int(request.query.get("limit", 50)), 100)
        before = int(request.query.get("before", 1 << 63))
        after = int(request.query.get("after", 0))
        found = [m for m in channel.visible if after < m.id < before]  # oldest first
        # Discord gives the messages next to ``after`` when only it is given, else those
        # next to ``before`` (the newest); either way, newest first.
        page = found[:limit] if "after" in request.query and "before" not in request.query \
            else found[-limit:]
        return json_response([m.payload() for m in reversed(page)])

    async def get_channel_message(self, request: web.Request) -> web.Response:
        _channel, message = self._channel_message(request)
        return json_response(message.payload())

    def _without_unpermitted_embeds(self, channel: Channel, data: dict[str, Any]) -> dict[str, Any]:
        """A bot without Embed Links in the channel has its embeds silently dropped (no
        error; a message left with nothing else is then empty, 50006). Interaction
        responses and followups go through the webhook and keep theirs."""
        have = channel.guild.permissions_in(self.fake.bot_member_in(channel.guild), channel)
        if have & EMBED_LINKS or not data.get("embeds"):
            return data
        return {**data, "embeds": []}

    async def create_channel_message(self, request: web.Request) -> web.Response:
        if int(request.match_info["channel_id"]) in self.fake.dm_channels:
            return self._direct_message(request)
        channel = self._channel(request)
        data, files = request[BODY] or {}, request[FILES]
        self._require(channel, VIEW_CHANNEL | SEND_MESSAGES | (ATTACH_FILES if files else 0))
        limits.check_embeds(data.get("embeds") or [])
        data = self._without_unpermitted_embeds(channel, data)
        limits.check_message(data, files, upload_limit=channel.guild.upload_limit)
        referenced = None
        reference = data.get("message_reference")
        if reference is not None:
            found = self.fake.messages.get(int(reference.get("message_id", 0)))
            if found is not None and not found.deleted and not found.ephemeral:
                referenced = found
            elif reference.get("fail_if_not_exists", True):
                raise errors.invalid_form_body(
                    ("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
        flags = int(data.get("flags") or 0) & (
            limits.FLAG_SUPPRESS_EMBEDS
            | limits.FLAG_SUPPRESS_NOTIFICATIONS
            | limits.FLAG_COMPONENTS_V2
        )
        message = self.fake.message_from_payload(
            channel,
            data,
            files,
            flags=flags,
            message_type=REPLY if referenced else DEFAULT,
            referenced=referenced,
        )
        self.fake.announce_message(message)
        return json_response(message.payload())

    async def edit_channel_message(self, request: web.Request) -> web.Response:
        channel, message = self._channel_message(request)
        if message.author is not self.fake.bot_user:
            raise errors.cannot_edit_others()
        data, files = request[BODY] or {}, request[FILES]
        limits.check_message(data, files, upload_limit=channel.guild.upload_limit, editing=True)
        data = self._without_unpermitted_embeds(channel, data)
        self.fake.edit_message(message, data, files)
        return json_response(message.payload())

    async def delete_channel_message(self, request: web.Request) -> web.Response:
        channel, message = self._channel_message(request)
        if message.author is not self.fake.bot_user:
            self._require(channel, MANAGE_MESSAGES)
        self.fake.delete_message(message)
        return no_content()

    async def typing(self, request: web.Request) -> web.Response:
        self._channel(request)
        return no_content()

    # -- guild ------------------------------------------------------------------------
    def _guild(self, request: web.Request) -> Guild:
        guild = self.fake.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise errors.unknown_guild()
        return guild

    async def get_guild(self, request: web.Request) -> web.Response:
        payload = self._guild(request).payload(application_id=self.fake.application_id)
        keep = {
            "members",
            "channels",
            "threads",
            "presences",
            "voice_states",
            "large",
            "member_count",
        }
        return json_response({k: v for k, v in payload.items() if k not in keep})

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        return json_response([c.payload() for c in self._guild(request).channels.values()])

    async def get_guild_roles(self, request: web.Request) -> web.Response:
        return json_response([r.payload() for r in self._guild(request).roles.values()])

    async def get_guild_members(self, request: web.Request) -> web.Response:
        """List Guild Members needs the GUILD_MEMBERS intent enabled for the application
        (the Developer Portal switch, whatever the gateway asked for): 403 50001 without."""
        guild = self._guild(request)
        if not self.fake.privileged_intents & INTENT_GUILD_MEMBERS:
            raise errors.missing_access()
        limit = min(int(request.query.get("limit", 1)), 1000)
        after = int(request.query.get("after", 0))
        members = sorted(guild.members.values(), key=lambda m: m.id)
        return json_response([m.payload() for m in members if m.id > after][:limit])

    async def get_guild_member(self, request: web.Request) -> web.Response:
        member = self._guild(request).members.get(int(request.match_info["user_id"]))
        if member is None:
            raise errors.unknown_member()
        return json_response(member.payload())

    # -- DMs --------------------------------------------------------------------------
    async def open_dm(self, request: web.Request) -> web.Response:
        """Create DM: the channel between the bot and a member of its server."""
        body = request[BODY] or {}
        member = self.fake.find_member(int(body.get("recipient_id", 0)))
        if member is None:
            raise errors.invalid_form_body(
                ("recipient_id",), "NUMBER_TYPE_COERCE", "Value is not a known user."
            )
        channel_id = self.fake.dm_channel_for(member.id)
        return json_response(
            {"id": str(channel_id), "type": 1, "last_message_id": None,
             "recipients": [member.user.payload()]}
        )

    def _direct_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        member = self.fake.find_member(self.fake.dm_channels[channel_id])
        assert member is not None  # a DM channel is opened only with a member
        data, files = request[BODY] or {}, request[FILES]
        limits.check_message(data, files, upload_limit=limits.DEFAULT_UPLOAD_LIMIT)
        if not member.accepts_dms:
            raise errors.cannot_message_user()
        message = DirectMessage(
            self.fake.ids.next(), member.id, data.get("content") or "", data.get("embeds") or []
        )
        member.direct_messages.append(message)
        return json_response({
            "id": str(message.id), "channel_id": str(channel_id), "type": 0,
            "author": self.fake.bot_user_payload(), "content": message.content,
            "embeds": message.embed_payloads, "attachments": [], "components": [],
            "mentions": [], "mention_roles": [], "mention_everyone": False, "pinned": False,
            "tts": False, "timestamp": self.fake.clock.iso(), "edited_timestamp": None,
        })

    # -- CDN --------------------------------------------------------------------------
    async def refresh_urls(self, request: web.Request) -> web.Response:
        """Fresh signatures for attachment links (old ones expire after about 24 h)."""
        urls = (request[BODY] or {}).get("attachment_urls")
        if not isinstance(urls, list) or not 1 <= len(urls) <= REFRESH_MAX:
            raise errors.bad_length(("attachment_urls",), 1, REFRESH_MAX)
        refreshed = []
        for url in urls:
            fresh = url
            if isinstance(url, str) and url.startswith(self.fake.cdn_base + "/"):
                fresh = self.fake.cdn.sign(url)
            refreshed.append({"original": url, "refreshed": fresh})
        return json_response({"refreshed_urls": refreshed})

    async def cdn(self, request: web.Request) -> web.Response:
        stored = self.fake.attachments.get(int(request.match_info["attachment_id"]))
        self.fake.cdn_fetches.append(request.path)
        if stored is None or stored.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        why = self.fake.cdn.problem(request.path, request.query)
        if why is not None:
            self.fake.cdn_refused.append((request.path, why))
            self.fake.changed()
            return web.Response(status=404, text="This content is no longer available.")
        return web.Response(
            body=stored.data, content_type=stored.content_type or "application/octet-stream"
        )


def _token_in_url(path: str) -> bool:
    """Interaction callbacks and webhook executions authenticate by the token in the URL."""
    return path.startswith("/interactions/") or path.startswith("/webhooks/")


async def _read_body(request: web.Request) -> tuple[Any, Files]:
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        payload: Any = None
        files: Files = []
        async for part in reader:
            if part.name == "payload_json":
                payload = json.loads(await part.text())  # type: ignore[union-attr]
            elif part.name and part.name.startswith("files["):
                files.append((part.filename or "file", bytes(await part.read())))  # type: ignore[union-attr]
        return payload, files
    raw = await request.read()
    if raw and request.content_type == "application/json":
        return json.loads(raw), []
    return None, []
