"""Bad input is refused before any request, naming the field and what is allowed."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from hh_api import ConfigurationError, InvalidRequestError, Mode, PictureLimits, VideoRequest

ONE = ("https://cdn.example/a.png",)
TEN = tuple(f"https://cdn.example/{n}.png" for n in range(10))

# (provider, request, the field named, words the message must contain)
BAD = [
    ("joypix", VideoRequest("   "), "prompt", "empty"),
    # zero-width space, non-joiner, joiner, word joiner, BOM: nothing a reader sees
    ("joypix", VideoRequest("\u200b\u200c\u200d\u2060\ufeff"), "prompt", "no visible characters"),
    # soft hyphen, variation selectors, Mongolian vowel separator, no-break and ideographic
    # spaces, a control character, a Hangul filler
    ("wavespeed", VideoRequest("\u00ad\ufe0f\U000e0100\u180e\u00a0\u3000\x07\u3164"), "prompt",
     "no visible characters"),
    ("joypix", VideoRequest("x" * 2501, Mode.IMAGE, ONE), "prompt", "2501 characters; image mode"),
    ("wavespeed", VideoRequest("x" * 2501, Mode.IMAGE, ONE), "prompt", "at most 2500"),
    ("joypix", VideoRequest("x", Mode.REFERENCE), "images", "1-9 pictures; got 0"),
    ("hiapi", VideoRequest("x", Mode.REFERENCE, TEN), "images", "1-9 pictures; got 10"),
    ("joypix", VideoRequest("x", Mode.IMAGE, ONE * 2), "images", "exactly 1 picture; got 2"),
    ("joypix", VideoRequest("x", Mode.TEXT, ONE), "images", "no pictures"),
    ("joypix", VideoRequest("x", Mode.IMAGE, ("file:///etc/passwd",)), "images", "http(s)"),
    ("joypix", VideoRequest("x", resolution="4k"), "resolution", "720p, 1080p"),
    ("joypix", VideoRequest("x", aspect_ratio="21:9"), "aspect_ratio", "16:9, 9:16, 1:1"),
    ("wavespeed", VideoRequest("x", aspect_ratio="4:5"), "aspect_ratio", "one of"),
    ("joypix", VideoRequest("x", Mode.IMAGE, ONE, aspect_ratio="16:9"), "aspect_ratio",
     "picture's shape"),
    ("joypix", VideoRequest("x", duration=2), "duration", "3-15 seconds"),
    ("hiapi", VideoRequest("x", duration=16), "duration", "3-15 seconds"),
    ("joypix", VideoRequest("x", duration=5.5), "duration", "whole number"),  # type: ignore[arg-type]
    ("joypix", VideoRequest("x", seed=-1), "seed", "0-2147483647"),
    ("wavespeed", VideoRequest("x", seed=2_147_483_648), "seed", "-1-2147483647"),
    ("hiapi", VideoRequest("x", seed=1), "seed", "takes no seed"),
    ("joypix", VideoRequest("x", negative_prompt="blur"), "negative_prompt", "no negative prompt"),
    ("hiapi", VideoRequest("x", negative_prompt="blur"), "negative_prompt", "no negative prompt"),
    ("pixeldojo", VideoRequest("x", Mode.TEXT), "mode", "offers: reference"),
]


@pytest.mark.parametrize(("provider", "request_", "field", "words"), BAD,
                         ids=[f"{b[0]}-{b[2]}-{i}" for i, b in enumerate(BAD)])
async def test_bad_input_is_refused_with_the_field_named_and_nothing_sent(
    start_emulator, make_client, provider, request_, field, words
) -> None:
    emulator = await start_emulator(provider)
    client = make_client(emulator)
    with pytest.raises(InvalidRequestError) as refused:
        client.validate(provider, request_)
    assert refused.value.field == field
    assert words in str(refused.value)
    assert not refused.value.from_provider
    with pytest.raises(InvalidRequestError):
        await client.submit(provider, request_)
    assert emulator.requests == []


@pytest.mark.parametrize(("prompt", "visible"), [
    ("a horse", 6), ("\u200bhorse\u200d", 5), ("\u2764\ufe0f", 1), ("e\u0301", 1),
    ("\u200b \u2060\u00ad", 0), ("", 0),
])
def test_visible_characters_leave_out_spaces_and_invisible_ones(prompt, visible) -> None:
    from hh_api.capabilities import visible_characters

    assert visible_characters(prompt) == visible


def test_a_prompt_with_some_visible_text_among_invisible_characters_is_kept() -> None:
    from hh_api import HappyHorse, ProviderConfig

    client = HappyHorse({"joypix": ProviderConfig("joypix", api_key="k")})
    kept = client.validate("joypix", VideoRequest("\u200ba horse\u200b"))
    assert kept.prompt == "\u200ba horse\u200b"


def test_allowed_values_travel_with_the_error(make_client) -> None:
    from hh_api import HappyHorse, ProviderConfig

    client = HappyHorse({"hiapi": ProviderConfig("hiapi", api_key="k")})
    with pytest.raises(InvalidRequestError) as refused:
        client.validate("hiapi", VideoRequest("x", aspect_ratio="2:1"))
    assert refused.value.allowed == ("16:9", "9:16", "3:4", "4:3", "4:5", "5:4", "1:1", "9:21",
                                     "21:9")


def test_a_valid_request_comes_back_with_the_providers_defaults() -> None:
    from hh_api import HappyHorse, ProviderConfig

    client = HappyHorse({n: ProviderConfig(n) for n in ("joypix", "hiapi", "pixeldojo")})
    assert client.validate("joypix", VideoRequest("  a horse  ")) == VideoRequest(
        "a horse", Mode.TEXT, (), "720p", "16:9", 5, None, None
    )
    assert client.validate("hiapi", VideoRequest("a horse")).resolution == "1080p"
    image = client.validate("joypix", VideoRequest("a horse", Mode.IMAGE, ONE))
    assert image.aspect_ratio is None  # the picture decides
    blank = client.validate("pixeldojo", VideoRequest("a", Mode.REFERENCE, ONE,
                                                      negative_prompt="  "))
    assert blank.negative_prompt is None


async def test_a_provider_without_a_key_is_refused_before_sending(start_emulator) -> None:
    from hh_api import HappyHorse, ProviderConfig

    emulator = await start_emulator("joypix")
    async with HappyHorse({"joypix": ProviderConfig("joypix", base_url=emulator.base_url)}) as hh:
        with pytest.raises(ConfigurationError, match="set JOYPIX_API_KEY"):
            await hh.submit("joypix", VideoRequest("a horse"))
        with pytest.raises(ConfigurationError, match="unknown provider 'runway'"):
            hh.validate("runway", VideoRequest("a horse"))
    assert emulator.requests == []


def test_unknown_providers_and_bad_base_urls_are_configuration_errors() -> None:
    from hh_api import HappyHorse, ProviderConfig

    with pytest.raises(ConfigurationError, match="unknown provider"):
        HappyHorse({"runway": ProviderConfig("runway")})
    with pytest.raises(ConfigurationError, match="scheme and host only"):
        ProviderConfig("hiapi", base_url="https://api.hiapi.ai/v1")
    with pytest.raises(ConfigurationError, match=r"must be an http\(s\) URL .*'api.hiapi.ai'"):
        ProviderConfig("hiapi", base_url="api.hiapi.ai")
    assert ProviderConfig("hiapi", base_url="https://api.hiapi.ai/").base_url == (
        "https://api.hiapi.ai"
    )


def test_a_string_is_not_taken_for_a_list_of_pictures() -> None:
    with pytest.raises(TypeError, match="sequence of URLs"):
        VideoRequest("x", Mode.IMAGE, "https://cdn.example/a.png")  # type: ignore[arg-type]


def test_requests_survive_a_round_trip_through_json() -> None:
    import json

    request = VideoRequest("a", Mode.REFERENCE, ONE, "1080p", "1:1", 9, 3, "blur")
    assert VideoRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request
    # to_dict names each field: a field added later must be added there too
    assert set(request.to_dict()) == {f.name for f in dataclasses.fields(VideoRequest)}


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ({"content_type": "image/gif"}, "is image/gif; this provider takes JPEG, PNG, BMP, WEBP"),
        ({"size": 11 * 1024 * 1024}, "is 11.0 MB; the largest accepted is 10 MB"),
        ({"width": 299, "height": 400}, "shortest side must be at least 300 px"),
        ({"width": 2600, "height": 1000}, "between 1:2.5 and 2.5:1"),
        ({"width": 400, "height": 1001}, "between 1:2.5 and 2.5:1"),
    ],
)
def test_picture_limits_explain_what_is_wrong_from_metadata(metadata, problem) -> None:
    from hh_api import HappyHorse, ProviderConfig

    limits = HappyHorse({"joypix": ProviderConfig("joypix")}).capabilities(
        "joypix", Mode.IMAGE
    ).pictures
    assert limits is not None
    [found] = limits.problems(**metadata)
    assert problem in found


def test_pictures_within_the_limits_have_no_problems() -> None:
    limits = PictureLimits(("image/png",), 10, 300, Fraction(2, 5), Fraction(5, 2))
    assert limits.problems(content_type="image/png", size=10, width=1000, height=400) == []
    assert limits.problems() == []  # nothing known, nothing to say


def test_each_pages_picture_limits_are_carried() -> None:
    from hh_api import HappyHorse, ProviderConfig

    client = HappyHorse({n: ProviderConfig(n) for n in ("joypix", "hiapi", "wavespeed")})
    hiapi = client.capabilities("hiapi", Mode.REFERENCE).pictures
    assert hiapi is not None
    assert (hiapi.min_side, hiapi.max_bytes) == (400, 20 * 1024 * 1024)
    assert "image/bmp" not in (hiapi.formats or ())
    assert client.capabilities("joypix", Mode.REFERENCE).pictures is None  # page gives none
    assert client.capabilities("wavespeed", Mode.IMAGE).pictures is not None
