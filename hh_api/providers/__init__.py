"""The four providers hh_api speaks to, by name."""

from __future__ import annotations

from hh_api.providers.base import Provider
from hh_api.providers.hiapi import HiAPI
from hh_api.providers.joypix import JoyPix
from hh_api.providers.pixeldojo import PixelDojo
from hh_api.providers.wavespeed import WaveSpeed

PROVIDERS: dict[str, type[Provider]] = {
    cls.name: cls for cls in (JoyPix, WaveSpeed, PixelDojo, HiAPI)
}

__all__ = ["PROVIDERS", "HiAPI", "JoyPix", "PixelDojo", "Provider", "WaveSpeed"]
