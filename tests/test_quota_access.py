"""Who may use /quota: hidden from members by default permissions, and refused at run time
to a member who sees it anyway; the configured moderator role works without Manage Server.
"""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot import Paddock
from tests.fakes.discord import CommandHidden, FakeDiscord, Member
from tests.test_credits import MANAGE_GUILD, answer, clock, paddock

__all__ = ["clock", "paddock"]  # the bot on a settable clock, from test_credits

REFUSAL = (
    "Only moderators can use /quota: it needs the Manage Server permission or this "
    "server's moderator role."
)


def every_quota_command(fake: FakeDiscord, bob: Member) -> list[tuple[str, dict[str, Any]]]:
    """Each /quota subcommand with options a moderator might use."""
    return [
        ("quota grant", {"member": bob, "amount": 50, "reason": "prize"}),
        ("quota set", {"member": bob, "amount": 500}),
        ("quota reset", {"member": bob}),
        ("quota allowance", {"amount": 100, "period": "daily"}),
        ("quota allowance-clear", {"role": fake.role("VIP")}),
        ("quota pool", {"amount": 1000}),
        ("quota policy", {"policy": "pool"}),
        ("quota limits", {"job_cost": 5}),
        ("quota channels", {"action": "allow", "video_channel": fake.channel("videos")}),
        ("quota channels", {"action": "list"}),
        ("quota block", {"member": bob, "reason": "spam"}),
        ("quota unblock", {"member": bob}),
        ("quota log", {}),
    ]


async def nothing_changed(paddock: Paddock, fake: FakeDiscord) -> None:
    guild = fake.guild.id
    services = paddock.services
    assert await services.ledger.audit_log(guild) == []
    assert await services.config.changes(guild) == []
    assert await services.config.moderator_role(guild) is None


async def test_quota_is_hidden_from_members_by_default_permissions(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    quota = fake_discord.command("quota")

    assert int(quota["default_member_permissions"]) == MANAGE_GUILD.value
    for command, options in every_quota_command(fake_discord, bob):
        with pytest.raises(CommandHidden, match="hidden from alice"):
            await alice.slash(command, **options)
    with pytest.raises(CommandHidden):
        await alice.slash("quota moderators role", role=fake_discord.role("Mods"))
    assert fake_discord.interactions == {}
    await nothing_changed(paddock, fake_discord)


async def test_a_member_who_sees_quota_through_an_override_is_still_refused(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    fake_discord.channel("general").set_permissions(alice, allow=MANAGE_GUILD)

    replies = [
        await answer(alice, command, **options)
        for command, options in every_quota_command(fake_discord, bob)
    ]
    role_reply = await answer(alice, "quota moderators role", role=fake_discord.role("Mods"))

    assert [reply.content for reply in replies] == [REFUSAL] * len(replies)
    assert role_reply.content == (
        "Only members with the Manage Server permission can change the moderator role."
    )
    assert alice.seen() == [*replies, role_reply]  # one private answer each, nothing else
    assert bob.seen() == []
    await nothing_changed(paddock, fake_discord)
    assert await paddock.services.config.allowed_channels(fake_discord.guild.id) == frozenset()


async def test_the_moderator_role_works_without_manage_server(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    guild = fake_discord.guild.id
    owner = fake_discord.member("owner", permissions=MANAGE_GUILD)
    helpers = fake_discord.role("Helpers")
    helper, bob = fake_discord.member("helper", roles=[helpers]), fake_discord.member("bob")
    # What Server Settings → Integrations does on Discord: let the role see /quota here.
    fake_discord.channel("general").set_permissions(helpers, allow=MANAGE_GUILD)

    before = await answer(helper, "quota grant", member=bob, amount=5)
    made = await answer(owner, "quota moderators role", role=helpers, reason="new team")
    granted = await answer(helper, "quota grant", member=bob, amount=50, reason="prize")
    widen = await answer(helper, "quota moderators role", role=fake_discord.role("Everyone"))
    cleared = await answer(owner, "quota moderators role")
    after = await answer(helper, "quota grant", member=bob, amount=5)

    assert before.content == after.content == REFUSAL
    assert made.content.startswith(f"Moderator role: none → {helpers.mention} (reason: new team).")
    assert granted.content == (
        f"Granted 50 credits to {bob.mention}: 0 → 50 available (reason: prize)."
    )
    assert widen.content == (
        "Only members with the Manage Server permission can change the moderator role."
    )
    assert cleared.content == (
        f"Moderator role: {helpers.mention} → none. Only members with Manage Server moderate now."
    )
    assert (await paddock.services.ledger.balance(guild, bob.id, role_ids=())).available == 50
    assert await paddock.services.config.moderator_role(guild) is None


async def test_the_moderator_role_alone_leaves_quota_hidden_until_integrations_allow_it(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    helpers = fake_discord.role("Helpers")
    helper = fake_discord.member("helper", roles=[helpers])
    await paddock.services.config.set_moderator_role(fake_discord.guild.id, helpers.id, actor_id=1)

    with pytest.raises(CommandHidden):
        await helper.slash("quota log")


async def test_manage_server_through_a_role_or_administrator_is_enough(
    fake_discord: FakeDiscord, paddock: Paddock
) -> None:
    admin = fake_discord.member("admin", permissions=discord.Permissions(administrator=True))
    manager = fake_discord.member("manager", permissions=MANAGE_GUILD)

    for member in (admin, manager):
        reply = await answer(member, "quota channels", action="list")
        assert reply.content == "/video runs in every channel."
