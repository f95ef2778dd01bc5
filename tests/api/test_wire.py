"""What every request looks like on the wire: ids percent-encoded in paths, and hh_api's
User-Agent on every call, for every provider."""

from __future__ import annotations

import tomllib
from pathlib import Path
from urllib.parse import quote

import pytest

from hh_api import Mode, Status, VideoRequest
from hh_api.version import USER_AGENT

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = ["joypix", "wavespeed", "pixeldojo", "hiapi"]
REQUEST = VideoRequest("[Image 1] trots", Mode.REFERENCE, ("https://cdn.example/a.png",))
# Everything a path can trip on: a separator, a query, a fragment, a space, non-ASCII, "%".
AWKWARD_ID = "run/42?x=1#frag ment-é馬%2F"
STATUS_PATHS = {
    "joypix": "/v1/tasks/{}",
    "wavespeed": "/api/v3/predictions/{}/result",
    "pixeldojo": "/api/v1/jobs/{}",
    "hiapi": "/v1/tasks/{}",
}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_task_id_goes_into_the_path_percent_encoded(
    start_emulator, make_client, provider, tmp_path
) -> None:
    emulator = await start_emulator(provider)
    emulator.task_ids = [AWKWARD_ID]
    client = make_client(emulator)

    task = await client.submit(provider, REQUEST)
    assert task.task_id == AWKWARD_ID
    done = await client.wait(provider, task.task_id, timeout=5)

    assert done.status is Status.SUCCEEDED
    assert done.task_id == AWKWARD_ID
    expected = STATUS_PATHS[provider].format(
        "run%2F42%3Fx%3D1%23frag%20ment-%C3%A9%E9%A6%AC%252F")
    assert expected == STATUS_PATHS[provider].format(quote(AWKWARD_ID, safe=""))
    polls = emulator.polls()
    assert polls and {poll.raw_path for poll in polls} == {expected}
    video = await client.download(done.video_url, tmp_path / "horse.mp4")
    assert video.read_bytes() == emulator.video_bytes


def test_the_user_agent_names_hh_api_and_paddock_with_the_projects_version() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        version = tomllib.load(file)["project"]["version"]
    assert USER_AGENT.startswith(f"hh_api/{version} paddock/{version} ")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_every_request_carries_the_user_agent(
    start_emulator, make_client, provider, tmp_path
) -> None:
    emulator = await start_emulator(provider)
    emulator.fault(503, on="status")  # a retried read carries it too
    client = make_client(emulator)
    task = await client.submit(provider, REQUEST)
    await client.status(provider, task.task_id)
    done = await client.wait(provider, task.task_id, timeout=5)
    await client.download(done.video_url, tmp_path / "horse.mp4", provider=provider)

    kinds = [request.kind for request in emulator.requests]
    assert kinds[0] == "submit" and kinds[-1] == "file"
    assert kinds.count("status") >= 3
    assert {request.headers.get("User-Agent") for request in emulator.requests} == {USER_AGENT}
