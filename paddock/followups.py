"""Follow-up jobs made from something already in the chat: which provider renders them.

Discord-free. Animate (a picture in a message) and Extend (a finished video's last
frame) are image-to-video jobs; they go to a provider that offers image mode.
"""

from __future__ import annotations

from collections.abc import Iterable

from hh_api import HappyHorse, InvalidRequestError, Mode, VideoRequest

_ANY_PICTURE = "https://cdn.invalid/picture.png"  # pricing looks at resolution and duration


def offering(hh: HappyHorse, names: Iterable[str], mode: Mode) -> list[str]:
    """The providers among `names` that offer `mode`, in the order given."""
    return [name for name in names if mode in hh.provider(name).offers]


def cheapest_offering(
    hh: HappyHorse,
    names: Iterable[str],
    mode: Mode,
    *,
    resolution: str | None = None,
    duration: int | None = None,
) -> str | None:
    """The provider among `names` offering `mode` that charges least for this resolution
    and duration (the first given wins a tie); None when none offers it.

    A stand-in for the router's "cheapest provider with a mode" (provider:auto), to be
    replaced by it."""
    best: tuple[int, str] | None = None
    for name in offering(hh, names, mode):
        pictures = (_ANY_PICTURE,) if mode is not Mode.TEXT else ()
        try:
            request = hh.validate(name, VideoRequest(
                prompt="-", mode=mode, images=pictures, resolution=resolution,
                duration=duration))
        except InvalidRequestError:
            continue  # it cannot make this resolution or duration
        credits = hh.prices.credits(name, request)
        if best is None or credits < best[0]:
            best = (credits, name)
    return best[1] if best is not None else None


def provider_for(
    hh: HappyHorse,
    names: list[str],
    mode: Mode,
    preferred: str | None,
    *,
    resolution: str | None = None,
    duration: int | None = None,
) -> str | None:
    """`preferred` when it is usable and offers `mode`, else the cheapest that does."""
    if preferred in names and mode in hh.provider(preferred).offers:
        return preferred
    return cheapest_offering(hh, names, mode, resolution=resolution, duration=duration)
