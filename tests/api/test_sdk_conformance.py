"""hh_api and the emulators held to the providers' own SDKs (WaveSpeed's ``wavespeed``,
HiAPI's ``hiapi``): for the same job, the request each SDK sends and the one hh_api sends
are the same, and each SDK reads the emulator's answers. Where they differ on purpose
(README, "hh_api and the providers' SDKs"), the difference is asserted here.

The SDKs are synchronous: they run in a worker thread while the emulator answers on the
test's event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import hiapi
import pytest
import wavespeed

from hh_api import Mode, Status, VideoRequest
from hh_api.version import USER_AGENT
from tests.fakes.providers import ProviderEmulator, Recorded

IMAGES = ("https://cdn.example/hero.png", "https://cdn.example/town.jpg")
PROMPT = "[Image 1] walks through [Image 2]"
JOB = VideoRequest(PROMPT, Mode.REFERENCE, IMAGES, resolution="1080p", aspect_ratio="9:16",
                   duration=5)
CALLBACK = "https://bot.example/callbacks/hiapi?job=7"


def shape(value: Any) -> Any:
    """Every field with its JSON type, so `1` and `1.0` or `"5"` and `5` differ."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return (type(value).__name__, value)


def wire(request: Recorded) -> dict[str, Any]:
    """What must match between an SDK's request and hh_api's."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return {
        "method": request.method,
        "path": request.raw_path,
        "auth": (scheme, key),
        "content_type": request.headers.get("Content-Type", "").split(";")[0] or None,
        "idempotency_key": request.headers.get("Idempotency-Key"),
        "body": shape(request.json),
    }


async def hh_requests(make_client, emulator: ProviderEmulator, work) -> list[Recorded]:
    """The requests hh_api sends to a fresh copy of `emulator` for `work(client)`."""
    before = len(emulator.requests)
    await work(make_client(emulator))
    return emulator.requests[before:]


# -- WaveSpeedAI ------------------------------------------------------------------------


def wavespeed_client(emulator: ProviderEmulator) -> wavespeed.Client:
    return wavespeed.Client(api_key=emulator.api_key, base_url=emulator.base_url,
                            max_connection_retries=0)


WAVESPEED_MODEL = "alibaba/happyhorse-1.1/reference-to-video"
WAVESPEED_INPUT = {"prompt": PROMPT, "images": list(IMAGES), "resolution": "1080p",
                   "aspect_ratio": "9:16", "duration": 5, "seed": 42}


async def test_wavespeed_sdk_and_hh_api_send_the_same_job(start_emulator, make_client) -> None:
    sdk_side = await start_emulator("wavespeed")
    sdk = wavespeed_client(sdk_side)
    result = await asyncio.to_thread(sdk.run, WAVESPEED_MODEL, WAVESPEED_INPUT, timeout=10,
                                     poll_interval=0.01)
    [sdk_task] = sdk_side.tasks
    assert result == {"outputs": [sdk_side.video_url(sdk_task)]}  # it read every answer

    ours_side = await start_emulator("wavespeed")
    job = VideoRequest(PROMPT, Mode.REFERENCE, IMAGES, resolution="1080p", aspect_ratio="9:16",
                       duration=5, seed=42)

    async def generate(client) -> None:
        done = await client.generate("wavespeed", job, timeout=10)
        assert done.video_url == ours_side.video_url(done.task_id)

    ours = await hh_requests(make_client, ours_side, generate)
    [ours_task] = ours_side.tasks
    assert ours_task == sdk_task  # both emulators count from 1: the paths can match

    sdk_submit, *sdk_polls = sdk_side.requests
    our_submit, *our_polls = ours
    assert wire(our_submit) == wire(sdk_submit)
    # On purpose: the SDK labels its bodyless GETs as JSON too; hh_api sends no Content-Type
    # without a body.
    assert (wire(sdk_polls[0])["content_type"], wire(our_polls[0])["content_type"]) == (
        "application/json", None)
    assert wire(our_polls[0]) | {"content_type": None} == wire(sdk_polls[0]) | {
        "content_type": None}
    assert our_submit.raw_path == "/api/v3/alibaba/happyhorse-1.1/reference-to-video"
    assert our_polls[0].raw_path == f"/api/v3/predictions/{ours_task}/result"
    # On purpose: hh_api names itself; the SDK sends requests' agent and X-Client-* headers.
    assert our_submit.headers["User-Agent"] == USER_AGENT
    assert sdk_submit.headers["User-Agent"].startswith("python-requests/")
    assert sdk_submit.headers["X-Client-Name"] == "wavespeed-python"
    assert "X-Client-Name" not in our_submit.headers


async def test_the_wavespeed_sdk_reads_a_failure_and_a_result(start_emulator) -> None:
    emulator = await start_emulator("wavespeed")
    sdk = wavespeed_client(emulator)
    emulator.fail_with = "content policy"
    with pytest.raises(RuntimeError, match=r"Prediction failed .*content policy"):
        await asyncio.to_thread(sdk.run, WAVESPEED_MODEL, WAVESPEED_INPUT, timeout=10,
                                poll_interval=0.01)
    emulator.fail_with = None
    emulator.steps = ["created", "processing"]
    request_id, _ = await asyncio.to_thread(sdk._submit, WAVESPEED_MODEL, WAVESPEED_INPUT)
    result = await asyncio.to_thread(sdk.get_result, request_id)
    assert (result["data"]["id"], result["data"]["status"]) == (request_id, "created")


async def test_wavespeed_sdk_sends_an_awkward_id_raw_where_hh_api_encodes_it(
    start_emulator, make_client
) -> None:
    """On purpose: the SDK puts the id in the path as it is; hh_api percent-encodes it."""
    emulator = await start_emulator("wavespeed")
    emulator.task_ids = ["run/42"]
    client = make_client(emulator)
    task = await client.submit("wavespeed", JOB)
    state = await client.status("wavespeed", task.task_id)
    assert state.status is Status.QUEUED
    assert emulator.polls()[-1].raw_path == "/api/v3/predictions/run%2F42/result"

    with pytest.raises(RuntimeError, match="HTTP 404"):
        await asyncio.to_thread(wavespeed_client(emulator).get_result, "run/42")
    assert emulator.requests[-1].raw_path == "/api/v3/predictions/run/42/result"


# -- HiAPI ----------------------------------------------------------------------------------


def hiapi_client(emulator: ProviderEmulator, retries: int = 2) -> hiapi.HiAPI:
    return hiapi.HiAPI(api_key=emulator.api_key, base_url=emulator.base_url, max_retries=retries)


HIAPI_MODEL = "happyhorse-1.1/reference-to-video"
HIAPI_INPUT = {"prompt": PROMPT, "reference_image": list(IMAGES), "resolution": "1080p",
               "aspect_ratio": "9:16", "duration": 5}


async def test_hiapi_sdk_and_hh_api_send_the_same_job(start_emulator, make_client) -> None:
    sdk_side = await start_emulator("hiapi")
    sdk = hiapi_client(sdk_side)
    created = await asyncio.to_thread(
        sdk.tasks.create, model=HIAPI_MODEL, input=HIAPI_INPUT,
        callback={"url": CALLBACK, "when": "final"}, idempotency_key="job-7")
    polled = await asyncio.to_thread(sdk.tasks.retrieve, created.task_id)
    assert (created.task_id, created.idempotent_replay) == ("tsk_000001", False)
    assert (polled.task_id, polled.status) == ("tsk_000001", "queued")

    ours_side = await start_emulator("hiapi")

    async def submit_and_check(client) -> None:
        task = await client.submit("hiapi", JOB, idempotency_key="job-7", callback_url=CALLBACK)
        await client.status("hiapi", task.task_id)

    ours = await hh_requests(make_client, ours_side, submit_and_check)
    sdk_submit, sdk_poll = sdk_side.requests
    our_submit, our_poll = ours
    assert wire(our_submit) == wire(sdk_submit)
    assert wire(our_poll) == wire(sdk_poll)
    assert (our_submit.raw_path, our_poll.raw_path) == ("/v1/tasks", "/v1/tasks/tsk_000001")
    # On purpose: each names itself.
    assert sdk_submit.headers["User-Agent"] == f"hiapi-python/{hiapi.__version__}"
    assert our_submit.headers["User-Agent"] == USER_AGENT


async def test_hiapi_sdk_and_hh_api_encode_an_awkward_id_alike(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("hiapi")
    emulator.task_ids = ["run/42?x=1#frag ment-é"]
    client = make_client(emulator)
    task = await client.submit("hiapi", JOB)
    await client.status("hiapi", task.task_id)
    read = await asyncio.to_thread(hiapi_client(emulator).tasks.retrieve, task.task_id)
    assert read.task_id == task.task_id
    ours, sdks = emulator.polls()
    assert ours.raw_path == sdks.raw_path == "/v1/tasks/" + quote(task.task_id, safe="")


async def test_the_hiapi_sdk_reads_a_result_a_failure_and_a_replay(start_emulator) -> None:
    emulator = await start_emulator("hiapi")
    sdk = hiapi_client(emulator)
    done = await asyncio.to_thread(sdk.tasks.run, model=HIAPI_MODEL, input=HIAPI_INPUT,
                                   idempotency_key="job-8", poll_interval=0.01, timeout=10)
    assert done.succeeded
    [output] = done.output
    assert (output.url, output.type) == (emulator.video_url(done.task_id), "video")
    assert isinstance(output.expire_at, str)  # the emulator's ISO time, as hh_api reads it

    again = await asyncio.to_thread(sdk.tasks.create, model=HIAPI_MODEL, input=HIAPI_INPUT,
                                    idempotency_key="job-8")
    assert (again.task_id, again.idempotent_replay) == (done.task_id, True)

    emulator.fail_with = "content policy"
    with pytest.raises(hiapi.TaskFailed) as failed:
        await asyncio.to_thread(sdk.tasks.run, model=HIAPI_MODEL, input=HIAPI_INPUT,
                                poll_interval=0.01, timeout=10)
    assert (failed.value.code, failed.value.message) == ("GENERATION_FAILED", "content policy")

    with pytest.raises(hiapi.IdempotencyKeyMismatchError):
        await asyncio.to_thread(sdk.tasks.create, model=HIAPI_MODEL,
                                input={**HIAPI_INPUT, "duration": 6}, idempotency_key="job-8")


async def test_a_lost_answer_and_409_processing_go_the_same_way_in_the_sdk_and_hh_api(
    start_emulator, make_client
) -> None:
    """A dropped answer, then 409 IDEMPOTENCY_KEY_PROCESSING, then the original task."""

    def lose_the_first_answer(emulator: ProviderEmulator) -> None:
        emulator.fault("drop", on="submit", after_accept=True)
        emulator.in_flight_answers = 1
        emulator.in_flight_retry_after = "0"

    sdk_side = await start_emulator("hiapi")
    lose_the_first_answer(sdk_side)
    created = await asyncio.to_thread(hiapi_client(sdk_side).tasks.create, model=HIAPI_MODEL,
                                      input=HIAPI_INPUT, idempotency_key="job-9")
    assert created.idempotent_replay
    assert list(sdk_side.tasks) == [created.task_id]

    ours_side = await start_emulator("hiapi")
    lose_the_first_answer(ours_side)
    found: list[str] = []

    async def submit(client) -> None:
        found.append((await client.submit("hiapi", JOB, idempotency_key="job-9")).task_id)

    ours = await hh_requests(make_client, ours_side, submit)
    assert found == list(ours_side.tasks) == [created.task_id]
    assert [wire(r) for r in ours] == [wire(r) for r in sdk_side.requests]
    assert len(ours) == 3


async def test_on_purpose_hh_api_retries_a_lost_submit_and_a_failed_read_the_sdk_does_not(
    start_emulator, make_client
) -> None:
    """HiAPI's SDK retries only 429 and 503: a keyed submit answered 500 after the task was
    made, or a status read answered 500, raises at once. hh_api resends the same key, and
    reads again."""
    sdk_side = await start_emulator("hiapi")
    sdk_side.fault(500, on="submit", after_accept=True)
    with pytest.raises(hiapi.APIError) as error:
        await asyncio.to_thread(hiapi_client(sdk_side).tasks.create, model=HIAPI_MODEL,
                                input=HIAPI_INPUT, idempotency_key="job-10")
    assert error.value.status == 500
    [made] = sdk_side.tasks
    sdk_side.fault(500, on="status")
    with pytest.raises(hiapi.APIError):
        await asyncio.to_thread(hiapi_client(sdk_side).tasks.retrieve, made)
    assert len(sdk_side.requests) == 2

    ours_side = await start_emulator("hiapi")
    ours_side.fault(500, on="submit", after_accept=True)
    ours_side.fault(500, on="status")
    client = make_client(ours_side)
    task = await client.submit("hiapi", JOB, idempotency_key="job-10")
    state = await client.status("hiapi", task.task_id)
    assert list(ours_side.tasks) == [task.task_id]
    assert state.status is Status.QUEUED
    assert [r.kind for r in ours_side.requests] == ["submit", "submit", "status", "status"]
