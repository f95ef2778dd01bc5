"""The thumbnail sheet of reference pictures decodes each picture with a pixel cap."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from paddock.sheet import GAP, PLACEHOLDER, THUMB
from tests.bot.support import decided, give_credits
from tests.bot.test_video import finished_post
from tests.fakes.discord import Upload


def huge_png(side: int) -> bytes:
    """A white `side` x `side` PNG (1 bit a pixel): small to send, 169 MP to decode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    pixels = zlib.compressobj(9)
    data = b"".join(pixels.compress(row) for _ in range(side)) + pixels.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
            + chunk(b"IEND", b""))


async def test_a_13000_pixel_picture_gets_a_plain_tile_instead_of_being_decoded(
    fake_discord, paddock, providers
) -> None:
    alice = fake_discord.member("alice")
    await give_credits(paddock, alice, 100)
    giant = Upload("giant.png", huge_png(13_000))
    assert (giant.width, giant.height) == (13_000, 13_000)

    await decided(await alice.slash(
               "video reference", prompt="[Image 1] meets [Image 2]", image1=giant,
               image2=Upload.image("small.png", 800, 800, color=(200, 30, 30))))
    post = await finished_post(fake_discord, alice)

    [sheet] = [a for a in post.attachments if a.filename == "references.png"]
    with Image.open(io.BytesIO(sheet.data)) as picture:
        middle = GAP + THUMB // 2
        assert picture.convert("RGB").getpixel((middle, middle)) == PLACEHOLDER
        second = GAP + THUMB + GAP + THUMB // 2
        assert picture.convert("RGB").getpixel((second, middle)) == (200, 30, 30)
    assert any(a.filename.endswith(".mp4") for a in post.attachments)
