"""A bare discord.py bot for testing the fake itself (and a template for trying a
Discord behaviour in isolation): each command, button and modal runs whatever
coroutine the test puts in ``bot.behaviour``, and HTTP errors it meets are kept in
``bot.errors`` so tests can assert on the exact code Discord would return.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

log = logging.getLogger(__name__)
Behaviour = Callable[[discord.Interaction[Any], dict[str, Any]], Awaitable[None]]


class ProbeBot(commands.Bot):
    """Commands: ``/probe`` (options of every common type), ``/clip make``,
    ``/clip edit trim`` (a group with a subgroup), ``/pick provider`` (autocomplete),
    ``/admin`` (Manage Server by default), the message Apps menu entry ``Probe message``.
    Buttons: :class:`ProbeButton`. Modal:
    :class:`ProbeModal`."""

    def __init__(
        self, guild_id: int, *, intents: discord.Intents | None = None, **options: Any
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents or discord.Intents.default(),
            guild_ready_timeout=0.01,
            **options,  # such as shard_id and shard_count
        )
        self.guild_id = guild_id
        self.guild_ids = [guild_id]  # the servers its commands are registered in
        self.behaviour: Behaviour | None = None
        self.received: list[dict[str, Any]] = []
        self.errors: list[discord.HTTPException] = []
        self.events: list[str] = []

    async def setup_hook(self) -> None:
        guilds = [discord.Object(id=guild_id) for guild_id in self.guild_ids]
        for command in (probe, clip, pick, admin, probe_message):
            self.tree.add_command(command, guilds=guilds)
        self.add_dynamic_items(ProbeButton)
        self.tree.on_error = self.keep_tree_error  # type: ignore[method-assign]
        for guild in guilds:
            await self.tree.sync(guild=guild)

    async def keep_tree_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """HTTP errors a command raises outside its behaviour land in ``errors``."""
        cause = error.__cause__ if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(cause, discord.HTTPException):
            self.errors.append(cause)
        else:
            log.error("probe command failed", exc_info=error)

    async def run_behaviour(
        self, interaction: discord.Interaction[Any], values: dict[str, Any]
    ) -> None:
        self.received.append(values)
        if self.behaviour is None:
            await interaction.response.send_message(f"received {sorted(values)}")
            return
        try:
            await self.behaviour(interaction, values)
        except discord.HTTPException as error:
            self.errors.append(error)

    async def on_resumed(self) -> None:
        self.events.append("resumed")


@app_commands.command(name="probe", description="Runs the test's behaviour.")
async def probe(
    interaction: discord.Interaction[ProbeBot],
    text: str | None = None,
    count: app_commands.Range[int, 1, 10] | None = None,
    ratio: float | None = None,
    loud: bool | None = None,
    picture: discord.Attachment | None = None,
    who: discord.Member | None = None,
    role: discord.Role | None = None,
    where: discord.TextChannel | None = None,
    flavour: Literal["vanilla", "chocolate"] | None = None,
) -> None:
    values = {
        "text": text,
        "count": count,
        "ratio": ratio,
        "loud": loud,
        "picture": picture,
        "who": who,
        "role": role,
        "where": where,
        "flavour": flavour,
    }
    await interaction.client.run_behaviour(
        interaction, {k: v for k, v in values.items() if v is not None}
    )


clip = app_commands.Group(name="clip", description="Clips.")
clip_edit = app_commands.Group(name="edit", description="Edit clips.", parent=clip)


@clip.command(name="make", description="Make a clip.")
async def clip_make(
    interaction: discord.Interaction[ProbeBot],
    prompt: str,
    seconds: app_commands.Range[int, 3, 15] = 5,
) -> None:
    await interaction.client.run_behaviour(
        interaction, {"path": "clip make", "prompt": prompt, "seconds": seconds}
    )


@clip_edit.command(name="trim", description="Trim a clip.")
async def clip_trim(interaction: discord.Interaction[ProbeBot], start: int) -> None:
    await interaction.client.run_behaviour(interaction, {"path": "clip edit trim", "start": start})


@app_commands.command(name="pick", description="Pick a provider.")
async def pick(interaction: discord.Interaction[ProbeBot], provider: str) -> None:
    await interaction.client.run_behaviour(interaction, {"provider": provider})


@pick.autocomplete("provider")
async def pick_provider(
    interaction: discord.Interaction[ProbeBot], current: str
) -> list[app_commands.Choice[str]]:
    names = ["joypix", "hiapi", "pixeldojo"]
    return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]


@app_commands.command(name="admin", description="Moderators only.")
@app_commands.default_permissions(manage_guild=True)
async def admin(interaction: discord.Interaction[ProbeBot]) -> None:
    await interaction.client.run_behaviour(interaction, {"admin": True})


@app_commands.context_menu(name="Probe message")
async def probe_message(
    interaction: discord.Interaction[ProbeBot], message: discord.Message
) -> None:
    await interaction.client.run_behaviour(interaction, {"message": message})


class ProbeButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"probe:(?P<n>\d+)"):
    """A persistent button whose custom_id carries a number, like a job id."""

    def __init__(self, n: int, label: str | None = None) -> None:
        super().__init__(discord.ui.Button(label=label or f"Press {n}", custom_id=f"probe:{n}"))
        self.n = n

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Button[Any],
        match: re.Match[str],
        /,
    ) -> ProbeButton:
        return cls(int(match["n"]), item.label)

    async def callback(self, interaction: discord.Interaction[ProbeBot]) -> None:
        await interaction.client.run_behaviour(interaction, {"button": self.n})


class ProbeModal(discord.ui.Modal, title="Remix"):
    prompt: discord.ui.TextInput[ProbeModal] = discord.ui.TextInput(label="Prompt", max_length=100)
    note: discord.ui.TextInput[ProbeModal] = discord.ui.TextInput(
        label="Note", required=False, style=discord.TextStyle.paragraph, default="keep the seed"
    )

    async def on_submit(self, interaction: discord.Interaction[ProbeBot]) -> None:  # type: ignore[override]
        values = {"prompt": self.prompt.value, "note": self.note.value}
        await interaction.client.run_behaviour(interaction, values)


def button_view(*buttons: ProbeButton) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(button)
    return view
