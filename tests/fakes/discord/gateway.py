"""The fake gateway: HELLO, heartbeats, IDENTIFY → READY + GUILD_CREATE, RESUME →
replay + RESUMED, RECONNECT on request, REQUEST_GUILD_MEMBERS, and ordered dispatch of
events to the bot.

Frames are plain JSON text; discord.py accepts them even when it asked for
``compress=zlib-stream`` (it only inflates binary frames).

Intents are enforced as Discord documents them
(https://discord.com/developers/docs/events/gateway and ``gateway-events``):

- IDENTIFY with a privileged intent the application has not enabled closes the socket
  with 4014 "Disallowed intent(s)" (``FakeDiscord.enable_privileged_intents``).
- GUILD_CREATE carries every member only with GUILD_PRESENCES in a guild of at most
  ``large_threshold`` members; otherwise just the bot (nor members in voice, which the
  fake does not model) and, in a large guild, members with a role or a nickname.
- REQUEST_GUILD_MEMBERS for the whole list (``query=""``) needs GUILD_MEMBERS; without
  it Discord sends no GUILD_MEMBERS_CHUNK at all, and neither does the fake. A prefix
  ``query`` or ``user_ids`` (at most 100 members) works without it.

Sharding, as Discord documents it (https://discord.com/developers/docs/events/gateway,
"Sharding"): IDENTIFY may carry ``shard: [shard_id, num_shards]`` (absent: ``[0, 1]``, every
server); a shard id not below the count closes the socket with 4010 "Invalid shard". A
session receives READY, GUILD_CREATE and every event of a server only when
``(guild_id >> 22) % num_shards == shard_id``; events without a server (DMs) go to shard 0
only. Each shard is its own session, with its own sequence and RESUME.
``Gateway.hold_ready(shard_id)`` keeps a shard's READY back until ``release_ready``, as
when Discord is slow to bring one shard up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.fakes.discord.members import Member
    from tests.fakes.discord.server import FakeDiscord
    from tests.fakes.discord.state import Guild

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE_STATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41250
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_INVALID_SHARD = 4010
CLOSE_DISALLOWED_INTENTS = 4014
DEFAULT_LARGE_THRESHOLD = 50
REQUEST_MEMBERS_MAX = 100

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT


class GatewaySession:
    """One bot session: its shard, its sequence, the events it was sent (for RESUME),
    and the websocket it is attached to (None while the bot is reconnecting)."""

    def __init__(
        self,
        session_id: str,
        intents: int,
        large_threshold: int = DEFAULT_LARGE_THRESHOLD,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.session_id = session_id
        self.intents = intents
        self.large_threshold = large_threshold
        self.shard = shard  # (shard_id, num_shards), as IDENTIFY gave it
        self.sharded = False  # whether IDENTIFY gave a shard (READY then echoes it)
        self.seq = 0
        self.sent: list[tuple[int, str]] = []
        self.ws: web.WebSocketResponse | None = None
        self.outbox: asyncio.Queue[str | None] | None = None
        self.resumes = 0
        self.ended = False
        self.dropped_by_us = False

    @property
    def connected(self) -> bool:
        return self.ws is not None and not self.ws.closed

    def covers(self, guild_id: int | None) -> bool:
        """Whether this session gets the events of the server ``guild_id`` (None: a DM,
        which goes to shard 0)."""
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (guild_id >> 22) % count == shard_id

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Queue an event in order; it is kept for replay if the bot resumes."""
        self.seq += 1
        frame = json.dumps({"op": DISPATCH, "d": data, "s": self.seq, "t": event})
        self.sent.append((self.seq, frame))
        if self.outbox is not None:
            self.outbox.put_nowait(frame)

    def send_op(self, op: int, data: Any = None) -> None:
        if self.outbox is not None:
            self.outbox.put_nowait(json.dumps({"op": op, "d": data, "s": None, "t": None}))


