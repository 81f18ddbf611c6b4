"""Fashion-MNIST from its idx files (gzip or plain): images, labels, class names and captions.

    from genstudio.export.data import fashion_mnist
    train = fashion_mnist.load("train")             # Debian's folder, or load("test", folder=...)
    train.images                                    # uint8 (60000, 28, 28), 0 = background
    train.labels                                    # uint8 (60000,)
    fashion_mnist.caption(9)                        # "a photo of an ankle boot"

The files come from Debian (`apt-get install dataset-fashion-mnist`, installed under
/usr/share/datasets/fashion-mnist) or any folder holding the four files of
https://github.com/zalandoresearch/fashion-mnist; the GENSTUDIO_FASHION_MNIST variable names one too.
Xiao, Rasul & Vollgraf 2017, https://arxiv.org/abs/1708.07747 (MIT licence).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # where dataset-fashion-mnist installs the files
ENV_VAR = "GENSTUDIO_FASHION_MNIST"  # a folder to use instead of Debian's
LICENSE = "MIT (Zalando SE)"
SOURCE = "Fashion-MNIST, Xiao et al. 2017, https://github.com/zalandoresearch/fashion-mnist"

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")  # the dataset's own label names, by index
_CAPTION_NOUNS = ("T-shirt", "pair of trousers", "pullover", "dress", "coat",
                  "sandal", "shirt", "sneaker", "bag", "ankle boot")  # how a caption names each class

_FILES = {  # split -> (images stem, labels stem); each may carry a .gz suffix
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class DatasetMissing(FileNotFoundError):
    """The files are not where we looked; the message says how to get them."""


@dataclass(frozen=True)
class Split:
    name: str  # "train" or "test"
    images: np.ndarray  # uint8 (N, 28, 28), ink is high, background 0
    labels: np.ndarray  # uint8 (N,), indices into CLASS_NAMES
    folder: Path  # where the files were read from

    def __len__(self) -> int:
        return len(self.labels)

    def captions(self) -> list[str]:
        return [caption(int(k)) for k in self.labels]


def read_idx(path: Path) -> np.ndarray:
    """One idx file (optionally gzip-compressed) as a numpy array in native byte order."""
    path = Path(path)
    with path.open("rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path.name} is not an idx file (bad magic number {raw[:4].hex()})")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path.name}: header says shape {shape} ({expected} bytes), the file holds {len(raw)}")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def find_folder(folder: Path | str | None = None) -> Path:
    """The folder given, else $GENSTUDIO_FASHION_MNIST, else Debian's; raises DatasetMissing with the fix."""
    candidates = [Path(folder)] if folder else []
    if not folder and os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    if not folder:
        candidates.append(DEBIAN_DIR)
    for c in candidates:
        if _locate(c, _FILES["train"][0]) or _locate(c, _FILES["test"][0]):
            return c
    looked = ", ".join(str(c) for c in candidates)
    raise DatasetMissing(f"no Fashion-MNIST idx files in {looked}; install them with "
                         "`apt-get install dataset-fashion-mnist` or pass the folder that holds them")


def _locate(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load(split: str = "train", folder: Path | str | None = None) -> Split:
    """The train (60,000) or test (10,000) split."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = find_folder(folder)
    found = [_locate(root, stem) for stem in _FILES[split]]
    if not all(found):
        raise DatasetMissing(f"{root} lacks the {split} split ({' and '.join(_FILES[split])}, plain or .gz)")
    images, labels = read_idx(found[0]), read_idx(found[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{root}: {split} images {images.shape} and labels {labels.shape} do not match")
    if labels.size and int(labels.max()) >= len(CLASS_NAMES):
        raise ValueError(f"{root}: label {int(labels.max())} is outside the 10 classes")
    return Split(split, images.astype(np.uint8, copy=False), labels.astype(np.uint8, copy=False), root)


def caption(label: int) -> str:
    """A short English caption for a class: caption(9) == "a photo of an ankle boot"."""
    noun = _CAPTION_NOUNS[label]
    article = "an" if noun[0].lower() in "aeiou" else "a"
    return f"a photo of {article} {noun}"
