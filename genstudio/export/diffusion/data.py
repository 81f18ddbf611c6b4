"""Training images and captions: SynthFaces (train split, a fresh caption per draw) and Fashion-MNIST.

    images, captions = training_set("synthfaces", size=32, n=12000)    # uint8 (N, 3, 32, 32), a caption function
    captions(np.array([0, 1]), rng)                                    # two freshly drawn captions
    named = named_captions("synthfaces", n=12000)
    texts, targets = named.draw(np.array([0, 1]), rng)   # the same captions, and the attribute values they name

SynthFaces comes from the 'train' split only: faces whose (hair colour, expression, glasses) combination
is held out never appear, so a held-out prompt tests composition. Its 64x64 renders are shrunk with
Pillow (box filter for a whole factor, Lanczos otherwise). Fashion-MNIST's 28x28 images are padded with
background to 32x32; each class has one caption ("a photo of a sneaker").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from genstudio.export.data import fashion_mnist, image_sets, synthfaces
from genstudio.export.diffusion.tokenizer import fashion_mnist_captions

CaptionFn = Callable[[np.ndarray, np.random.Generator], list[str]]
NamedCaptionFn = Callable[[np.ndarray, np.random.Generator], tuple[list[str], np.ndarray]]
SYNTHFACES_SEED = 0  # the seed of the SynthFaces train draw (image_sets caches it)
REGION_KEYS = {"synthfaces": ("expression", "glasses")}  # the small attributes whose pixels region_weight favours


def resample_name(src: int, size: int) -> str:
    return "none" if src == size else ("box" if src % size == 0 else "lanczos")


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, 3) to side `size` with Pillow (box filter for a whole factor, else Lanczos)."""
    src = images.shape[1]
    name = resample_name(src, size)
    if name == "none":
        return images
    method = Image.Resampling.BOX if name == "box" else Image.Resampling.LANCZOS
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), method)) for im in images])


def training_set(dataset: str, size: int, n: int | None = None,
                 data_dir: str | None = None) -> tuple[np.ndarray, CaptionFn]:
    """uint8 (N, C, size, size) and captions(indices, rng) -> one caption per index."""
    if dataset == "fashion-mnist":
        split = fashion_mnist.load("train", data_dir)
        k = len(split) if n is None else min(n, len(split))
        images = np.pad(split.images[:k], ((0, 0), (2, 2), (2, 2)))  # (N, 32, 32), background 0
        images = resize(images, size)[:, None]
        names = fashion_mnist_captions()
        labels = split.labels[:k]
        return images, lambda idx, rng: [names[labels[i]] for i in idx]
    if dataset == "synthfaces":
        faces, labels = image_sets.synthfaces_cached(n or 12_000, "train", SYNTHFACES_SEED)
        attrs = [synthfaces.decode(dict(zip(synthfaces.ATTRIBUTES, row, strict=True))) for row in labels]
        images = resize(faces, size).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(images), lambda idx, rng: [synthfaces.caption(attrs[i], rng) for i in idx]
    raise ValueError(f"unknown dataset {dataset!r}")


def attribute_regions(dataset: str, size: int, n: int | None = None) -> np.ndarray:
    """float32 (N, 1, size, size) in [0, 1], one map per training_set image: the share of each pixel where the
    attributes REGION_KEYS[dataset] are drawn (synthfaces.attribute_regions, area-averaged to `size`)."""
    if dataset not in REGION_KEYS:
        raise ValueError(f"{dataset} has no attribute regions; only {', '.join(REGION_KEYS)} has")
    masks = image_sets.synthfaces_regions_cached(n or 12_000, "train", SYNTHFACES_SEED, REGION_KEYS[dataset])
    if masks.shape[-1] != size:
        masks = np.stack([np.asarray(Image.fromarray(m.astype(np.float32)).resize((size, size), Image.Resampling.BOX))
                          for m in masks])
    return np.ascontiguousarray(masks, dtype=np.float32)[:, None]


@dataclass(frozen=True)
class NamedCaptions:
    """Captions with what they say: draw(indices, rng) gives the captions the training set's caption function
    gives for the same rng, and int64 (B, len(keys)) targets, the value index of each attribute the caption
    names and -1 where it names none (the text encoder's auxiliary attribute objective)."""

    draw: NamedCaptionFn
    keys: tuple[str, ...]  # the attributes
    sizes: tuple[int, ...]  # values per attribute


def named_captions(dataset: str, n: int | None = None, data_dir: str | None = None) -> NamedCaptions:
    if dataset == "fashion-mnist":
        split = fashion_mnist.load("train", data_dir)
        labels = split.labels[: len(split) if n is None else min(n, len(split))].astype(np.int64)
        names = fashion_mnist_captions()
        return NamedCaptions(lambda idx, rng: ([names[labels[i]] for i in idx], labels[idx][:, None]),
                             ("class",), (len(names),))
    if dataset == "synthfaces":
        _, rows = image_sets.synthfaces_cached(n or 12_000, "train", SYNTHFACES_SEED)
        keys = tuple(synthfaces.ATTRIBUTES)
        attrs = [synthfaces.decode(dict(zip(keys, row, strict=True))) for row in rows]
        codes = np.asarray(rows, dtype=np.int64)

        def draw(idx: np.ndarray, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
            texts, targets = [], np.full((len(idx), len(keys)), -1, dtype=np.int64)
            for j, i in enumerate(idx):
                text, named = synthfaces.caption_named(attrs[i], rng)
                texts.append(text)
                cols = [k for k, key in enumerate(keys) if key in named]
                targets[j, cols] = codes[i, cols]
            return texts, targets

        return NamedCaptions(draw, keys, tuple(len(v) for v in synthfaces.ATTRIBUTES.values()))
    raise ValueError(f"unknown dataset {dataset!r}")


def data_source(dataset: str, n: int) -> str:
    if dataset == "synthfaces":
        return (f"SynthFaces (procedural, genstudio.export.data.synthfaces): {n} faces of the 'train' split "
                f"(held-out attribute combinations excluded), seed {SYNTHFACES_SEED}, a fresh random caption "
                "each time a face is drawn")
    return f"{image_sets.data_source(dataset)}: {n} training images with class captions"
