"""Small helpers for the bot's end-to-end tests."""

from __future__ import annotations

from collections import Counter

from tests.fakes.discord import Interaction, Message
from tests.fakes.waiting import WAIT_LIMIT


async def give_credits(bot, member, amount: int) -> None:
    """A moderator's grant, straight through the ledger."""
    await bot.services.ledger.grant(
        member.guild.id, member.user.id, amount, actor_id=1, reason="test credits", role_ids=()
    )


async def available(bot, member) -> int:
    """What the member could spend now, as the ledger says."""
    balance = await bot.services.ledger.balance(member.guild.id, member.user.id, role_ids=())
    return balance.available


async def holds(bot, state: str = "pending") -> list:
    return await bot.services.ledger.holds(state=state)


RESERVING = "Reserving credits…"  # the job card's status while its credits are reserved


async def decided(asked: Interaction, timeout: float = WAIT_LIMIT) -> Message:
    """What the member reads once a ``/video`` has been decided: the public job card
    filled in after the reservation (no longer "Reserving credits…"), or the private
    answer (a refusal). The card is the command's first answer, shown while the credits
    are reserved, so ``asked.reply()`` alone would return before the reservation."""

    def answer() -> Message | None:
        for message in asked.answered:
            if message.deleted or message.thinking:
                continue
            if message.ephemeral or _status(message) != RESERVING:
                return message
        return None

    return await asked.fake.wait_for(answer, timeout=timeout, what=f"a decision for {asked!r}")


def _status(message: Message) -> str | None:
    for embed in message.embed_payloads:
        for field in embed.get("fields") or ():
            if field.get("name") == "Status":
                return field.get("value")
    return None
def posts_by_job(fake) -> Counter[str]:
    """How many times each job's video was posted, over every server's #general: a
    finished video is a message with a file and ``Job <id>`` in its embed's footer."""
    counts: Counter[str] = Counter()
    for guild in fake.guilds.values():
        for message in fake.channel("general", guild=guild).visible:
            if message.attachments and message.embeds:
                counts[message.embed.footer.text] += 1
    return counts
