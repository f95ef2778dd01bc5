"""A contact sheet: reference pictures as one row (or grid) of thumbnails, as a PNG."""

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


def contact_sheet(pictures: Sequence[bytes], *, columns: int = 3) -> io.BytesIO | None:
    """Lay out the pictures that decode; None if none do."""
    thumbs = []
    for data in pictures:
        try:
            with Image.open(io.BytesIO(data)) as picture:
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
