"""Talking to the bot's side door over real HTTP, for the side door's tests."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    """A port nothing listens on now, for a side door whose public URL must be known first."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def get(bot, path: str) -> tuple[int, Any, Any]:
    """GET `path` on the bot's side door: (status, JSON or text body, headers)."""
    async with aiohttp.ClientSession() as session, session.get(bot.side_door.url + path) as answer:
        if answer.content_type == "application/json":
            return answer.status, await answer.json(), answer.headers
        return answer.status, await answer.text(), answer.headers


async def post(
    bot, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """POST raw `body` to the bot's side door: (status, JSON body or text)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(bot.side_door.url + path, data=body, headers=headers or {}) as answer,
    ):
        if answer.content_type == "application/json":
            return answer.status, await answer.json()
        return answer.status, await answer.text()


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))