class Gateway:
    """Accepts bot connections at ``/gateway`` and keeps their sessions."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: dict[str, GatewaySession] = {}
        self.identified: list[GatewaySession] = []
        self.connections = 0
        self._writers: set[asyncio.Task[None]] = set()
        self.held_shards: set[int] = set()
        self._held: list[GatewaySession] = []  # identified, READY not sent yet

    # -- for the fake ---------------------------------------------------------------
    def live_sessions(self) -> list[GatewaySession]:
        return [s for s in self.identified if not s.ended]

    def sessions_for(self, guild_id: int | None) -> list[GatewaySession]:
        """The live sessions that get the events of server ``guild_id`` (None: DMs)."""
        return [s for s in self.live_sessions() if s.covers(guild_id)]

    def current(self, guild_id: int | None = None) -> GatewaySession | None:
        """The session interactions go to: the newest one still alive (of the shard of
        server ``guild_id``, when given)."""
        live = self.live_sessions() if guild_id is None else self.sessions_for(guild_id)
        connected = [s for s in live if s.connected]
        return (connected or live or [None])[-1]

    def dispatch(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> None:
        """Send an event to the live sessions of the shard of its server (``guild_id`` in
        ``data``; none: shard 0)."""
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        for session in self.sessions_for(guild_id):
            if intent is None or session.intents & intent:
                session.dispatch(event, data)

    def hold_ready(self, shard_id: int) -> None:
        """Accept the IDENTIFYs of shard ``shard_id`` but send their READY and
        GUILD_CREATEs only at :meth:`release_ready`."""
        self.held_shards.add(shard_id)

    def release_ready(self, shard_id: int) -> None:
        self.held_shards.discard(shard_id)
        for session in [s for s in self._held if s.shard[0] == shard_id]:
            self._held.remove(session)
            self._ready(session)

    def request_reconnect(self) -> None:
        """Ask connected bots to reconnect (op 7); discord.py then RESUMEs."""
        for session in self.live_sessions():
            session.send_op(RECONNECT)

    async def drop(self, code: int = 4000) -> None:
        """Close connected bots' sockets as a network failure would; they RESUME."""
        for session in self.live_sessions():
            if session.ws is not None:
                session.dropped_by_us = True
                await session.ws.close(code=code)

    async def close(self) -> None:
        for session in self.live_sessions():
            if session.outbox is not None:
                session.outbox.put_nowait(None)
            if session.ws is not None:
                await session.ws.close()
        for task in list(self._writers):
            task.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)

    # -- the websocket --------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.connections += 1
        outbox: asyncio.Queue[str | None] = asyncio.Queue()
        writer = asyncio.create_task(self._write(ws, outbox))
        self._writers.add(writer)
        writer.add_done_callback(self._writers.discard)
        hello = {"heartbeat_interval": HEARTBEAT_INTERVAL_MS, "_trace": ["fake-gateway"]}
        outbox.put_nowait(json.dumps({"op": HELLO, "d": hello, "s": None, "t": None}))
        session: GatewaySession | None = None
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                op, data = frame.get("op"), frame.get("d")
                if op == HEARTBEAT:
                    outbox.put_nowait(
                        json.dumps({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
                    )
                elif op == IDENTIFY:
                    session = await self._identify(ws, outbox, data)
                elif op == RESUME:
                    session = self._resume(ws, outbox, data) or session
                elif op == REQUEST_MEMBERS and session is not None:
                    self._chunk_members(session, data)
        finally:
            if session is not None and session.ws is ws:
                session.ws = None
                session.outbox = None
                log.debug("socket of session %s closed with %s", session.session_id, ws.close_code)
                if ws.close_code == 1000 and not session.dropped_by_us:
                    session.ended = True  # the bot's clean close ends its session
                session.dropped_by_us = False
            outbox.put_nowait(None)
            self.fake.changed()
        return ws

    async def _write(self, ws: web.WebSocketResponse, outbox: asyncio.Queue[str | None]) -> None:
        """Send queued frames in order; ``outbox.join()`` waits until all are sent."""
        while True:
            frame = await outbox.get()
            try:
                if frame is None or ws.closed:
                    return
                await ws.send_str(frame)
            except ConnectionResetError:
                return
            finally:
                outbox.task_done()

    async def _identify(
        self, ws: web.WebSocketResponse, outbox: asyncio.Queue[str | None], data: dict[str, Any]
    ) -> GatewaySession | None:
        if data.get("token") != self.fake.token:
            log.warning("IDENTIFY with an unknown token; closing with 4004")
            await ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return None
        intents = int(data.get("intents", 0))
        disallowed = intents & PRIVILEGED_INTENTS & ~self.fake.privileged_intents
        if disallowed:
            log.warning("IDENTIFY with privileged intents %s not enabled; closing", disallowed)
            await ws.close(code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return None
        threshold = int(data.get("large_threshold") or DEFAULT_LARGE_THRESHOLD)
        shard = data.get("shard") or [0, 1]
        if not (len(shard) == 2 and 0 <= int(shard[0]) < int(shard[1])):
            log.warning("IDENTIFY with shard %s; closing with 4010", shard)
            await ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
            return None
        session = GatewaySession(secrets.token_hex(16), intents, threshold,
                                 (int(shard[0]), int(shard[1])))
        session.ws, session.outbox = ws, outbox
        self.sessions[session.session_id] = session
        self.identified.append(session)
        session.sharded = "shard" in data
        if session.shard[0] in self.held_shards:
            self._held.append(session)
            log.info("bot identified: session %s, shard %s; READY held", session.session_id,
                     session.shard)
            self.fake.changed()
        else:
            self._ready(session)
        return session

    def _ready(self, session: GatewaySession) -> None:
        """READY, then a GUILD_CREATE for every server of the session's shard."""
        fake = self.fake
        guilds = [guild for guild in fake.guilds.values() if session.covers(guild.id)]
        ready: dict[str, Any] = {
            "v": 10,
            "user": fake.bot_user_payload(),
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": fake.gateway_url,
            "application": {"id": str(fake.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "_trace": ["fake-gateway"],
        }
        if session.sharded:
            ready["shard"] = list(session.shard)
        session.dispatch("READY", ready)
        for guild in guilds:
            session.dispatch("GUILD_CREATE", self.guild_create(session, guild))
        log.info("bot identified: session %s, intents %s, shard %s", session.session_id,
                 session.intents, session.shard)
        fake.changed()

    def _resume(
        self, ws: web.WebSocketResponse, outbox: asyncio.Queue[str | None], data: dict[str, Any]
    ) -> GatewaySession | None:
        session = self.sessions.get(data.get("session_id", ""))
        if session is None or session.ended or data.get("token") != self.fake.token:
            outbox.put_nowait(json.dumps({"op": INVALID_SESSION, "d": False, "s": None, "t": None}))
            return None
        session.ws, session.outbox = ws, outbox
        last = data.get("seq") or 0
        for seq, frame in session.sent:
            if seq > last:
                outbox.put_nowait(frame)
        session.resumes += 1
        session.dispatch("RESUMED", {"_trace": ["fake-gateway"]})
        log.info("session %s resumed after seq %s", session.session_id, last)
        return session

    def guild_create(self, session: GatewaySession, guild: Guild) -> dict[str, Any]:
        """The guild as this session receives it: the member list depends on intents."""
        fake = self.fake
        payload = guild.payload(application_id=fake.application_id)
        everyone = list(guild.members.values())
        large = len(everyone) > session.large_threshold
        bot = fake.bot_member_in(guild)
        if not session.intents & INTENT_GUILD_PRESENCES:
            sent = [bot]
        elif large:
            # Offline members of a large guild come only with a role or a nickname.
            sent = [m for m in everyone if m is bot or m.roles or m.nick]
        else:
            sent = everyone
        payload["large"] = large
        payload["members"] = [m.payload() for m in sent]
        return payload

    def _chunk_members(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild = self.fake.guilds.get(int(data.get("guild_id") or 0))
        if guild is None or not session.covers(guild.id):
            return
        members = list(guild.members.values())
        not_found: list[str] = []
        if data.get("user_ids"):
            wanted = [int(u) for u in data["user_ids"]][:REQUEST_MEMBERS_MAX]
            found = [guild.members[u] for u in wanted if u in guild.members]
            not_found = [str(u) for u in wanted if u not in guild.members]
        else:
            query = str(data.get("query") or "").lower()
            limit = int(data.get("limit") or 0)
            if not query:
                if not session.intents & INTENT_GUILD_MEMBERS:
                    log.warning("REQUEST_GUILD_MEMBERS for everyone without GUILD_MEMBERS: ignored")
                    return
                found = members[:limit] if limit else members
            else:
                found = [m for m in members if _name_starts_with(m, query)]
                found = found[: min(limit or REQUEST_MEMBERS_MAX, REQUEST_MEMBERS_MAX)]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in found],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": not_found,
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)


def _name_starts_with(member: Member, query: str) -> bool:
    names = (member.user.name, member.user.payload()["global_name"], member.nick)
    return any(name and name.lower().startswith(query) for name in names)
