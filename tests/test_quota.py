"""/quota as moderators use it: each command's answer says what changed from what to what,
the ledger and config really change, bad input changes nothing, and the audit log shows
it all with who, when and why."""

from __future__ import annotations

import asyncio

import discord
import pytest

from bot import Paddock
from paddock.budget import FundingPolicy, Limits, Period
from paddock.errors import MemberBlocked
from tests.fakes.discord import FakeDiscord, Member, OptionRejected
from tests.test_credits import MANAGE_GUILD, answer, clock, fields, paddock

__all__ = ["clock", "paddock"]  # the bot on a settable clock, from test_credits


@pytest.fixture
def mod(fake_discord: FakeDiscord) -> Member:
    return fake_discord.member("mod", permissions=MANAGE_GUILD)


@pytest.fixture
def bob(fake_discord: FakeDiscord) -> Member:
    return fake_discord.member("bob")


async def available(paddock: Paddock, member: Member) -> int:
    guild = member.guild.id
    roles = [role.id for role in member.roles]
    return (await paddock.services.ledger.balance(guild, member.id, role_ids=roles)).available


# -- members' credits -----------------------------------------------------------------------


async def test_grant_and_take_back(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member, bob: Member
) -> None:
    await paddock.services.ledger.set_allowance(
        fake_discord.guild.id, 100, Period.DAILY, actor_id=1
    )

    given = await answer(mod, "quota grant", member=bob, amount=50, reason="prize")
    taken = await answer(mod, "quota grant", member=bob, amount=-30)
    too_much = await answer(mod, "quota grant", member=bob, amount=-500, reason="oops")
    zero = await answer(mod, "quota grant", member=bob, amount=0)

    assert (
        given.content
        == f"Granted 50 credits to {bob.mention}: 100 → 150 available (reason: prize)."
    )
    assert taken.content == f"Took back 30 credits from {bob.mention}: 150 → 120 available."
    assert too_much.content == (
        f"Can't take back 500 credits from {bob.mention}: they have 120 available. Nothing changed."
    )
    assert zero.content == "That amount (0) isn't valid: it can't be zero."
    assert await available(paddock, bob) == 120
    assert (
        fields(await answer(bob, "credits balance"))["Granted credits"] == "20 (kept until spent)"
    )
    assert bob.seen()[-1].embed is not None and mod.seen() == [given, taken, too_much, zero]
    with pytest.raises(OptionRejected, match="between -1000000 and 1000000"):
        await mod.slash("quota grant", member=bob, amount=10**7)


async def test_set_and_reset_a_balance(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member, bob: Member
) -> None:
    ledger, guild = paddock.services.ledger, fake_discord.guild.id
    await ledger.set_allowance(guild, 100, Period.DAILY, actor_id=1)
    await ledger.grant(guild, bob.id, 50, actor_id=1, role_ids=())

    set_to = await answer(mod, "quota set", member=bob, amount=300, reason="event")
    await ledger.reserve("job-1", guild, bob.id, 40, role_ids=())
    below_held = await answer(mod, "quota set", member=bob, amount=10)
    with_held = await answer(mod, "quota set", member=bob, amount=200)
    reset = await answer(mod, "quota reset", member=bob, reason="season over")

    assert set_to.content == (
        f"Set the balance of {bob.mention} to 300 credits: 150 → 300 available (reason: event)."
    )
    assert below_held.content == (
        "Can't bring this balance to 10: 40 credits are held by jobs still running. "
        "Try again when they finish."
    )
    assert with_held.content == (
        f"Set the balance of {bob.mention} to 200 credits: 260 → 160 available "
        "(40 held by running jobs)."
    )
    assert reset.content == (
        f"Reset {bob.mention} to their allowance of 100: 160 → 60 available, granted credits "
        "100 → 0 (reason: season over)."
    )
    balance = await ledger.balance(guild, bob.id, role_ids=())
    assert (balance.allowance, balance.granted, balance.held) == (100, 0, 40)


