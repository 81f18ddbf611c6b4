"""SynthFaces: a procedural, seeded 64x64 face dataset with categorical attributes, captions and a held-out split.

    image, attrs = render(7)                              # (64, 64, 3) uint8, {"hair_colour": "red", ...}
    images, attrs = sample(1000, seed=0)                  # (1000, 64, 64, 3) uint8, train split
    text = caption(attrs[0], np.random.default_rng(0))    # "a smiling woman with long red hair ..."

A face is a pure function of its seed: the attributes come from one PCG64 stream, the look (pose, light,
colour jitter, curls, backdrop pattern) from another, so `render(seed, overrides={"hair_colour": "blue"})`
is the same face with blue hair. Needs only numpy and Pillow.

    python -m genstudio.export.data.synthfaces --grid docs/synthfaces-grid.png   # the 8x8 sample sheet
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .synthfaces_attributes import (
    ATTRIBUTES,
    HELD_OUT,
    HELD_OUT_KEYS,
    decode,
    encode,
    is_held_out,
    sample_attributes,
)
from .synthfaces_captions import caption, caption_named, tokenize, vocabulary
from .synthfaces_draw import LOOK_SLOTS, SIZE, draw_face

__all__ = [
    "ATTRIBUTES", "HELD_OUT", "HELD_OUT_KEYS", "SIZE", "SPLITS", "attributes", "caption", "caption_named",
    "decode", "encode",
    "attribute_regions", "face_seeds", "grid", "is_held_out", "render", "sample", "tokenize", "vocabulary",
]  # fmt: skip

SPLITS = ("train", "heldout", "all")
_ATTRS, _LOOK, _SEEDS = 0, 1, 2  # independent child streams of one seed


def _rng(seed: int, stream: int) -> np.random.Generator:
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(stream,))))


def attributes(seed: int, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The attributes of face `seed` without drawing it (cheap: use it to filter or count)."""
    return sample_attributes(_rng(seed, _ATTRS), overrides)


def render(seed: int, overrides: Mapping[str, str] | None = None) -> tuple[np.ndarray, dict[str, str]]:
    """Face `seed`: image (64, 64, 3) uint8 and its attributes; `overrides` pins some attribute values."""
    attrs = attributes(seed, overrides)
    return draw_face(attrs, _rng(seed, _LOOK).random(LOOK_SLOTS)), attrs


def _in_split(attrs: Mapping[str, str], split: str) -> bool:
    return split == "all" or is_held_out(attrs) == (split == "heldout")


