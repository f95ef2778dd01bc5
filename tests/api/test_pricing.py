"""Prices in credits, from the pages' tables; operators may set their own."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hh_api import ConfigurationError, HappyHorse, Mode, PriceTable, ProviderConfig, VideoRequest

ALL = {n: ProviderConfig(n) for n in ("joypix", "wavespeed", "pixeldojo", "hiapi")}
REF = ("https://cdn.example/a.png",)


@pytest.mark.parametrize(
    ("provider", "resolution", "duration", "credits"),
    [
        ("joypix", "720p", 5, 70),  # 14 credits/s
        ("joypix", "1080p", 5, 120),  # 24 credits/s
        ("joypix", "1080p", 15, 360),
        ("wavespeed", "720p", 3, 42),  # the page's $0.42
        ("wavespeed", "1080p", 5, 95),  # $0.945, rounded up per job
        ("wavespeed", "1080p", 3, 57),  # $0.567
        ("wavespeed", "1080p", 15, 284),  # $2.835
        ("wavespeed", "1080p", 10, 189),  # $1.89, exact
        ("pixeldojo", "720p", 5, 70),  # no price on the page: highest known 720p rate
        ("pixeldojo", "1080p", 5, 120),  # highest known 1080p rate is JoyPix's 24/s
        ("hiapi", "1080p", 8, 192),
    ],
)
def test_prices_follow_the_pages(provider, resolution, duration, credits) -> None:
    client = HappyHorse(ALL, prices=PriceTable())
    mode = Mode.REFERENCE
    request = VideoRequest("x", mode, REF, resolution, duration=duration)
    assert client.price(provider, request) == credits


def test_where_a_rate_comes_from_is_reported() -> None:
    table = PriceTable({("hiapi", "720p"): Decimal("12")})
    assert table.source("joypix", "720p") == "documented"
    assert table.source("pixeldojo", "1080p") == "highest known"
    assert table.source("hiapi", "720p") == "configured"


def test_operators_set_any_rate_from_the_environment() -> None:
    table = PriceTable.from_env({"HIAPI_PRICE_720P": "9.5", "JOYPIX_PRICE_1080P": "30"})
    client = HappyHorse(ALL, prices=table)
    assert client.price("hiapi", VideoRequest("x", resolution="720p", duration=3)) == 29
    assert client.price("joypix", VideoRequest("x", resolution="1080p", duration=2 + 1)) == 90
    assert client.price("wavespeed", VideoRequest("x", duration=5)) == 70  # untouched


@pytest.mark.parametrize("text", ["cheap", "-1", "NaN", "inf"])
def test_a_bad_configured_rate_is_refused(text) -> None:
    with pytest.raises(ConfigurationError, match="WAVESPEED_PRICE_720P"):
        PriceTable.from_env({"WAVESPEED_PRICE_720P": text})


def test_pricing_validates_first() -> None:
    from hh_api import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="3-15"):
        HappyHorse(ALL).price("joypix", VideoRequest("x", duration=20))
