"""Each limit the fake Discord enforces, with the status and code the bot would get."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import discord
import pytest
from discord.http import Route

from tests.fakes.discord import FakeDiscord, ProbeBot, ProbeModal, Upload
from tests.fakes.discord.options import build_command_data

MiB = 1024 * 1024
Interaction = discord.Interaction[Any]


async def errors_of(fake: FakeDiscord, bot: ProbeBot, count: int = 1) -> list[tuple[int, int]]:
    await fake.wait_for(
        lambda: len(bot.errors) >= count, timeout=5, what="the bot to meet an error"
    )
    return [(error.status, error.code) for error in bot.errors]


async def post_raw(
    bot: ProbeBot, channel_id: int, payload: dict[str, Any]
) -> discord.HTTPException:
    """Send a raw message body through discord.py's HTTP client and return the refusal."""
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
    with pytest.raises(discord.HTTPException) as caught:
        await bot.http.request(route, json=payload)
    return caught.value


async def test_first_response_after_three_seconds_is_unknown_interaction(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    late = discord.utils.MISSING

    async def respond_late(interaction: discord.Interaction[Any], values: dict[str, Any]) -> None:
        nonlocal late
        fake_discord.clock.advance(3.1)
        late = interaction
        await interaction.response.send_message("too late")

    probe_bot.behaviour = respond_late
    ix = await fake_discord.member("alice").slash("probe")

    assert await errors_of(fake_discord, probe_bot) == [(404, 10062)]
    assert ix.failed
    assert fake_discord.member("alice").seen() == []
    assert late is not discord.utils.MISSING


async def test_a_second_initial_response_is_already_acknowledged(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def respond_twice(interaction: discord.Interaction[Any], values: dict[str, Any]) -> None:
        await interaction.response.defer()
        await probe_bot.http.request(
            Route(
                "POST",
                "/interactions/{id}/{token}/callback",
                id=interaction.id,
                token=interaction.token,
            ),
            json={"type": 4, "data": {"content": "again"}},
        )

    probe_bot.behaviour = respond_twice
    ix = await fake_discord.member("alice").slash("probe")

    assert await errors_of(fake_discord, probe_bot) == [(400, 40060)]
    assert ix.thinking


async def test_the_token_dies_after_fifteen_minutes(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def answer_after_the_token_died(
        interaction: discord.Interaction[Any], values: dict[str, Any]
    ) -> None:
        await interaction.response.defer(thinking=True)
        fake_discord.clock.advance(15 * 60 + 1)
        for attempt in (
            interaction.followup.send("done"),
            interaction.edit_original_response(content="done"),
            interaction.delete_original_response(),
        ):
            try:
                await attempt
            except discord.HTTPException as error:
                probe_bot.errors.append(error)

    probe_bot.behaviour = answer_after_the_token_died
    ix = await fake_discord.member("alice").slash("probe")

    assert await errors_of(fake_discord, probe_bot, 3) == [(401, 50027)] * 3
    assert ix.thinking
    assert probe_bot.errors[0].text == "Invalid Webhook Token"


async def test_the_token_still_works_just_before_fifteen_minutes(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def answer_late_but_in_time(
        interaction: discord.Interaction[Any], values: dict[str, Any]
    ) -> None:
        await interaction.response.defer(thinking=True)
        fake_discord.clock.advance(14 * 60 + 59)
        await interaction.followup.send("just in time")

    probe_bot.behaviour = answer_late_but_in_time
    reply = await (await fake_discord.member("alice").slash("probe")).reply()

    assert reply.content == "just in time"


@pytest.mark.parametrize(
    ("limit", "size", "refused"), [(10 * MiB, 10 * MiB + 1, True), (25 * MiB, 11 * MiB, False)]
)
async def test_uploads_above_the_channel_limit_are_too_large(
    fake_discord: FakeDiscord, probe_bot: ProbeBot, limit: int, size: int, refused: bool
) -> None:
    fake_discord.guild.upload_limit = limit
    seen_limits: list[int] = []

    async def upload(interaction: discord.Interaction[Any], values: dict[str, Any]) -> None:
        seen_limits.append(interaction.filesize_limit)
        await interaction.response.defer()
        await interaction.followup.send(file=discord.File(io.BytesIO(bytes(size)), "video.mp4"))

    probe_bot.behaviour = upload
    ix = await fake_discord.member("alice").slash("probe")

    if refused:
        assert await errors_of(fake_discord, probe_bot) == [(413, 40005)]
        assert ix.thinking
    else:
        reply = await ix.reply()
        assert [(a.filename, a.size, a.content_type) for a in reply.attachments] == [
            ("video.mp4", size, "video/mp4")
        ]
    assert seen_limits == [limit]


async def test_the_upload_limit_applies_to_each_file_not_their_sum(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    """Discord's reference, "Uploading Files": "The file upload size limit applies to
    each file in a request." Two files under the limit pass though their sum is over."""
    fake_discord.guild.upload_limit = 1 * MiB
    part = 3 * MiB // 4

    async def upload_two(interaction: discord.Interaction[Any], values: dict[str, Any]) -> None:
        await interaction.response.send_message(
            files=[
                discord.File(io.BytesIO(bytes(part)), "a.mp4"),
                discord.File(io.BytesIO(bytes(part)), "b.mp4"),
            ]
        )
        try:
            await interaction.followup.send(file=discord.File(io.BytesIO(bytes(MiB + 1)), "c.mp4"))
        except discord.HTTPException as error:
            probe_bot.errors.append(error)

    probe_bot.behaviour = upload_two
    reply = await (await fake_discord.member("alice").slash("probe")).reply()

    assert [(a.filename, a.size) for a in reply.attachments] == [("a.mp4", part), ("b.mp4", part)]
    assert await errors_of(fake_discord, probe_bot) == [(413, 40005)]


async def test_channel_messages_respect_the_upload_limit_too(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    channel = probe_bot.get_channel(fake_discord.default_channel.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send(file=discord.File(io.BytesIO(bytes(10 * MiB + 1)), "big.mp4"))
    assert (caught.value.status, caught.value.code) == (413, 40005)
    assert fake_discord.default_channel.visible == []


async def test_message_content_is_limited_to_2000(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def too_long(interaction: discord.Interaction[Any], values: dict[str, Any]) -> None:
        await interaction.response.send_message("x" * 2001)

    probe_bot.behaviour = too_long
    ix = await fake_discord.member("alice").slash("probe")

    assert await errors_of(fake_discord, probe_bot) == [(400, 50035)]
    assert "In content: Must be 2000 or fewer in length." in str(probe_bot.errors[0])
    assert not ix.acknowledged


async def test_an_empty_message_is_refused(fake_discord: FakeDiscord, probe_bot: ProbeBot) -> None:
    error = await post_raw(probe_bot, fake_discord.default_channel.id, {"content": ""})
    assert (error.status, error.code) == (400, 50006)


def field(name: str = "n", value: str = "v") -> dict[str, str]:
    return {"name": name, "value": value}


@pytest.mark.parametrize(
    ("embeds", "where"),
    [
        ([{"title": "t" * 257}], "embeds.0.title"),
        ([{"description": "d" * 4097}], "embeds.0.description"),
        ([{"fields": [field()] * 26}], "embeds.0.fields"),
        ([{"fields": [field(name="n" * 257)]}], "embeds.0.fields.0.name"),
        ([{"fields": [field(value="v" * 1025)]}], "embeds.0.fields.0.value"),
        ([{"footer": {"text": "f" * 2049}}], "embeds.0.footer.text"),
        ([{"author": {"name": "a" * 257}}], "embeds.0.author.name"),
        ([{"description": "d" * 4000}, {"description": "d" * 2001}], "embeds"),
        ([{"title": "t"}] * 11, "embeds"),
    ],
    ids=[
        "title",
        "description",
        "fields",
        "field-name",
        "field-value",
        "footer",
        "author",
        "total",
        "count",
    ],
)
async def test_embed_limits(
    fake_discord: FakeDiscord, probe_bot: ProbeBot, embeds: list[dict[str, Any]], where: str
) -> None:
    error = await post_raw(probe_bot, fake_discord.default_channel.id, {"embeds": embeds})

    assert (error.status, error.code) == (400, 50035)
    assert f"In {where}:" in str(error)
    assert fake_discord.default_channel.visible == []


async def test_embed_limits_apply_to_interaction_responses(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def big_embed(interaction: discord.Interaction[Any], values: dict[str, Any]) -> None:
        await interaction.response.send_message(embed=discord.Embed(title="t" * 257))

    probe_bot.behaviour = big_embed
    await fake_discord.member("alice").slash("probe")

    assert await errors_of(fake_discord, probe_bot) == [(400, 50035)]


def button(custom_id: str) -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": "Go", "custom_id": custom_id}


def link_button(url: str) -> dict[str, Any]:
    return {"type": 2, "style": 5, "label": "Open", "url": url}


def select(options: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": 3, "custom_id": "pick", "options": options}


async def test_a_link_button_may_hold_a_512_character_url(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    url = "https://x.example/" + "a" * (512 - len("https://x.example/"))
    route = Route("POST", "/channels/{channel_id}/messages",
                  channel_id=fake_discord.default_channel.id)
    row = {"type": 1, "components": [link_button(url)]}

    await probe_bot.http.request(route, json={"content": "c", "components": [row]})

    assert fake_discord.default_channel.last_message.buttons[0].url == url


@pytest.mark.parametrize(
    ("components", "where", "message"),
    [
        (
            [{"type": 1, "components": [button(f"b{r}")]} for r in range(6)],
            "components",
            "Must be 5 or fewer",
        ),
        (
            [{"type": 1, "components": [button(f"b{i}") for i in range(6)]}],
            "components.0.components",
            "Must be 5",
        ),
        (
            [{"type": 1, "components": [button("x" * 101)]}],
            "components.0.components.0.custom_id",
            "Must be 100",
        ),
        (
            [{"type": 1, "components": [button("same"), button("same")]}],
            "components.0.components.1.custom_id",
            "Component custom id cannot be duplicated",
        ),
        (
            [{"type": 1, "components": [link_button("https://x.example/" + "a" * 495)]}],
            "components.0.components.0.url",
            "Must be 512",
        ),
        (
            [{"type": 1, "components": [select([{"label": "l" * 101, "value": "v"}])]}],
            "components.0.components.0.options.0.label",
            "Must be 100",
        ),
    ],
    ids=["rows", "buttons-per-row", "custom-id-length", "custom-id-duplicate",
         "link-url-length", "select-option-label"],
)
async def test_component_limits(
    fake_discord: FakeDiscord,
    probe_bot: ProbeBot,
    components: list[dict[str, Any]],
    where: str,
    message: str,
) -> None:
    error = await post_raw(
        probe_bot, fake_discord.default_channel.id, {"content": "c", "components": components}
    )

    assert (error.status, error.code) == (400, 50035)
    assert f"In {where}: {message}" in str(error)


async def test_modal_limits(fake_discord: FakeDiscord, probe_bot: ProbeBot) -> None:
    async def long_title(interaction: discord.Interaction[Any], values: dict[str, Any]) -> None:
        modal = ProbeModal()
        modal.title = "t" * 46
        await interaction.response.send_modal(modal)

    probe_bot.behaviour = long_title
    ix = await fake_discord.member("alice").slash("probe")

    assert await errors_of(fake_discord, probe_bot) == [(400, 50035)]
    assert ix.modal is None


def command(name: str = "cmd", **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": "A command.", "type": 1, **extra}


def option(name: str, required: bool = False, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": "An option.", "type": 3, "required": required, **extra}


def command_of_size(size: int) -> dict[str, Any]:
    """A slash command whose names, descriptions and choices add up to ``size``
    characters (Discord's measure): 100 for the command and for each of its two
    options, then 200 a choice (a name and a value of 100)."""
    remaining = size - 300
    assert 0 < remaining <= 50 * 200 and remaining % 100 == 0
    choices = [
        {"name": f"{i:03d}".ljust(100, "n"), "value": f"{i:03d}".ljust(100, "v")}
        for i in range(-(-remaining // 200))
    ]
    if remaining % 200:
        choices[-1] = {"name": choices[-1]["name"][:50], "value": choices[-1]["value"][:50]}
    options = [
        option(f"o{i}", description="d" * 98, choices=choices[i * 25 : (i + 1) * 25])
        for i in range(2)
    ]
    return command(name="big", description="d" * 97, options=options)


@pytest.mark.parametrize(
    ("commands", "where"),
    [
        ([command(options=[option(f"o{i}") for i in range(26)])], "0.options"),
        (
            [
                command(
                    options=[
                        option(
                            "o", choices=[{"name": f"c{i}", "value": f"c{i}"} for i in range(26)]
                        )
                    ]
                )
            ],
            "0.options.0.choices",
        ),
        ([command(name="Bad Name")], "0.name"),
        ([command(name="n" * 33)], "0.name"),
        ([command(description="d" * 101)], "0.description"),
        ([command(options=[option("a"), option("b", required=True)])], "0.options"),
        ([command(), command()], "1.name"),
        ([command(), command_of_size(8100)], "1"),
    ],
    ids=[
        "options",
        "choices",
        "name-chars",
        "name-length",
        "description",
        "required-order",
        "duplicate",
        "size",
    ],
)
async def test_command_registration_limits(
    fake_discord: FakeDiscord, probe_bot: ProbeBot, commands: list[dict[str, Any]], where: str
) -> None:
    before = fake_discord.registered_commands(fake_discord.guild.id)
    with pytest.raises(discord.HTTPException) as caught:
        await probe_bot.http.bulk_upsert_guild_commands(
            fake_discord.application_id, fake_discord.guild.id, commands
        )

    assert (caught.value.status, caught.value.code) == (400, 50035)
    assert f"In {where}:" in str(caught.value)
    assert fake_discord.registered_commands(fake_discord.guild.id) == before


async def test_a_command_may_total_8000_characters(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    """Discord (application-commands, "Slash Commands"): "a maximum of 8000 characters
    for combined name, description, and value properties", localizations counted at
    their longest; over it, 50035 APPLICATION_COMMAND_TOO_LARGE."""
    http, app, guild = probe_bot.http, fake_discord.application_id, fake_discord.guild.id
    fits = command_of_size(8000)
    await http.bulk_upsert_guild_commands(app, guild, [fits])

    localized = command_of_size(8000)  # its description has 97 characters
    localized["description_localizations"] = {"fr": "d" * 98, "de": "d" * 60}
    with pytest.raises(discord.HTTPException) as caught:
        await http.upsert_guild_command(app, guild, localized)

    assert (caught.value.status, caught.value.code) == (400, 50035)
    [error] = fake_discord.calls[-1].response["errors"]["_errors"]
    assert error["code"] == "APPLICATION_COMMAND_TOO_LARGE"
    assert [c["name"] for c in fake_discord.registered_commands(guild)] == ["big"]


async def test_a_scope_holds_100_slash_commands_and_15_of_each_context_menu(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    """Discord (application-commands, "Registering a Command"): 100 CHAT_INPUT, 15 USER
    and 15 MESSAGE commands globally and per guild; more is 400 with code 30032."""
    http, app = probe_bot.http, fake_discord.application_id
    hundred = [command(f"c{i}") for i in range(100)]
    await http.bulk_upsert_global_commands(app, hundred)

    refusals: list[tuple[int, int, str]] = []
    for attempt in (
        http.bulk_upsert_global_commands(app, [*hundred, command("c100")]),
        http.upsert_global_command(app, command("c100")),
        http.bulk_upsert_global_commands(
            app, [{"name": f"User {i}", "type": 2} for i in range(16)]
        ),
    ):
        with pytest.raises(discord.HTTPException) as caught:
            await attempt
        refusals.append((caught.value.status, caught.value.code, caught.value.text))
    await http.upsert_global_command(app, command("c99", description="Updated."))
    with pytest.raises(discord.HTTPException) as caught:
        await http.bulk_upsert_global_commands(app, [command(f"c{i}") for i in range(131)])
    too_many = fake_discord.calls[-1].response

    assert refusals == [
        (400, 30032, "Maximum number of application commands reached (100)"),
        (400, 30032, "Maximum number of application commands reached (100)"),
        (400, 30032, "Maximum number of application commands reached (15)"),
    ]
    assert (caught.value.status, caught.value.code) == (400, 50035)
    assert too_many["errors"] == {
        "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 130 or fewer in length."}]
    }
    registered = fake_discord.registered_commands(None)
    assert len(registered) == 100
    assert registered[-1]["description"] == "Updated."


async def test_autocomplete_offers_at_most_25_choices(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    @probe_bot.tree.command(name="many", guild=discord.Object(fake_discord.guild.id))
    async def many(interaction: discord.Interaction[Any], item: str) -> None:
        """Too many choices."""

    @many.autocomplete("item")
    async def items(
        interaction: discord.Interaction[Any], current: str
    ) -> list[discord.app_commands.Choice[str]]:
        return [discord.app_commands.Choice(name=str(i), value=str(i)) for i in range(26)]

    await probe_bot.tree.sync(guild=discord.Object(fake_discord.guild.id))
    alice, channel = fake_discord.member("alice"), fake_discord.default_channel
    data = build_command_data(
        fake_discord, "many", {"item": ""}, member=alice, channel=channel, focused="item"
    )
    interaction = await fake_discord.start_interaction(4, alice, channel, data, command_name="many")

    callback = "POST /interactions/{interaction_id}/{token}/callback"
    await fake_discord.wait_for(lambda: fake_discord.calls_to(callback), what="the bot to answer")
    [answer] = fake_discord.calls_to(callback)
    assert (answer.status, answer.response["code"]) == (400, 50035)
    assert (
        answer.response["errors"]["data"]["choices"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    )
    assert interaction.choices is None


async def test_the_bot_needs_permission_to_post_in_a_channel(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    closed = fake_discord.channel("announcements")
    closed.set_permissions(
        fake_discord.guild.everyone, deny=discord.Permissions(send_messages=True)
    )
    closed.set_permissions(fake_discord.bot_member, deny=discord.Permissions(send_messages=True))

    error = await post_raw(probe_bot, closed.id, {"content": "hello"})

    assert (error.status, error.code) == (403, 50013)


@pytest.mark.parametrize(("ephemeral", "outcome"), [(False, None), (True, (404, 10008))])
async def test_after_the_token_dies_only_public_responses_can_be_edited_by_channel(
    fake_discord: FakeDiscord, probe_bot: ProbeBot, ephemeral: bool, outcome: tuple[int, int] | None
) -> None:
    async def answer(interaction: Interaction, values: dict[str, Any]) -> None:
        await interaction.response.send_message("Job 5: queued", ephemeral=ephemeral)

    probe_bot.behaviour = answer
    message = await (await fake_discord.member("alice").slash("probe")).reply()
    fake_discord.clock.advance(16 * 60)
    channel = probe_bot.get_channel(fake_discord.default_channel.id)
    assert isinstance(channel, discord.TextChannel)

    try:
        await channel.get_partial_message(message.id).edit(content="Job 5: done")
    except discord.HTTPException as error:
        assert (error.status, error.code) == outcome
    else:
        assert outcome is None
    assert message.content == ("Job 5: queued" if ephemeral else "Job 5: done")


# -- signed CDN links, DMs, deleted channels ------------------------------------------------


async def cdn_status(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        await response.read()
        return response.status


async def test_cdn_links_are_signed_and_expire_after_a_day(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    stored = fake_discord.store_upload(Upload.image("cat.png", 64, 64))
    query = parse_qs(urlsplit(stored.url).query)
    assert set(query) == {"ex", "is", "hm"}
    assert int(query["ex"][0], 16) - int(query["is"][0], 16) == 24 * 3600
    assert await cdn_status(stored.url) == 200
    assert await cdn_status(stored.url.split("?")[0]) == 404  # unsigned
    assert await cdn_status(stored.url.replace("hm=", "hm=0")) == 404  # tampered

    fake_discord.clock.advance(24 * 3600)

    assert await cdn_status(stored.url) == 404
    assert fake_discord.cdn_refused[-1][1] == "expired"


async def test_refresh_urls_gives_working_links_for_expired_ones(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    stored = fake_discord.store_upload(Upload.image("cat.png", 64, 64))
    fake_discord.clock.advance(25 * 3600)
    other = "https://example.com/not-discord.png"
    route = Route("POST", "/attachments/refresh-urls")

    answer = await probe_bot.http.request(route, json={"attachment_urls": [stored.url, other]})

    [mine, theirs] = answer["refreshed_urls"]
    assert mine["original"] == stored.url and mine["refreshed"] != stored.url
    assert await cdn_status(mine["refreshed"]) == 200
    assert theirs == {"original": other, "refreshed": other}
    with pytest.raises(discord.HTTPException) as caught:
        await probe_bot.http.request(route, json={"attachment_urls": [stored.url] * 51})
    assert (caught.value.status, caught.value.code) == (400, 50035)


async def test_the_bot_can_dm_a_member_unless_they_refuse_dms(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    bob.accepts_dms = False

    dm = await probe_bot.create_dm(discord.Object(alice.id))
    await dm.send("hello", embed=discord.Embed(title="Your video"))
    refused = await probe_bot.create_dm(discord.Object(bob.id))
    with pytest.raises(discord.HTTPException) as caught:
        await refused.send("hello")

    [message] = alice.direct_messages
    assert message.content == "hello" and message.embeds[0].title == "Your video"
    assert (caught.value.status, caught.value.code) == (403, 50007)
    assert bob.direct_messages == []
    with pytest.raises(discord.HTTPException) as too_long:
        await dm.send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)


async def test_a_deleted_channel_takes_no_posts_and_no_followups(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    seen: list[discord.Interaction[Any]] = []

    async def answer(interaction: discord.Interaction[Any], values: dict[str, Any]) -> None:
        await interaction.response.send_message("ok")
        seen.append(interaction)

    probe_bot.behaviour = answer
    await (await fake_discord.member("alice").slash("probe", channel="videos")).reply()
    videos = fake_discord.channel("videos")
    fake_discord.delete_channel("videos")

    error = await post_raw(probe_bot, videos.id, {"content": "hello"})
    with pytest.raises(discord.HTTPException) as followup:
        await seen[0].followup.send("late")

    assert (error.status, error.code) == (404, 10003)
    assert (followup.value.status, followup.value.code) == (404, 10003)
