"""Make ``demo.mp4``, the clip the demo provider returns. Run once by hand, not by the bot.

    python3 -m venv /tmp/mp4 && /tmp/mp4/bin/pip install imageio-ffmpeg==0.8.1 Pillow
    /tmp/mp4/bin/python hh_api/assets/make_demo_video.py hh_api/assets/demo.mp4

Pillow draws each frame (a drifting colour gradient, a circle crossing it, the words
"Paddock demo" in Pillow's own built-in font); ffmpeg encodes them as H.264 in yuv420p
with the index at the front (faststart), so Discord plays it inline.
"""

from __future__ import annotations

import colorsys
import math
import subprocess
import sys

import imageio_ffmpeg
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT, FPS, SECONDS = 480, 270, 24, 4


def frame(index: int, font: ImageFont.FreeTypeFont) -> bytes:
    t = index / (FPS * SECONDS)  # 0 .. 1 over the clip
    image = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(image)
    for x in range(WIDTH):
        hue = (0.55 + 0.25 * x / WIDTH + t) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.55, 0.85)
        draw.line([(x, 0), (x, HEIGHT)], fill=(int(r * 255), int(g * 255), int(b * 255)))
    cx = int(-30 + (WIDTH + 60) * t)
    cy = int(HEIGHT * 0.72 - 45 * abs(math.sin(t * 4 * math.pi)))
    draw.ellipse([cx - 22, cy - 22, cx + 22, cy + 22], fill=(255, 255, 255))
    draw.text((WIDTH / 2, HEIGHT * 0.35), "Paddock demo", font=font, anchor="mm",
              fill=(255, 255, 255), stroke_width=2, stroke_fill=(40, 40, 60))
    return image.tobytes()


def main(out: str) -> None:
    font = ImageFont.load_default(size=44)
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS),
        "-i", "-",
        "-c:v", "libx264", "-profile:v", "main", "-preset", "veryslow", "-crf", "30",
        "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-map_metadata", "-1",
        "-fflags", "+bitexact", "-flags:v", "+bitexact", out,
    ]
    encoder = subprocess.Popen(command, stdin=subprocess.PIPE)
    assert encoder.stdin is not None
    for index in range(FPS * SECONDS):
        encoder.stdin.write(frame(index, font))
    encoder.stdin.close()
    if encoder.wait() != 0:
        sys.exit("ffmpeg failed")


if __name__ == "__main__":
    main(sys.argv[1])
