"""What a generation costs, in credits (1 credit = US$0.01).

Rates are credits per second of video, taken from the providers' pages:

| provider  | 720p | 1080p | source                                     |
| --------- | ---- | ----- | ------------------------------------------ |
| joypix    | 14   | 24    | "14 credits/s ($0.14/s)", "24 credits/s"   |
| wavespeed | 14   | 18.9  | "$0.14" and "$0.189" per second            |
| pixeldojo | —    | —     | no dollar price on the page                |
| hiapi     | —    | —     | "See HiAPI Pricing", not in the page       |

Where a page gives no price, the rate is the highest known rate for that
resolution (so a server is never under-charged). An operator can set any rate
with ``NAME_PRICE_720P`` / ``NAME_PRICE_1080P``. A job's price is the rate times
the duration, rounded up to a whole credit per job (WaveSpeed 1080p for 5 s is
94.5, so 95 credits: the page's $0.945).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from hh_api.config import PROVIDER_NAMES
from hh_api.errors import ConfigurationError
from hh_api.models import VideoRequest

DOCUMENTED_RATES: Mapping[tuple[str, str], Decimal] = {
    ("joypix", "720p"): Decimal("14"),
    ("joypix", "1080p"): Decimal("24"),
    ("wavespeed", "720p"): Decimal("14"),
    ("wavespeed", "1080p"): Decimal("18.9"),
}
RESOLUTIONS = ("720p", "1080p")


class PriceTable:
    """Credits per second for each provider and resolution."""

    def __init__(self, overrides: Mapping[tuple[str, str], Decimal] | None = None) -> None:
        self._overrides = dict(overrides or {})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PriceTable:
        env = os.environ if environ is None else environ
        overrides = {}
        for provider in PROVIDER_NAMES:
            for resolution in RESOLUTIONS:
                name = f"{provider.upper()}_PRICE_{resolution.upper()}"
                if (text := env.get(name, "").strip()) == "":
                    continue
                try:
                    rate = Decimal(text)
                except InvalidOperation:
                    rate = Decimal(-1)
                if not rate.is_finite() or rate < 0:
                    raise ConfigurationError(
                        f"{name} must be credits per second (a number >= 0), not {text!r}",
                        setting=name,
                    )
                overrides[(provider, resolution)] = rate
        return cls(overrides)

    def rate(self, provider: str, resolution: str) -> Decimal:
        """Credits per second; the highest known rate where the page gives none."""
        key = (provider, resolution)
        if key in self._overrides:
            return self._overrides[key]
        if key in DOCUMENTED_RATES:
            return DOCUMENTED_RATES[key]
        known = [rate for (_, res), rate in DOCUMENTED_RATES.items() if res == resolution]
        if not known:
            raise ConfigurationError(f"no price is known for {resolution} video")
        return max(known)

    def source(self, provider: str, resolution: str) -> str:
        """Where a rate comes from: 'configured', 'documented' or 'highest known'."""
        if (provider, resolution) in self._overrides:
            return "configured"
        if (provider, resolution) in DOCUMENTED_RATES:
            return "documented"
        return "highest known"

    def credits(self, provider: str, request: VideoRequest) -> int:
        """The price of a resolved request (resolution and duration filled in)."""
        if request.resolution is None or request.duration is None:
            raise ValueError("price a resolved request: resolution and duration are needed")
        return math.ceil(self.rate(provider, request.resolution) * request.duration)
