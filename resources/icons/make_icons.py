"""Draws the genstudio app icon (a ring of sampled points warping into a spiral) at every size we ship.

    python resources/icons/make_icons.py
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).parent
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def draw(size: int = 1024) -> Image.Image:
    s = size
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    # Rounded square with a vertical indigo-to-teal gradient.
    grad = Image.new("RGBA", (s, s))
    top, bottom = (63, 55, 201), (17, 170, 170)
    px = grad.load()
    for y in range(s):
        t = y / (s - 1)
        c = tuple(int(top[i] * (1 - t) + bottom[i] * t) for i in range(3)) + (255,)
        for x in range(s):
            px[x, y] = c
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle((int(s * 0.04),) * 2 + (int(s * 0.96),) * 2, radius=int(s * 0.2), fill=255)
    img.paste(grad, (0, 0), mask)
    # A spiral of dots growing outwards: noise becoming structure.
    dots = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(dots)
    n = 70
    for i in range(n):
        t = i / (n - 1)
        angle = 4.2 * math.pi * t
        r = s * (0.06 + 0.32 * t)
        cx, cy = s / 2 + r * math.cos(angle), s / 2 + r * math.sin(angle)
        rad = s * (0.012 + 0.03 * t)
        alpha = int(120 + 135 * t)
        d.ellipse((cx - rad, cy - rad, cx + rad, cy + rad), fill=(255, 255, 255, alpha))
    glow = dots.filter(ImageFilter.GaussianBlur(s * 0.01))
    img.alpha_composite(glow)
    img.alpha_composite(dots)
    return img


def main() -> None:
    big = draw(1024)
    for n in SIZES:
        big.resize((n, n), Image.Resampling.LANCZOS).save(HERE / f"genstudio-{n}.png")
    big.resize((256, 256), Image.Resampling.LANCZOS).save(
        HERE / "genstudio.ico", sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])


if __name__ == "__main__":
    main()
