"""/credits balance and /credits history, as members and moderators use them through the
fake Discord, with the real bot and ledger.

The ``paddock`` fixture here runs the bot on a settable clock (``clock``), so refill times
are known; ``tests/test_quota.py`` imports the same fixtures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import discord
import pytest

from bot import Paddock, Settings
from paddock.budget import FundingPolicy, Period
from paddock.services import Services
from tests.fakes.discord import FakeDiscord, Member, Message, OptionRejected, running_bot

WEDNESDAY = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)
MANAGE_GUILD = discord.Permissions(manage_guild=True)


class Clock:
    """The bot's clock: starts on a Wednesday morning and moves one second per reading,
    so every journal entry has its own time."""

    def __init__(self, start: datetime = WEDNESDAY) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def paddock(
    fake_discord: FakeDiscord, paddock_settings: Settings, clock: Clock, db_location: Path | str
) -> AsyncIterator[Paddock]:
    """The real bot, as in ``tests/fakes/discord/fixtures.py``, on ``clock``; its credits
    in SQLite, then in PostgreSQL (``db_location``)."""
    settings = paddock_settings
    if isinstance(db_location, str):
        settings = dataclasses.replace(settings, database_url=db_location)
    async with (
        Services.open(
            settings.database, settings.providers, prices=settings.prices, clock=clock
        ) as services,
        running_bot(fake_discord, Paddock(settings, services)) as bot,
    ):
        yield bot


async def answer(who: Member, command: str, /, **options: object) -> Message:
    """What ``who`` reads after running ``command``; it must be private."""
    reply = await (await who.slash(command, **options)).reply()
    assert reply.ephemeral, reply.text
    return reply


def fields(message: Message) -> dict[str, str]:
    assert message.embed is not None, message.text
    return {field.name or "": field.value or "" for field in message.embed.fields}


def at(moment: datetime) -> str:
    return f"<t:{int(moment.timestamp())}:f>"


# -- /credits balance ---------------------------------------------------------------------


async def test_a_member_sees_their_allowance_and_next_refill(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    ledger = paddock.services.ledger
    guild = fake_discord.guild.id
    await ledger.set_allowance(guild, 100, Period.DAILY, actor_id=1, reason="launch")
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")

    reply = await answer(alice, "credits balance")

    assert reply.embed is not None and reply.embed.title == "Your credits"
    assert reply.embed.description == "**100 credits** available to spend."
    assert fields(reply) == {
        "Held by running jobs": "0",
        "Granted credits": "0 (kept until spent)",
        "Allowance": "100 per day, 100 left",
        "Next refill": f"{at(datetime(2025, 3, 6, tzinfo=UTC))} "
        f"(<t:{int(datetime(2025, 3, 6, tzinfo=UTC).timestamp())}:R>)",
    }
    assert reply.embed.footer.text == "Videos are paid from each member's own credits."
    assert alice.seen() == [reply] and bob.seen() == []


@pytest.mark.parametrize(
    ("period", "allowance", "refill"),
    [
        (Period.WEEKLY, "250 per week, 250 left", at(datetime(2025, 3, 10, tzinfo=UTC))),
        (Period.MONTHLY, "250 per month, 250 left", at(datetime(2025, 4, 1, tzinfo=UTC))),
        (Period.NONE, "250 once, never refilled, 250 left", "Never"),
    ],
)
async def test_a_role_allowance_shows_its_own_period(
    fake_discord: FakeDiscord, paddock: Paddock, period: Period, allowance: str, refill: str
) -> None:
    vip = fake_discord.role("VIP")
    guild = fake_discord.guild.id
    await paddock.services.ledger.set_allowance(guild, 10, Period.DAILY, actor_id=1)
    await paddock.services.ledger.set_allowance(guild, 250, period, role_id=vip.id, actor_id=1)
    alice = fake_discord.member("alice", roles=[vip])

    shown = fields(await answer(alice, "credits balance"))

    assert shown["Allowance"] == allowance
    assert shown["Next refill"].startswith(refill)


async def test_held_granted_and_pool_credits_are_shown_apart(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    ledger, guild = paddock.services.ledger, fake_discord.guild.id
    alice = fake_discord.member("alice")
    await ledger.set_allowance(guild, 100, Period.DAILY, actor_id=1)
    await ledger.set_policy(guild, FundingPolicy.PERSONAL_THEN_POOL, actor_id=1)
    await ledger.fund_pool(guild, 500, actor_id=1)
    await ledger.grant(guild, alice.id, 30, actor_id=1, reason="prize", role_ids=())
    await ledger.reserve("job-1", guild, alice.id, 20, role_ids=())

    reply = await answer(alice, "credits balance")

    assert reply.embed is not None
    assert reply.embed.description == "**110 credits** available to spend."
    shown = fields(reply)
    assert shown["Held by running jobs"] == "20"
    assert shown["Granted credits"] == "30 (kept until spent)"
    assert shown["Allowance"] == "100 per day, 100 left"
    assert shown["Server pool"] == "500 available"
    assert reply.embed.footer.text == (
        "Videos are paid from the member's own credits first, then from the server pool."
    )


async def test_a_blocked_member_is_told_so(fake_discord: FakeDiscord, paddock: Paddock) -> None:
    alice = fake_discord.member("alice")
    await paddock.services.ledger.block(fake_discord.guild.id, alice.id, actor_id=1)

    reply = await answer(alice, "credits balance")

    assert reply.embed is not None and reply.embed.description is not None
    assert "Blocked from making videos on this server" in reply.embed.description


async def test_moderators_see_another_members_balance(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    guild = fake_discord.guild.id
    bob = fake_discord.member("bob")
    bob.nick = "Bobby"
    await paddock.services.ledger.grant(guild, bob.id, 42, actor_id=1, role_ids=())
    mod = fake_discord.member("mod", permissions=MANAGE_GUILD)
    helpers = fake_discord.role("Helpers")
    helper = fake_discord.member("helper", roles=[helpers])
    await paddock.services.config.set_moderator_role(guild, helpers.id, actor_id=1)

    by_mod = await answer(mod, "credits balance", member=bob)
    by_helper = await answer(helper, "credits balance", member=bob)

    for reply in (by_mod, by_helper):
        assert reply.embed is not None and reply.embed.title == "Credits of Bobby"
        assert reply.embed.description == "**42 credits** available to spend."
    assert bob.seen() == []


async def test_members_cannot_see_another_members_balance(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")

    reply = await answer(alice, "credits balance", member=bob)
    own = await answer(alice, "credits balance", member=alice)

    assert reply.content == (
        "Only moderators can see another member's credits: it needs the Manage Server "
        "permission or this server's moderator role."
    )
    assert reply.embed is None
    assert own.embed is not None and own.embed.title == "Your credits"
    assert await paddock.services.ledger.audit_log(fake_discord.guild.id, bob.id) == []
    assert alice.seen() == [reply, own]


async def test_bots_have_no_balance(fake_discord: FakeDiscord, paddock: Paddock) -> None:
    mod = fake_discord.member("mod", permissions=MANAGE_GUILD)
    robot = fake_discord.member("robot")
    robot.user.bot = True

    reply = await answer(mod, "credits balance", member=robot)

    assert reply.content == f"{robot.mention} is a bot; bots have no credits."


# -- /credits history ---------------------------------------------------------------------


async def test_history_lists_refills_spending_refunds_and_grants_newest_first(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    ledger, guild = paddock.services.ledger, fake_discord.guild.id
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    await ledger.set_allowance(guild, 100, Period.DAILY, actor_id=1)
    await ledger.reserve("a" * 32, guild, alice.id, 20, role_ids=())
    await ledger.settle("a" * 32, 15)
    await ledger.reserve("b" * 32, guild, alice.id, 10, role_ids=())
    await ledger.refund("b" * 32)
    await ledger.grant(guild, alice.id, 50, actor_id=1, reason="contest prize", role_ids=())
    await ledger.grant(guild, alice.id, -5, actor_id=1, role_ids=())
    await ledger.grant(guild, bob.id, 999, actor_id=1, reason="bob only", role_ids=())

    reply = await answer(alice, "credits history")

    assert reply.embed is not None and reply.embed.title == "Your credit history"
    lines = (reply.embed.description or "").splitlines()
    texts = [line.split(" · ", 1)[1] for line in lines]
    assert texts == [
        "5 taken back by a moderator → 130",
        "50 granted by a moderator (contest prize) → 135",
        f"Returned 10 for job `{'b' * 32}`, nothing charged → 85",
        f"Held 10 for job `{'b' * 32}` → 75",
        f"Charged 15 for job `{'a' * 32}`, 5 returned → 85",
        f"Held 20 for job `{'a' * 32}` → 80",
        "Allowance refilled: +100 → 100",
    ]
    assert lines[-1].startswith(at(WEDNESDAY)[:-6])  # a Discord timestamp, in the morning
    assert "bob only" not in reply.text
    assert reply.embed.footer.text == "Page 1, newest first."


async def test_history_comes_in_pages_of_fifteen(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    ledger, guild = paddock.services.ledger, fake_discord.guild.id
    alice = fake_discord.member("alice")
    for number in range(1, 21):
        await ledger.grant(guild, alice.id, number, actor_id=1, reason=f"grant {number}",
                           role_ids=())

    first = await answer(alice, "credits history")
    second = await answer(alice, "credits history", page=2)
    beyond = await answer(alice, "credits history", page=3)

    assert first.embed is not None and second.embed is not None
    first_lines = (first.embed.description or "").splitlines()
    second_lines = (second.embed.description or "").splitlines()
    assert len(first_lines) == 15 and "(grant 20)" in first_lines[0]
    assert first.embed.footer.text == (
        "Page 1, newest first. Older entries: /credits history page:2"
    )
    assert len(second_lines) == 5 and "(grant 1)" in second_lines[-1]
    assert second.embed.footer.text == "Page 2, newest first."
    assert beyond.content == "There is no page 3."
    with pytest.raises(OptionRejected, match="between 1 and 100"):
        await alice.slash("credits history", page=0)


async def test_a_new_member_has_no_history(fake_discord: FakeDiscord, paddock: Paddock) -> None:
    reply = await answer(fake_discord.member("alice"), "credits history")

    assert reply.content == "No credit history yet."
