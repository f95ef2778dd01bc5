"""Message context-menu commands (right-click > Apps) as Discord sends them: an
APPLICATION_COMMAND of type 3 with ``target_id`` and the message resolved, its
attachments included; and the modal it may open, within Discord's limits."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from tests.fakes.discord import (
    CommandNotFound,
    FakeDiscord,
    OptionRejected,
    ProbeBot,
    ProbeModal,
    Upload,
)

Interaction = discord.Interaction[Any]


async def test_a_message_command_reaches_the_bot_with_its_target_and_attachments(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    async def behaviour(interaction: Interaction, values: dict[str, Any]) -> None:
        message: discord.Message = values["message"]
        described = [(a.filename, a.content_type, a.width, a.height) for a in message.attachments]
        await interaction.response.send_message(f"{message.id} {described}", ephemeral=True)

    probe_bot.behaviour = behaviour
    alice, bob = fake_discord.member("alice"), fake_discord.member("bob")
    posted = await bob.say("look", files=[Upload.image("cat.png", 320, 200),
                                          Upload.blob("notes.txt", 12)])

    answer = await (await alice.use_app(posted, "Probe message")).reply()

    assert answer.ephemeral
    assert answer.content == (f"{posted.id} [('cat.png', 'image/png', 320, 200), "
                              "('notes.txt', 'text/plain', None, None)]")
    [sent] = [i for i in fake_discord.interactions.values() if i.data.get("type") == 3]
    assert sent.data["target_id"] == str(posted.id)
    assert set(sent.data["resolved"]["messages"]) == {str(posted.id)}


async def test_only_registered_message_commands_are_offered(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    alice = fake_discord.member("alice")
    posted = await alice.say("hello")
    with pytest.raises(CommandNotFound, match=r"'probe'.*registered: \['Probe message'\]"):
        await alice.use_app(posted, "probe")  # a slash command is not in the Apps menu
    with pytest.raises(OptionRejected, match="at most 10 files"):
        await alice.say("too many", files=[Upload.blob(f"{n}.txt", 1) for n in range(11)])


async def test_a_message_command_can_open_a_modal_within_discords_limits(
    fake_discord: FakeDiscord, probe_bot: ProbeBot
) -> None:
    class LongTitle(discord.ui.Modal, title="x" * 46):
        prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Prompt")

    async def behaviour(interaction: Interaction, values: dict[str, Any]) -> None:
        if "message" in values and values["message"].content == "too long":
            await interaction.response.send_modal(LongTitle())
        elif "message" in values:
            await interaction.response.send_modal(ProbeModal())
        else:
            await interaction.response.send_message(f"got {values['prompt']}")

    probe_bot.behaviour = behaviour
    alice = fake_discord.member("alice")
    target = await alice.say("animate me")
    modal = await (await alice.use_app(target, "Probe message")).opened_modal()
    reply = await (await alice.submit_modal(modal, {"Prompt": "a cat waves"})).reply()
    assert reply.content == "got a cat waves"

    await alice.use_app(await alice.say("too long"), "Probe message")
    await fake_discord.wait_for(lambda: probe_bot.errors, what="Discord's refusal")
    assert probe_bot.errors[0].status == 400 and "title" in str(probe_bot.errors[0])