async def test_block_and_unblock(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member, bob: Member
) -> None:
    ledger, guild = paddock.services.ledger, fake_discord.guild.id
    await ledger.grant(guild, bob.id, 10, actor_id=1, role_ids=())

    blocked = await answer(mod, "quota block", member=bob, reason="spam")
    again = await answer(mod, "quota block", member=bob)
    with pytest.raises(MemberBlocked):
        await ledger.reserve("job-1", guild, bob.id, 5, role_ids=())
    unblocked = await answer(mod, "quota unblock", member=bob, reason="apologised")
    not_blocked = await answer(mod, "quota unblock", member=bob)

    assert blocked.content == (
        f"Blocked {bob.mention}: not blocked → blocked (reason: spam). They can't start "
        "videos here; jobs already running finish. Undo with /quota unblock."
    )
    assert again.content == f"{bob.mention} is already blocked; nothing changed."
    assert unblocked.content == (
        f"Unblocked {bob.mention}: blocked → not blocked (reason: apologised). "
        "They can make videos again."
    )
    assert not_blocked.content == f"{bob.mention} isn't blocked; nothing changed."
    assert (await ledger.reserve("job-2", guild, bob.id, 5, role_ids=())).amount == 5
    kinds = [entry.kind for entry in await ledger.audit_log(guild, bob.id)]
    assert kinds.count("block") == 1 and kinds.count("unblock") == 1


async def test_bots_get_no_credits(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member
) -> None:
    robot = fake_discord.member("robot")
    robot.user.bot = True

    replies = [
        await answer(mod, "quota grant", member=robot, amount=5),
        await answer(mod, "quota set", member=robot, amount=5),
        await answer(mod, "quota block", member=robot),
    ]

    assert {reply.content for reply in replies} == {
        f"{robot.mention} is a bot; bots have no credits."
    }
    assert await paddock.services.ledger.audit_log(fake_discord.guild.id) == []


# -- the server's budget --------------------------------------------------------------------


async def test_allowance_for_the_server_and_for_a_role(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member
) -> None:
    ledger, guild = paddock.services.ledger, fake_discord.guild.id
    vip = fake_discord.role("VIP")
    alice = fake_discord.member("alice", roles=[vip])

    server = await answer(mod, "quota allowance", amount=100, period="daily", reason="launch")
    role = await answer(mod, "quota allowance", amount=250, period="weekly", role=vip)
    role_again = await answer(mod, "quota allowance", amount=300, period="monthly", role=vip)
    everyone = await answer(
        mod, "quota allowance", amount=5, period="daily", role=fake_discord.guild.everyone
    )
    alice_sees = fields(await answer(alice, "credits balance"))["Allowance"]
    cleared = await answer(mod, "quota allowance-clear", role=vip, reason="VIP ended")
    cleared_again = await answer(mod, "quota allowance-clear", role=vip)

    assert server.content == (
        "Server allowance: none → 100 per day (reason: launch). "
        "Members get it at their next refill."
    )
    assert role.content == (
        f"Allowance of {vip.mention}: server default → 250 per week. "
        "Members get it at their next refill."
    )
    assert role_again.content.startswith(
        f"Allowance of {vip.mention}: 250 per week → 300 per month."
    )
    assert everyone.content == (
        "@everyone is every member: leave role out to set the server's allowance."
    )
    assert alice_sees == "300 per month, 300 left"
    assert cleared.content == (
        f"Allowance of {vip.mention}: 300 per month → server default (100 per day) "
        "(reason: VIP ended). Members get it at their next refill."
    )
    assert cleared_again.content == f"{vip.mention} has no allowance of its own; nothing changed."
    settings = await ledger.settings(guild)
    assert (settings.allowance, settings.period, settings.role_allowances) == (
        100,
        Period.DAILY,
        (),
    )
    with pytest.raises(OptionRejected, match="must be one of"):
        await mod.slash("quota allowance", amount=5, period="hourly")


async def test_pool_funding_and_taking_out(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member
) -> None:
    ledger, guild = paddock.services.ledger, fake_discord.guild.id

    added = await answer(mod, "quota pool", amount=500, reason="sponsor")
    below_zero = await answer(mod, "quota pool", amount=-600)
    await ledger.set_policy(guild, FundingPolicy.POOL, actor_id=1)
    taken = await answer(mod, "quota pool", amount=-200)

    assert added.content == (
        "Added 500 credits to the server pool: 0 → 500 available (reason: sponsor). The "
        "funding policy is personal, so videos don't use the pool yet; change it with "
        "/quota policy."
    )
    assert below_zero.content == (
        "Can't take 600 credits out of the server pool: it has 500 available. Nothing changed."
    )
    assert taken.content == "Took 200 credits out of the server pool: 500 → 300 available."
    assert (await ledger.pool_balance(guild)).available == 300


