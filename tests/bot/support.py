"""Small helpers for the bot's end-to-end tests."""

from __future__ import annotations


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
