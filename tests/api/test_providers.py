"""Every provider and mode, end to end against the emulators: what the provider receives
and what the caller gets back."""

from __future__ import annotations

import pytest

from hh_api import (
    HappyHorse,
    InvalidRequestError,
    Mode,
    ProviderConfig,
    Status,
    VideoRequest,
    load_providers,
)
from tests.fakes.providers import ProviderEmulator

REF = ("https://cdn.example/one.png", "https://cdn.example/two.png")
FIRST = ("https://cdn.example/first.jpg",)

# (provider, mode, request, the path the page documents, the exact JSON the provider must get)
CASES = [
    (
        "joypix", Mode.REFERENCE,
        VideoRequest("the same knight rides", Mode.REFERENCE, REF, "1080p", "9:16", 7, 42),
        "/v1/alibaba/reference-to-video",
        {"model": "happyhorse-1.0-r2v", "images": list(REF), "prompt": "the same knight rides",
         "resolution": "1080p", "aspect_ratio": "9:16", "duration": 7, "seed": 42},
    ),
    (
        "joypix", Mode.IMAGE,
        VideoRequest("the horse turns its head", Mode.IMAGE, FIRST, duration=4),
        "/v1/alibaba/image-to-video",
        {"model": "happyhorse-1.0-i2v", "prompt": "the horse turns its head",
         "images": list(FIRST), "resolution": "720p", "duration": 4},
    ),
    (
        "joypix", Mode.TEXT,
        VideoRequest("a horse on a beach", Mode.TEXT),
        "/v1/alibaba/text-to-video",
        {"model": "happyhorse-1.0-t2v", "prompt": "a horse on a beach", "resolution": "720p",
         "aspect_ratio": "16:9", "duration": 5},
    ),
    (
        "wavespeed", Mode.REFERENCE,
        VideoRequest("the same knight rides", Mode.REFERENCE, REF, "720p", "1:1", 3, -1),
        "/api/v3/alibaba/happyhorse-1.1/reference-to-video",
        {"prompt": "the same knight rides", "images": list(REF), "resolution": "720p",
         "aspect_ratio": "1:1", "duration": 3, "seed": -1},
    ),
    (
        "wavespeed", Mode.IMAGE,
        VideoRequest("the horse turns its head", Mode.IMAGE, FIRST, "1080p", seed=7),
        "/api/v3/alibaba/happyhorse-1.1/image-to-video",
        {"prompt": "the horse turns its head", "image": FIRST[0], "resolution": "1080p",
         "duration": 5, "seed": 7},
    ),
    (
        "wavespeed", Mode.TEXT,
        VideoRequest("a horse on a beach", Mode.TEXT, aspect_ratio="3:4", duration=15),
        "/api/v3/alibaba/happyhorse-1.1/text-to-video",
        {"prompt": "a horse on a beach", "resolution": "720p", "aspect_ratio": "3:4",
         "duration": 15},
    ),
    (
        "pixeldojo", Mode.REFERENCE,
        VideoRequest("the same knight rides", Mode.REFERENCE, REF, "1080p", "4:3", 6, 9,
                     negative_prompt="blurry"),
        "/api/v1/models/happyhorse-1.0-r2v/run",
        {"prompt": "the same knight rides", "reference_urls": list(REF), "duration": 6,
         "resolution": "1080p", "aspectRatio": "4:3", "negative_prompt": "blurry", "seed": 9},
    ),
    (
        "hiapi", Mode.REFERENCE,
        VideoRequest("[Image 1] walks through [Image 2]", Mode.REFERENCE, REF,
                     aspect_ratio="21:9", duration=8),
        "/v1/tasks",
        {"model": "happyhorse-1.1/reference-to-video",
         "input": {"prompt": "[Image 1] walks through [Image 2]", "reference_image": list(REF),
                   "resolution": "1080p", "aspect_ratio": "21:9", "duration": 8}},
    ),
    (
        "hiapi", Mode.TEXT,
        VideoRequest("a horse on a beach", Mode.TEXT, resolution="720p"),
        "/v1/tasks",
        {"model": "happyhorse-1.1/text-to-video",
         "input": {"prompt": "a horse on a beach", "resolution": "720p",
                   "aspect_ratio": "16:9", "duration": 5}},
    ),
]


@pytest.mark.parametrize(
    ("provider", "mode", "request_", "path", "expected"),
    CASES,
    ids=[f"{c[0]}-{c[1].value}" for c in CASES],
)
async def test_generation_sends_the_documented_request_and_returns_the_video(
    start_emulator, make_client, provider, mode, request_, path, expected
) -> None:
    emulator: ProviderEmulator = await start_emulator(provider, api_key="key-123")
    client = make_client(emulator)
    seen = []

    state = await client.generate(provider, request_, on_update=seen.append)

    [submit] = emulator.submits()
    assert submit.path == path
    assert submit.json == expected
    assert submit.headers["Authorization"] == "Bearer key-123"
    assert submit.headers["Content-Type"].startswith("application/json")
    assert state.status is Status.SUCCEEDED
    assert state.video_url == emulator.video_url(state.task_id)
    assert state.task_id in emulator.tasks
    assert [s.status for s in seen] == [Status.QUEUED, Status.RUNNING, Status.SUCCEEDED]
    assert seen[-1].raw  # the provider's own answer is kept
    for poll in emulator.polls():
        assert poll.headers["Authorization"] == "Bearer key-123"