async def test_funding_policy(fake_discord: FakeDiscord, paddock: Paddock, mod: Member) -> None:
    ledger, guild = paddock.services.ledger, fake_discord.guild.id

    both = await answer(mod, "quota policy", policy="personal then pool", reason="share")
    same = await answer(mod, "quota policy", policy="personal_then_pool")
    await ledger.fund_pool(guild, 80, actor_id=1)
    pool = await answer(mod, "quota policy", policy="pool")

    assert both.content == (
        "Funding policy: personal → personal then pool (reason: share). Videos are paid from "
        "the member's own credits first, then from the server pool. The server pool has 0 "
        "credits available; add some with /quota pool."
    )
    assert same.content == "The funding policy is already personal then pool; nothing changed."
    assert pool.content == (
        "Funding policy: personal then pool → pool. Videos are paid from the server pool. "
        "The server pool has 80 credits available."
    )
    assert (await ledger.settings(guild)).policy is FundingPolicy.POOL
    assert fields(await answer(mod, "credits balance"))["Server pool"] == "80 available"
    with pytest.raises(OptionRejected, match="must be one of"):
        await mod.slash("quota policy", policy="everyone pays")


async def test_limits_change_only_what_is_given(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member
) -> None:
    ledger, guild = paddock.services.ledger, fake_discord.guild.id

    first = await answer(mod, "quota limits", job_cost=50, member_jobs=2, reason="launch")
    second = await answer(
        mod, "quota limits", member_spend=100, member_spend_period="weekly", server_jobs=10
    )
    after_second = (await ledger.settings(guild)).limits
    lifted = await answer(mod, "quota limits", remove="per-job cost", daily_ceiling=1000)
    clash = await answer(mod, "quota limits", remove="jobs at once per member", member_jobs=3)
    nothing = await answer(mod, "quota limits")
    everything = await answer(mod, "quota limits", remove="all limits")

    assert first.content.startswith(
        "Changed per-job cost: no limit → 50; jobs at once per member: no limit → 2 "
        "(reason: launch).\nThe limits are now:\n- per-job cost: 50\n"
    )
    assert second.content.startswith(
        "Changed member spend per period: no limit → 100; member spend period: daily → "
        "weekly; jobs at once per server: no limit → 10.\n"
    )
    assert after_second == Limits(
        max_job_cost=50,
        member_spend=100,
        member_spend_period=Period.WEEKLY,
        member_jobs=2,
        server_jobs=10,
    )
    assert lifted.content.startswith(
        "Changed per-job cost: 50 → no limit; server daily ceiling: no limit → 1000.\n"
    )
    assert clash.content == (
        "You both set and removed the jobs at once per member; do one or the other. "
        "Nothing changed."
    )
    assert nothing.content == (
        "No limit changed. Leave an option out to keep its value; use remove to lift a "
        "limit. The limits are:\n"
        "- per-job cost: no limit\n"
        "- member spend per period: 100 (weekly)\n"
        "- server daily ceiling: 1000\n"
        "- jobs at once per member: 2\n"
        "- jobs at once per server: 10\n"
        "- jobs at the provider at once per member: 2"
    )
    assert everything.content.startswith(
        "Changed member spend per period: 100 → no limit; server daily ceiling: 1000 → no "
        "limit; jobs at once per member: 2 → no limit; jobs at once per server: 10 → no limit; "
        "jobs at the provider at once per member: 2 → no limit."
    )
    assert (await ledger.settings(guild)).limits == Limits(member_spend_period=Period.WEEKLY,
                                                           member_slots=None)
    with pytest.raises(OptionRejected, match="must be one of"):
        await mod.slash("quota limits", member_spend_period="none")


async def test_two_moderators_changing_different_limits_at_once_both_keep_their_change(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member
) -> None:
    ledger, guild = paddock.services.ledger, fake_discord.guild.id
    other = fake_discord.member("other mod", permissions=MANAGE_GUILD)

    first, second = await asyncio.gather(
        answer(mod, "quota limits", job_cost=50),
        answer(other, "quota limits", member_jobs=2, reason="busy night"),
    )

    assert first.content.startswith("Changed per-job cost: no limit → 50.\n")
    assert second.content.startswith(
        "Changed jobs at once per member: no limit → 2 (reason: busy night).\n"
    )
    assert (await ledger.settings(guild)).limits == Limits(max_job_cost=50, member_jobs=2)
    log = await answer(mod, "quota log")
    lines = {line.split(" · ", 1)[1] for line in (log.embed.description or "").splitlines()}
    assert lines == {
        f"{mod.mention} changed per-job cost: no limit → 50",
        f"{other.mention} changed jobs at once per member: no limit → 2 (reason: busy night)",
    }


