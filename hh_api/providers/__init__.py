"""The providers hh_api speaks to, by name: the four sellers, and Paddock's free demo.

`PROVIDERS` maps every name a `HappyHorse` client accepts to its class. The demo is in
it, but not in `hh_api.config.PROVIDER_NAMES` (the sellers read from the environment): it
has no key to set, and whoever wants it starts a `hh_api.demo.DemoBackend` and passes
its `provider_config()`.
"""

from __future__ import annotations

from hh_api.providers.base import Provider
from hh_api.providers.demo import DEMO_PROVIDER, Demo
from hh_api.providers.hiapi import HiAPI
from hh_api.providers.joypix import JoyPix
from hh_api.providers.pixeldojo import PixelDojo
from hh_api.providers.wavespeed import WaveSpeed

PROVIDERS: dict[str, type[Provider]] = {
    cls.name: cls for cls in (JoyPix, WaveSpeed, PixelDojo, HiAPI, Demo)
}

__all__ = [
    "DEMO_PROVIDER", "PROVIDERS", "Demo", "HiAPI", "JoyPix", "PixelDojo", "Provider", "WaveSpeed",
]
