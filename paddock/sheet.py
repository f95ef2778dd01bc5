"""A contact sheet: reference pictures as one row (or grid) of thumbnails, as a PNG.

Decoding is capped: a JPEG is decoded at a reduced scale (``draft``), and a picture that
would still be over `PIXEL_CAP` pixels is not decoded at all (a 13,000 x 13,000 PNG
would take seconds and 500 MB); a plain tile of its shape stands in for it. Blocking:
run it in a worker thread."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence

from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

THUMB = 256  # each picture fits in a square this many pixels wide
GAP = 8
BACKGROUND = (43, 45, 49)  # Discord's dark embed background
PLACEHOLDER = (79, 84, 92)  # the tile of a picture too large to decode
PIXEL_CAP = 40_000_000  # pixels decoded at most for one thumbnail (an 8K photo is 33M)


def contact_sheet(pictures: Sequence[bytes], *, columns: int = 3) -> io.BytesIO | None:
    """Lay out the pictures that decode; None if none do."""
    thumbs = []
    for data in pictures:
        try:
            with Image.open(io.BytesIO(data)) as picture:
                picture.draft("RGB", (THUMB, THUMB))  # JPEG: decode at 1/2 to 1/8 scale
                if picture.width * picture.height > PIXEL_CAP:
                    log.info("a %dx%d reference picture is too large to decode for the "
                             "sheet; a plain tile stands in", picture.width, picture.height)
                    thumbs.append(_placeholder(picture.width, picture.height))
                    continue
                picture.thumbnail((THUMB, THUMB))
                thumbs.append(picture.convert("RGB"))
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
            log.info("a reference picture could not be read for the sheet: %s", error)
    if not thumbs:
        return None
    columns = min(columns, len(thumbs))
    rows = math.ceil(len(thumbs) / columns)
    sheet = Image.new(
        "RGB", (columns * (THUMB + GAP) + GAP, rows * (THUMB + GAP) + GAP), BACKGROUND
    )
    for index, thumb in enumerate(thumbs):
        row, column = divmod(index, columns)
        x = GAP + column * (THUMB + GAP) + (THUMB - thumb.width) // 2
        y = GAP + row * (THUMB + GAP) + (THUMB - thumb.height) // 2
        sheet.paste(thumb, (x, y))
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    out.seek(0)
    return out


def _placeholder(width: int, height: int) -> Image.Image:
    scale = THUMB / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return Image.new("RGB", size, PLACEHOLDER)
