"""Follow-up jobs made from something already in the chat: which provider renders them.

Discord-free. Animate (a picture in a message) and Extend (a finished video's last
frame) are image-to-video jobs; they go to a provider that offers image mode.
"""

from __future__ import annotations

from collections.abc import Iterable

from hh_api import HappyHorse, Mode
from paddock.routing import AUTO


def offering(hh: HappyHorse, names: Iterable[str], mode: Mode) -> list[str]:
    """The providers among `names` that offer `mode`, in the order given."""
    return [name for name in names if mode in hh.provider(name).offers]


def provider_for(
    hh: HappyHorse, names: list[str], mode: Mode, preferred: str | None
) -> str | None:
    """`preferred` when it is among `names` and offers `mode`; else ``auto`` (the router
    picks the cheapest provider working now, and it only plans providers that offer
    `mode`) when one of `names` offers it; else None."""
    if preferred in names and mode in hh.provider(preferred).offers:
        return preferred
    return AUTO if offering(hh, names, mode) else None
