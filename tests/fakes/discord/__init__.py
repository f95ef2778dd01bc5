"""A wire-level fake of Discord for testing the bot as members use it.

The real, unpatched discord.py client connects to it: REST under
``http://127.0.0.1:PORT/api/v10``, the gateway at ``ws://127.0.0.1:PORT/gateway``, and
a CDN for attachments. It holds one server with #general and #videos, the bot, and an
owner (more on demand, see below); tests add members, roles and channels, then act as
members and assert on what members see.

Quick start (fixtures from ``tests/conftest.py``)::

    async def test_help(fake_discord, paddock):
        alice = fake_discord.member("alice")
        reply = await (await alice.slash("help")).reply()
        assert reply.ephemeral and reply.embed.title == "How to use Paddock"
        assert alice.last_seen() is reply and fake_discord.member("bob").seen() == []

Acting as a member (each returns the :class:`Interaction` at once; wait on it):

- ``await alice.slash("video text", prompt="a horse", duration=5, channel="videos")``;
  option values may be Member, Role, Channel, or ``Upload`` for attachment options
  (``Upload.image("cat.png", 640, 480)``, ``Upload.blob("big.mp4", 11 << 20)``).
  Raises ``CommandNotFound``, ``CommandHidden`` (default permissions) or
  ``OptionRejected`` (unknown/missing option, bad choice, out of range) where
  Discord's own client would not send it.
- ``await alice.press(message, "Re-roll")``; ``await alice.choose(message, id, ["a"])``
- ``modal = await ix.opened_modal()``; ``await alice.submit_modal(modal, {"Prompt": "x"})``
- ``await alice.autocomplete("video text", "provider", "jo")`` → choices
- ``await alice.say("hi", channel="general")`` → a member's own message

Reading the conversation:

- ``await ix.reply()`` → the first answer the member can read (after "thinking");
  ``ix.thinking``, ``ix.failed`` (no answer within 3 s), ``ix.original``,
  ``await ix.followup(n)``, ``ix.followups``, ``ix.choices``, ``ix.modal``.
- ``alice.seen(channel=None)``, ``alice.last_seen()``, ``alice.ephemerals()``,
  ``alice.pinged_in()``, ``await alice.wait_to_see(check, after=message)``.
- ``fake.channel("videos").visible`` / ``.files`` / ``.last_message``.
- A :class:`Message` has ``content``, ``embeds`` (``discord.Embed``), ``embed``,
  ``text``, ``buttons``/``button(label)``, ``selects``, ``attachments`` (``filename``,
  ``size``, ``data``, ``content_type``, ``width``, ``height``), ``ephemeral``,
  ``thinking``, ``edited_at``, ``versions`` (earlier states), ``deleted``,
  ``replies_to``, ``pings(member)``.
- ``await fake.wait_for(lambda: ..., timeout=5)`` waits for any condition (re-checked on
  every change); on timeout it fails with a transcript of the server.

What Discord enforces, with its codes: the 3 s deadline for the first response (404,
10062) and one response only (400, 40060); 15 min token life on ``fake.clock`` (401,
50027; ``fake.clock.advance(15 * 60)``); ``attachment_size_limit``
(``fake.guild.upload_limit``, 10 MiB; 413, 40005); content 2000; embeds (title 256,
description 4096, 25 fields, name 256, value 1024, footer 2048, author 256, 6000 in
all, 10 embeds); 5 rows of 5 buttons; button label 80, link-button URL 512; select
options 25 (label, value, description 100); custom_id 100 and unique; modals; 25 options and
25 choices per command; command names and descriptions, 8000 characters per command
(all 400, 50035 with Discord's ``errors`` paths); 100 slash and 15 of each context-menu
command per scope (400, 30032); empty messages (50006); the bot's channel permissions
(403, 50013), and without Embed Links its channel posts lose their embeds.
``fake.rate_limit("POST /channels/{channel_id}/messages", retry_after=0.1)`` answers
429 with ``retry_after`` and the X-RateLimit headers discord.py reads.

CDN links are signed like Discord's (``?ex=&is=&hm=``) and expire after 24 hours on
``fake.clock`` (then 404, recorded in ``fake.cdn_refused``); ``POST
/attachments/refresh-urls`` re-signs them. ``fake.delete_channel("videos")`` deletes a
channel (posts and followups there: 404, 10003). DMs: ``POST /users/@me/channels`` and
messages to it land in ``member.direct_messages``; ``member.accepts_dms = False`` makes
them 403, 50007.

Intents, as on Discord: no privileged intent is enabled for the application until a
test calls ``fake.enable_privileged_intents(members=True)`` (IDENTIFY with one closes
the gateway with 4014 otherwise). Without GUILD_PRESENCES, GUILD_CREATE carries only the
bot's own member, so ``guild.get_member()`` is None for everyone else: a bot must use
the member an interaction or a message carries (roles, permissions), or
``fetch_member``. The whole member list (REQUEST_GUILD_MEMBERS with ``query=""``) is
never answered without GUILD_MEMBERS, and ``GET /guilds/{id}/members`` answers 403
(50001) unless the intent is enabled for the application.

Every REST call is in ``fake.calls`` (``fake.calls_to("POST /channels/{channel_id}/messages")``)
with its JSON body, uploaded files, status and response.

Running a bot: the ``paddock`` fixture (in-process, ready in about 15 ms; override
``paddock_settings`` to give it more settings), ``running_bot(fake, bot)`` for any
discord.py client (enter it twice in a row to restart in-process), ``bot_process(fake)``
for ``python bot.py`` with ``fake.env()`` (``await proc.stop(signal.SIGKILL)`` to crash
it; a second ``bot_process`` waits for the new session). ``fake.request_reconnect()``
(op 7) and ``await fake.drop_connection()`` (close 4000) exercise RESUME; events sent
meanwhile are replayed. ``probe_bot`` is a bare bot whose commands run the test's
coroutine, for checking one Discord behaviour alone (see ``probe.py``).

More servers and sharding: ``fake.add_guild("Other", shard=(1, 2))`` adds a server (owner,
bot, #general, #videos) whose id falls on shard 1 of 2 by Discord's formula
``(guild_id >> 22) % count``; ``fake.member("bob", guild=other)`` acts there. A session
IDENTIFYing with ``shard: [id, count]`` receives READY, GUILD_CREATE and every event of
only its shard's servers (DMs: shard 0); ``GET /gateway/bot`` answers
``fake.recommended_shards`` and ``fake.max_concurrency``; ``fake.gateway.hold_ready(1)``
keeps shard 1's READY back until ``release_ready(1)``; ``bot_process(fake, shard=(1, 2))``
waits for that shard's session.

Not modelled: threads, reactions, voice, stickers, polls, webhooks other than
interaction tokens, the 2,500-servers-per-shard limit (4011), IDENTIFY rate limits, and
success-path X-RateLimit headers.
"""

from __future__ import annotations

from tests.fakes.discord.clock import FakeClock
from tests.fakes.discord.errors import DiscordError
from tests.fakes.discord.fixtures import BotProcess, bot_process, running_bot
from tests.fakes.discord.members import Member
from tests.fakes.discord.options import CommandHidden, CommandNotFound, OptionRejected, Upload
from tests.fakes.discord.probe import ProbeBot, ProbeButton, ProbeModal, button_view
from tests.fakes.discord.rest import RecordedCall
from tests.fakes.discord.server import FakeDiscord, WaitTimeout
from tests.fakes.discord.state import (
    Button,
    Channel,
    Interaction,
    Message,
    Modal,
    Role,
    StoredAttachment,
)

__all__ = [
    "BotProcess",
    "Button",
    "Channel",
    "CommandHidden",
    "CommandNotFound",
    "DiscordError",
    "FakeClock",
    "FakeDiscord",
    "Interaction",
    "Member",
    "Message",
    "Modal",
    "OptionRejected",
    "ProbeBot",
    "ProbeButton",
    "ProbeModal",
    "RecordedCall",
    "Role",
    "StoredAttachment",
    "Upload",
    "WaitTimeout",
    "bot_process",
    "button_view",
    "running_bot",
]