async def test_hiapi_submit_carries_an_idempotency_key_and_the_callback(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("hiapi")
    client = make_client(emulator)
    request = VideoRequest("a horse", Mode.TEXT)

    await client.submit("hiapi", request, idempotency_key="job-41",
                        callback_url="https://paddock.example/callbacks/hiapi")
    await client.submit("hiapi", request)

    first, second = emulator.submits()
    assert first.headers["Idempotency-Key"] == "job-41"
    assert first.json["callback"] == {"url": "https://paddock.example/callbacks/hiapi",
                                      "when": "final"}
    assert len(second.headers["Idempotency-Key"]) >= 16  # made up when not given
    assert "callback" not in second.json
    assert len(emulator.tasks) == 2


async def test_providers_without_idempotency_keys_are_not_sent_one(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("joypix")
    await make_client(emulator).submit("joypix", VideoRequest("a horse"))
    assert "Idempotency-Key" not in emulator.submits()[0].headers


@pytest.mark.parametrize(
    ("provider", "mode"),
    [("pixeldojo", Mode.TEXT), ("pixeldojo", Mode.IMAGE), ("hiapi", Mode.IMAGE)],
)
async def test_a_mode_the_provider_does_not_offer_is_refused_unsent(
    start_emulator, make_client, provider, mode
) -> None:
    emulator = await start_emulator(provider)
    images = FIRST if mode is Mode.IMAGE else ()
    with pytest.raises(InvalidRequestError) as refused:
        await make_client(emulator).submit(provider, VideoRequest("x", mode, images))
    assert refused.value.field == "mode"
    assert mode.value in str(refused.value)
    assert emulator.requests == []


def test_inferred_combinations_are_marked_and_documented_ones_are_not() -> None:
    client = HappyHorse({name: ProviderConfig(name) for name in
                         ("joypix", "wavespeed", "pixeldojo", "hiapi")})
    inferred = {
        (name, mode.value)
        for name, provider in client.providers.items()
        for mode, offer in provider.offers.items()
        if offer.inferred
    }
    documented = {
        (name, mode.value)
        for name, provider in client.providers.items()
        for mode, offer in provider.offers.items()
        if offer.documented
    }
    assert inferred == {("joypix", "text"), ("wavespeed", "image"), ("wavespeed", "text"),
                        ("hiapi", "text")}
    assert documented == {("joypix", "reference"), ("joypix", "image"),
                          ("wavespeed", "reference"), ("pixeldojo", "reference"),
                          ("hiapi", "reference")}


async def test_model_and_path_overrides_from_the_environment_reach_the_provider(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("joypix")
    configs = load_providers({
        "JOYPIX_API_KEY": "test-key",
        "JOYPIX_BASE_URL": emulator.base_url,
        "JOYPIX_TEXT_MODEL": "happyhorse-1.1-t2v",
        "JOYPIX_TEXT_PATH": "/v2/alibaba/text-to-video",
    })
    client = HappyHorse(configs, retry=make_client(emulator).retry)
    try:
        with pytest.raises(InvalidRequestError) as refused:
            await client.submit("joypix", VideoRequest("a horse"))
    finally:
        await client.close()
    [submit] = emulator.requests
    assert (submit.method, submit.path) == ("POST", "/v2/alibaba/text-to-video")
    assert submit.json["model"] == "happyhorse-1.1-t2v"
    # The emulator knows only the documented endpoints, so it refuses: the error says so.
    assert refused.value.from_provider
    assert "HTTP 404" in str(refused.value)


async def test_pixeldojo_aspect_ratio_field_name_can_follow_its_example_instead(
    start_emulator,
) -> None:
    emulator = await start_emulator("pixeldojo")
    configs = load_providers({"PIXELDOJO_API_KEY": "test-key",
                              "PIXELDOJO_BASE_URL": emulator.base_url,
                              "PIXELDOJO_ASPECT_RATIO_FIELD": "aspect_ratio"})
    async with HappyHorse(configs) as client:
        await client.submit("pixeldojo", VideoRequest("x", Mode.REFERENCE, REF,
                                                      aspect_ratio="9:16"))
    body = emulator.submits()[0].json
    assert body["aspect_ratio"] == "9:16"
    assert "aspectRatio" not in body


async def test_status_words_are_mapped_and_unknown_words_mean_still_running(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("wavespeed")
    emulator.steps = ["created", "warming-up", "processing", "completed"]
    client = make_client(emulator)
    seen = []
    submission = await client.submit("wavespeed", VideoRequest("a horse"))
    await client.wait("wavespeed", submission.task_id, on_update=seen.append)
    assert [(s.status, s.provider_status) for s in seen] == [
        (Status.QUEUED, "created"),
        (Status.RUNNING, "warming-up"),
        (Status.RUNNING, "processing"),
        (Status.SUCCEEDED, "completed"),
    ]


async def test_output_expiry_follows_each_providers_word(start_emulator, make_client) -> None:
    from datetime import UTC, datetime, timedelta

    for provider, lifetime in (("joypix", timedelta(hours=24)), ("pixeldojo", timedelta(hours=1)),
                               ("hiapi", timedelta(hours=24))):
        emulator = await start_emulator(provider)
        images = REF if provider == "pixeldojo" else ()
        mode = Mode.REFERENCE if images else Mode.TEXT
        state = await make_client(emulator).generate(provider, VideoRequest("x", mode, images))
        assert state.expires_at is not None
        remaining = state.expires_at - datetime.now(UTC)
        assert lifetime - timedelta(minutes=1) < remaining <= lifetime
    emulator = await start_emulator("wavespeed")
    state = await make_client(emulator).generate("wavespeed", VideoRequest("x"))
    assert state.expires_at is None  # WaveSpeedAI's page says nothing about it