async def test_the_log_shows_limits_set_whole_without_a_change(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member
) -> None:
    limits = Limits(max_job_cost=40, member_spend=100, member_spend_period=Period.WEEKLY)
    await paddock.services.ledger.set_limits(fake_discord.guild.id, limits, actor_id=mod.id)
    await paddock.services.ledger.set_limits(fake_discord.guild.id, limits, actor_id=mod.id)

    log = await answer(mod, "quota log")

    assert [line.split(" · ", 1)[1] for line in (log.embed.description or "").splitlines()] == [
        f"{mod.mention} set the limits: per-job cost 40; member spend per period 100 (weekly); "
        "jobs at the provider at once per member 2",
        f"{mod.mention} changed per-job cost: no limit → 40; member spend per period: "
        "no limit → 100; member spend period: daily → weekly",
    ]


# -- server config --------------------------------------------------------------------------


async def test_channels_where_video_runs(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member
) -> None:
    config, guild = paddock.services.config, fake_discord.guild.id
    videos, art, general = (fake_discord.channel(n) for n in ("videos", "art", "general"))

    listed = await answer(mod, "quota channels", action="list")
    nothing_to_take = await answer(mod, "quota channels", action="disallow", video_channel=general)
    no_channel = await answer(mod, "quota channels", action="allow")
    allowed = await answer(
        mod, "quota channels", action="allow", video_channel=videos, reason="keep #general calm"
    )
    again = await answer(mod, "quota channels", action="allow", video_channel=videos)
    second = await answer(mod, "quota channels", action="allow", video_channel=art)
    assert not await config.is_channel_allowed(guild, general.id)
    taken = await answer(mod, "quota channels", action="disallow", video_channel=art)
    last = await answer(mod, "quota channels", action="disallow", video_channel=videos)
    await answer(mod, "quota channels", action="allow", video_channel=videos)
    everywhere = await answer(mod, "quota channels", action="everywhere")

    assert listed.content == "/video runs in every channel."
    assert nothing_to_take.content == (
        "/video runs in every channel, so there is nothing to disallow. To limit it, allow "
        "the channels where it may run with action allow."
    )
    assert no_channel.content == "Pick the channel to allow with the video_channel option."
    assert allowed.content == (
        f"/video channels: every channel → only {videos.mention} (reason: keep #general calm)."
    )
    assert again.content == f"Nothing changed: /video runs in only {videos.mention}."
    assert second.content == (
        f"/video channels: only {videos.mention} → only {videos.mention}, {art.mention}."
    )
    assert taken.content == (
        f"/video channels: only {videos.mention}, {art.mention} → only {videos.mention}."
    )
    assert last.content == (
        f"/video channels: only {videos.mention} → every channel. No channel is listed any "
        "more, so /video runs everywhere again."
    )
    assert everywhere.content == f"/video channels: only {videos.mention} → every channel."
    assert await config.allowed_channels(guild) == frozenset()
    assert await config.is_channel_allowed(guild, general.id)


async def test_moderator_role_set_kept_and_cleared(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member
) -> None:
    config, guild = paddock.services.config, fake_discord.guild.id
    helpers = fake_discord.role("Helpers")

    made = await answer(mod, "quota moderators role", role=helpers)
    same = await answer(mod, "quota moderators role", role=helpers)
    everyone = await answer(mod, "quota moderators role", role=fake_discord.guild.everyone)
    assert await config.moderator_role(guild) == helpers.id
    cleared = await answer(mod, "quota moderators role", reason="team disbanded")

    assert made.content == (
        f"Moderator role: none → {helpers.mention}. Its members can use /quota without "
        "Manage Server. Discord still hides /quota from them until you allow the role in "
        "Server Settings → Integrations → Paddock."
    )
    assert same.content == f"The moderator role is already {helpers.mention}; nothing changed."
    assert everyone.content == "@everyone can't be the moderator role: every member would moderate."
    assert cleared.content == (
        f"Moderator role: {helpers.mention} → none (reason: team disbanded). Only members "
        "with Manage Server moderate now."
    )
    assert await config.moderator_role(guild) is None


# -- the audit log --------------------------------------------------------------------------


