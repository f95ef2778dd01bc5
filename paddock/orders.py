"""Turning what a member typed and attached into a priced, checked video request.

Every check here works from metadata Discord already sent (content type, size, pixel
dimensions), so a refusal costs no download and comes back instantly. Each refusal
names the problem and the fix, and is safe to show as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hh_api import HappyHorse, InvalidRequestError, Mode, VideoRequest
from paddock.errors import PaddockError

IMAGE_REFERENCE = re.compile(r"\[\s*image\s*(\d+)\s*\]", re.IGNORECASE)


class OrderRefused(PaddockError):
    """The order cannot be made as it is; the message says what to change."""


@dataclass(frozen=True)
class Picture:
    """An attached picture as Discord describes it."""

    option: str  # the option it came from, e.g. "image2"
    filename: str
    url: str
    content_type: str | None
    size: int
    width: int | None
    height: int | None
    checked: bool = False  # already checked for an earlier job (re-roll, remix)


@dataclass(frozen=True)
class Order:
    """A checked request, ready to be accepted and charged."""

    provider: str
    request: VideoRequest  # resolved: every default filled in
    credits: int
    pictures: tuple[Picture, ...]


def prepare(
    hh: HappyHorse,
    provider: str,
    mode: Mode,
    prompt: str,
    pictures: Sequence[Picture] = (),
    *,
    resolution: str | None = None,
    aspect_ratio: str | None = None,
    duration: int | None = None,
    seed: int | None = None,
    negative_prompt: str | None = None,
) -> Order:
    """Check an order against `provider`'s offer; raise OrderRefused with the fix."""
    title = hh.provider(provider).title
    try:
        offer = hh.capabilities(provider, mode)
    except InvalidRequestError as error:
        raise OrderRefused(_with_fix(error)) from None
    for picture in pictures:
        if not picture.checked:
            _check_picture(picture, offer.pictures, title)
    if mode is Mode.REFERENCE:
        check_image_references(prompt, len(pictures))
    try:
        request = hh.validate(provider, VideoRequest(
            prompt=prompt, mode=mode, images=tuple(p.url for p in pictures),
            resolution=resolution, aspect_ratio=aspect_ratio, duration=duration, seed=seed,
            negative_prompt=negative_prompt,
        ))
    except InvalidRequestError as error:
        raise OrderRefused(_with_fix(error)) from None
    return Order(provider, request, hh.prices.credits(provider, request), tuple(pictures))


def check_image_references(prompt: str, count: int) -> None:
    """`[Image N]` in a prompt must point at one of the attached pictures."""
    named = sorted({int(n) for n in IMAGE_REFERENCE.findall(prompt)})
    missing = [n for n in named if not 1 <= n <= count]
    if missing:
        names = ", ".join(f"[Image {n}]" for n in missing)
        attached = f"{count} picture" + ("" if count == 1 else "s")
        raise OrderRefused(
            f"The prompt names {names}, but you attached {attached}. [Image N] means the "
            f"picture in option image{{N}}: attach it, or change the prompt."
        )


def _check_picture(picture: Picture, limits, title: str) -> None:
    kind = (picture.content_type or "").split(";")[0].strip().lower()
    filename = picture.filename if len(picture.filename) <= 60 else picture.filename[:59] + "…"
    label = f"{picture.option} ({filename})"
    if not kind.startswith("image/"):
        shown = kind or "of unknown type"
        raise OrderRefused(
            f"{label} is not a picture ({shown}). Attach a JPEG, PNG or WEBP image instead."
        )
    if limits is None:
        return
    problems = limits.problems(
        content_type=kind, size=picture.size, width=picture.width, height=picture.height
    )
    if problems:
        raise OrderRefused(
            f"{label} {problems[0]}. {title} needs this; attach another picture "
            f"or choose another provider."
        )


def _with_fix(error: InvalidRequestError) -> str:
    text = str(error)
    if error.field in ("seed", "negative_prompt", "mode"):
        return f"{text}. Choose another provider if you need it."
    if not text.endswith("."):
        text += "."
    return text