def face_seeds(n: int, seed: int = 0, split: str = "train", overrides: Mapping[str, str] | None = None) -> list[int]:
    """The seeds of the n faces that `sample(n, seed, split)` draws: a seeded stream filtered by split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    stream = _rng(seed, _SEEDS).bit_generator
    out: list[int] = []
    tried, limit = 0, 200 * n + 1000
    while len(out) < n:
        if tried >= limit:
            raise ValueError(f"no faces in split {split!r} with overrides {dict(overrides or {})}")
        batch = (stream.random_raw(256) >> np.uint64(1)).tolist()  # 63-bit seeds; chunking never changes them
        for s in batch:
            if len(out) < n and _in_split(attributes(s, overrides), split):
                out.append(s)
        tried += len(batch)
    return out


def sample(
    n: int, seed: int = 0, split: str = "train", overrides: Mapping[str, str] | None = None
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """n faces: images (n, 64, 64, 3) uint8 and their attributes. split: "train", "heldout" or "all"."""
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    attrs = []
    for i, s in enumerate(face_seeds(n, seed, split, overrides)):
        images[i], a = render(s, overrides)
        attrs.append(a)
    return images, attrs


def attribute_regions(seeds: Sequence[int], keys: Sequence[str], split: str = "train") -> np.ndarray:
    """uint8 (n, 64, 64), 1 where face `seed` changes when one of `keys` takes another value and all else stays
    (one counterpart per other value, each a pure function of the seed like the face itself), grown by a pixel
    to take in anti-aliased edges: where the words for those attributes are drawn, say the mouth, brows and lids
    for "expression", the eyes for "glasses" even on a face without them. Counterparts outside `split` are
    skipped, so no held-out combination is ever drawn for a train face."""
    for key in keys:
        if key not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {key!r}; known: {', '.join(ATTRIBUTES)}")
    out = np.zeros((len(seeds), SIZE, SIZE), np.uint8)
    for i, s in enumerate(seeds):
        face, attrs = render(s)
        changed = np.zeros((SIZE, SIZE), bool)
        for key in keys:
            for value in ATTRIBUTES[key]:
                other = {**attrs, key: value}
                if value == attrs[key] or not _in_split(other, split):
                    continue
                image, _ = render(s, other)
                changed |= (np.abs(image.astype(np.int16) - face).max(axis=2) > 8)
        out[i] = np.asarray(Image.fromarray(changed.astype(np.uint8)).filter(ImageFilter.MaxFilter(3)))  # dilated
    return out


# ---- sheets for people ------------------------------------------------------------------------------
def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def grid(tiles: Sequence[tuple[np.ndarray, str]], columns: int = 8, zoom: int = 2) -> Image.Image:
    """Images with a label under each, `columns` per row, each upscaled `zoom`x with nearest neighbour."""
    side, label, pad = SIZE * zoom, 16, 4
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (pad + columns * (side + pad), pad + rows * (side + label + pad)), (250, 250, 250))
    draw, font = ImageDraw.Draw(sheet), _font(12)
    for i, (image, text) in enumerate(tiles):
        x, y = pad + (i % columns) * (side + pad), pad + (i // columns) * (side + label + pad)
        sheet.paste(Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST), (x, y))
        draw.text((x + side // 2, y + side + 2), text, fill=(40, 40, 40), font=font, anchor="ma")
    return sheet


SHEET_CONTEXT: dict[str, dict[str, str]] = {  # overrides that make each row's attribute easy to see
    "gender": {"hair_style": "short", "headwear": "none", "glasses": "none", "skin_tone": "light"},
    "face_shape": {"hair_style": "bald", "headwear": "none", "glasses": "none", "facial_hair": "none", "skin_tone": "tan"},
    "hair_style": {"headwear": "none", "hair_colour": "brown"},
    "hair_colour": {"hair_style": "long", "headwear": "none"},
    "eye_colour": {"glasses": "none", "expression": "surprised"},
    "eyebrows": {"hair_style": "ponytail", "headwear": "none", "glasses": "none", "expression": "neutral", "skin_tone": "light"},
    "expression": {"glasses": "none"},
    "glasses": {"headwear": "none"},
    "facial_hair": {"gender": "man", "hair_style": "short", "hair_colour": "brown", "expression": "neutral"},
    "headwear": {"hair_style": "short"},
    "earrings": {"gender": "woman", "hair_style": "bun", "headwear": "none"},
}


def attribute_sheet(seed: int = 3) -> Image.Image:
    """One row per attribute: face `seed` with each value of that attribute (and a little context pinned)."""
    width = max(len(v) for v in ATTRIBUTES.values())
    tiles: list[tuple[np.ndarray, str]] = []
    for row, (name, values) in enumerate(ATTRIBUTES.items()):
        for value in values:
            image, _ = render(seed + row, {**SHEET_CONTEXT.get(name, {}), name: value})
            tiles.append((image, value))
        tiles += [(np.full((SIZE, SIZE, 3), 250, np.uint8), "")] * (width - len(values))
    return grid(tiles, columns=width)


def measure_speed(n: int = 300) -> float:
    """Faces per second for render() on this machine, one core."""
    start = time.perf_counter()
    for s in range(n):
        render(s)
    return n / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genstudio.export.data.synthfaces", description=__doc__.split("\n")[0])
    parser.add_argument("--grid", metavar="PNG", help="write an 8x8 sheet of faces with their seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the grid's first face")
    parser.add_argument("--sheet", metavar="PNG", help="write one row per attribute showing every value")
    parser.add_argument("--captions", type=int, default=0, metavar="N", help="print N seeds with a caption each")
    parser.add_argument("--bench", type=int, default=0, metavar="N", help="render N faces and print faces/second")
    args = parser.parse_args(argv)
    if not (args.grid or args.sheet or args.captions or args.bench):
        parser.print_help()
        return 2
    if args.grid:
        seeds = range(args.first_seed, args.first_seed + 64)
        grid([(render(s)[0], f"seed {s}") for s in seeds]).save(args.grid)
        print(f"wrote {args.grid}")
    if args.sheet:
        attribute_sheet().save(args.sheet)
        print(f"wrote {args.sheet}")
    for s in range(args.first_seed, args.first_seed + args.captions):
        print(f"{s:4d}  {caption(attributes(s), np.random.default_rng(s))}")
    if args.bench:
        print(f"{measure_speed(args.bench):.0f} faces/s over {args.bench} faces (one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
