"""Icon files the installers need, made from resources/icons/genstudio-<size>.png (Pillow only)."""

from __future__ import annotations

from pathlib import Path

ICNS_SIZES = (16, 32, 64, 128, 256, 512)


def png_sizes(icons: Path) -> list[int]:
    """The sizes N of every genstudio-N.png in `icons`, ascending."""
    out = []
    for p in icons.glob("genstudio-*.png"):
        tail = p.stem.rpartition("-")[2]
        if tail.isdigit():
            out.append(int(tail))
    return sorted(out)


def make_icns(icons: Path, out: Path) -> Path:
    """A macOS .icns with every size there is a PNG for (Pillow writes ICNS on any platform)."""
    from PIL import Image

    sizes = [s for s in png_sizes(icons) if s in ICNS_SIZES]
    if not sizes:
        raise FileNotFoundError(f"no genstudio-<size>.png in {icons}")
    images = [Image.open(icons / f"genstudio-{s}.png").convert("RGBA") for s in sizes]
    out.parent.mkdir(parents=True, exist_ok=True)
    images[-1].save(out, format="ICNS", append_images=images[:-1])
    return out