async def test_the_audit_log_shows_every_change_with_who_and_why(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member, bob: Member
) -> None:
    other = fake_discord.member("other mod", permissions=discord.Permissions(administrator=True))
    videos, helpers = fake_discord.channel("videos"), fake_discord.role("Helpers")
    steps = [
        (mod, "quota allowance", {"amount": 100, "period": "daily", "reason": "launch"}),
        (mod, "quota grant", {"member": bob, "amount": 50, "reason": "prize"}),
        (other, "quota channels", {"action": "allow", "video_channel": videos, "reason": "calm"}),
        (mod, "quota pool", {"amount": 500}),
        (other, "quota policy", {"policy": "pool", "reason": "share"}),
        (mod, "quota limits", {"job_cost": 40}),
        (other, "quota moderators role", {"role": helpers}),
        (mod, "quota block", {"member": bob, "reason": "spam"}),
    ]
    for who, command, options in steps:
        await answer(who, command, **options)

    log = await answer(mod, "quota log")
    bob.nick = "Bobby"
    about_bob = await answer(other, "quota log", member=bob)

    assert log.embed is not None and log.embed.title == "Audit log"
    lines = [line.split(" · ", 1)[1] for line in (log.embed.description or "").splitlines()]
    assert lines == [
        f"{mod.mention} blocked {bob.mention} (reason: spam) → 150 available",
        f"{other.mention} changed the moderator role: none → {helpers.mention}",
        f"{mod.mention} changed per-job cost: no limit → 40",
        f"{other.mention} set the funding policy to pool (reason: share)",
        f"{mod.mention} changed the server pool by +500",
        f"{other.mention} changed where /video runs: every channel → only {videos.mention} "
        "(reason: calm)",
        f"{mod.mention} granted +50 to {bob.mention} (reason: prize) → 150 available",
        f"{bob.mention} allowance refilled +100 → 100 available",
        f"{mod.mention} set the allowance (server) to 100 per day (reason: launch)",
    ]
    assert all(line.startswith("<t:") for line in (log.embed.description or "").splitlines())
    assert about_bob.embed is not None and about_bob.embed.title == "Audit log: Bobby"
    assert [
        line.split(" · ", 1)[1] for line in (about_bob.embed.description or "").splitlines()
    ] == [
        lines[0],
        lines[6],
        lines[7],
    ]
    assert bob.seen() == []


async def test_the_audit_log_pages_and_says_when_it_is_empty(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member, bob: Member
) -> None:
    empty = await answer(mod, "quota log")
    empty_bob = await answer(mod, "quota log", member=bob)
    ledger, guild = paddock.services.ledger, fake_discord.guild.id
    for number in range(1, 18):
        await ledger.grant(guild, bob.id, number, actor_id=mod.id, reason=f"grant {number}",
                           role_ids=())
    await paddock.services.config.allow_channel(guild, 123, actor_id=mod.id, reason="newest")

    first = await answer(mod, "quota log")
    second = await answer(mod, "quota log", page=2)
    third = await answer(mod, "quota log", page=3)

    assert empty.content == "The audit log has nothing yet."
    assert empty_bob.content == f"The audit log has nothing about {bob.mention} yet."
    assert first.embed is not None and second.embed is not None
    first_lines = (first.embed.description or "").splitlines()
    second_lines = (second.embed.description or "").splitlines()
    assert len(first_lines) == 15 and "(reason: newest)" in first_lines[0]
    assert first.embed.footer.text == "Page 1, newest first. Older entries: /quota log page:2"
    assert len(second_lines) == 3 and "(reason: grant 1)" in second_lines[-1]
    assert third.content == "There is no page 3."


async def test_a_moderators_reason_is_shown_as_typed_in_answers_the_log_and_history(
    fake_discord: FakeDiscord, paddock: Paddock, mod: Member, bob: Member
) -> None:
    reason = "[claim free nitro](https://nitro.example) **now**"
    escaped = "\\[claim free nitro]\\(https://nitro.example) \\*\\*now\\*\\*"

    given = await answer(mod, "quota grant", member=bob, amount=5, reason=reason)
    log = await answer(mod, "quota log")
    history = await answer(bob, "credits history")

    assert given.content.endswith(f"(reason: {escaped}).")
    for shown in (given.content, log.embed.description, history.embed.description):
        assert "[claim free nitro](" not in shown and "**now**" not in shown
    assert escaped in log.embed.description and escaped in history.embed.description
