"""What each provider accepts per mode, and the check of a request against it.

A request is validated here before any network traffic: a refusal names the
field and the allowed values, so a caller can show it to a person as it is.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from fractions import Fraction

from hh_api.errors import InvalidRequestError
from hh_api.models import Mode, VideoRequest

SEED_MAX = 2_147_483_647
# Letters, digits, punctuation and symbols show; separators, control and format characters
# (zero-width space and joiners, word joiner, BOM, soft hyphen) and lone combining marks
# (variation selectors) do not. A few letters and symbols are drawn as blanks too.
_VISIBLE_CATEGORIES = ("L", "N", "P", "S")
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")  # Hangul fillers, braille blank


def _visible(char: str) -> bool:
    return unicodedata.category(char)[0] in _VISIBLE_CATEGORIES and char not in _BLANK_GLYPHS


def visible_characters(text: str) -> int:
    """How many characters of `text` a reader sees (spaces and invisible ones left out)."""
    return sum(1 for char in text if _visible(char))


def shows_anything(text: str) -> bool:
    """Whether a reader sees any character of `text`: stops at the first one it sees
    (a 2,500-character prompt checked whole took 0.4 ms before a member's first answer)."""
    return any(_visible(char) for char in text)
HAPPYHORSE_1_0_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")


@dataclass(frozen=True)
class PictureLimits:
    """The limits a page gives for input pictures; None where the page is silent."""

    formats: tuple[str, ...] | None = None  # MIME types, e.g. "image/png"
    max_bytes: int | None = None
    min_side: int | None = None  # shortest side, in pixels
    min_aspect: Fraction | None = None  # width / height
    max_aspect: Fraction | None = None

    def problems(
        self,
        *,
        content_type: str | None = None,
        size: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> list[str]:
        """What is wrong with a picture, from its metadata alone; empty when it fits."""
        found = []
        if self.formats and content_type is not None:
            kind = content_type.split(";")[0].strip().lower()
            if kind not in self.formats:
                names = ", ".join(f.removeprefix("image/").upper() for f in self.formats)
                found.append(f"is {kind or 'of no known type'}; this provider takes {names}")
        if self.max_bytes is not None and size is not None and size > self.max_bytes:
            found.append(
                f"is {size / 1_048_576:.1f} MB; the largest accepted is "
                f"{self.max_bytes / 1_048_576:.0f} MB"
            )
        if width and height:
            shortest = min(width, height)
            if self.min_side is not None and shortest < self.min_side:
                found.append(
                    f"is {width}x{height} px; its shortest side must be at least "
                    f"{self.min_side} px"
                )
            ratio = Fraction(width, height)
            too_narrow = self.min_aspect is not None and ratio < self.min_aspect
            too_wide = self.max_aspect is not None and ratio > self.max_aspect
            if too_narrow or too_wide:
                found.append(
                    f"is {width}x{height} px; its aspect ratio must be between "
                    f"{_ratio_text(self.min_aspect)} and {_ratio_text(self.max_aspect)}"
                )
        return found


def _ratio_text(value: Fraction | None) -> str:
    if value is None:
        return "any"
    if value >= 1:
        return f"{float(value):g}:1"
    return f"1:{float(1 / value):g}"


@dataclass(frozen=True)
class ModeCapabilities:
    """One provider's offer for one mode, straight from its page (or inferred)."""

    provider: str
    mode: Mode
    model: str
    path: str  # appended to the provider's base URL
    documented: bool  # False: follows the provider's pattern but no page shows it
    min_images: int
    max_images: int
    resolutions: tuple[str, ...]
    default_resolution: str
    aspect_ratios: tuple[str, ...] | None  # None: the mode takes no aspect ratio
    default_aspect_ratio: str | None
    min_duration: int = 3
    max_duration: int = 15
    default_duration: int = 5
    seed_range: tuple[int, int] | None = (0, SEED_MAX)  # None: no seed accepted
    negative_prompt: bool = False
    max_prompt_chars: int | None = None
    pictures: PictureLimits | None = None

    @property
    def inferred(self) -> bool:
        return not self.documented

    def resolve(self, request: VideoRequest) -> VideoRequest:
        """Check `request` against this offer; return it with every default filled in.

        Raises InvalidRequestError naming the field and what is allowed.
        """
        where = f"{self.mode.value} mode on {self.provider}"

        def refuse(field: str, message: str, allowed: object = None) -> InvalidRequestError:
            return InvalidRequestError(
                message, field=field, allowed=allowed, provider=self.provider  # type: ignore[arg-type]
            )

        if request.mode is not self.mode:
            raise refuse("mode", f"this offer is for {where}, not {request.mode.value} mode")
        prompt = request.prompt.strip()
        if not prompt:
            raise refuse("prompt", "the prompt is empty; describe the video you want")
        if not shows_anything(prompt):
            raise refuse(
                "prompt",
                "the prompt has no visible characters (only spaces or invisible characters "
                "such as zero-width spaces); describe the video you want",
            )
        if self.max_prompt_chars is not None and len(prompt) > self.max_prompt_chars:
            raise refuse(
                "prompt",
                f"the prompt is {len(prompt)} characters; {where} takes at most "
                f"{self.max_prompt_chars}",
                self.max_prompt_chars,
            )
        count = len(request.images)
        if not self.min_images <= count <= self.max_images:
            wanted = (
                "no pictures"
                if self.max_images == 0
                else f"exactly {self.min_images} picture"
                if self.min_images == self.max_images == 1
                else f"{self.min_images}-{self.max_images} pictures"
            )
            raise refuse(
                "images", f"{where} takes {wanted}; got {count}", (self.min_images, self.max_images)
            )
        for position, url in enumerate(request.images, start=1):
            if not url.startswith(("https://", "http://")):
                raise refuse("images", f"picture {position} is not an http(s) URL")

        resolution = request.resolution or self.default_resolution
        if resolution not in self.resolutions:
            raise refuse(
                "resolution",
                f"resolution {_shown(resolution)} is not offered; choose one of "
                f"{', '.join(self.resolutions)}",
                self.resolutions,
            )

        aspect_ratio = request.aspect_ratio
        if self.aspect_ratios is None:
            if aspect_ratio is not None:
                raise refuse(
                    "aspect_ratio",
                    f"{where} takes no aspect ratio: the video keeps the picture's shape",
                )
        else:
            aspect_ratio = aspect_ratio or self.default_aspect_ratio
            if aspect_ratio not in self.aspect_ratios:
                raise refuse(
                    "aspect_ratio",
                    f"aspect ratio {_shown(aspect_ratio)} is not offered by {self.provider}; "
                    f"choose one of {', '.join(self.aspect_ratios)}",
                    self.aspect_ratios,
                )

        duration = self.default_duration if request.duration is None else request.duration
        if isinstance(duration, bool) or not isinstance(duration, int):
            raise refuse("duration", "the duration must be a whole number of seconds")
        if not self.min_duration <= duration <= self.max_duration:
            raise refuse(
                "duration",
                f"a duration of {duration} s is out of range; choose "
                f"{self.min_duration}-{self.max_duration} seconds",
                (self.min_duration, self.max_duration),
            )

        if request.seed is not None:
            if self.seed_range is None:
                raise refuse("seed", f"{self.provider} takes no seed; leave it out")
            low, high = self.seed_range
            if isinstance(request.seed, bool) or not isinstance(request.seed, int):
                raise refuse("seed", "the seed must be a whole number")
            if not low <= request.seed <= high:
                raise refuse(
                    "seed", f"seed {request.seed} is out of range; choose {low}-{high}", (low, high)
                )

        negative = request.negative_prompt
        if negative is not None and negative.strip() == "":
            negative = None
        if negative is not None and not self.negative_prompt:
            raise refuse(
                "negative_prompt", f"{self.provider} takes no negative prompt; leave it out"
            )

        return replace(
            request,
            prompt=prompt,
            resolution=resolution,
            aspect_ratio=aspect_ratio,
            duration=duration,
            negative_prompt=negative,
        )


def _shown(value: object, limit: int = 40) -> str:
    """A caller's value repeated in an error: its repr, clipped so a 5,000-character
    value cannot swamp the message that says what to choose instead."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
