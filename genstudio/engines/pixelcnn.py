"""The autoregressive image engine: PixelCNN samples drawn pixel by pixel through ONNX Runtime, and exact likelihoods.

    model = PixelCnnModel(registry.get("pixelcnn-fashion-mnist"), pool)
    images = drive(model.sample_job(16, seed=0))                # (16, 1, 28, 28) float in [0, 1], unconditional
    images = model.sample(10, seed=0, class_id="all")           # one of each class, round robin
    images = model.sample(4, seed=0, class_id="Dress", temperature=0.9)
    result = drive(model.bits_per_dim(test_u8))                 # exact -log2 p(x) / 784, 8-bit pixels

The graph (logits.onnx) maps images x (N, 1, H, 28) = pixel / 255 and a class (N,) int64 to logits
(N, 256, H, 28): for every pixel the distribution of its 8-bit value given the pixels before it in raster
order (rows top to bottom, each left to right). Sampling runs it once per pixel, 784 times, over the whole
batch, and draws each pixel from its softmax. The only shortcut is exact: the logits of row r depend on rows
r - receptive_rows .. r alone, so each run sees that window of rows instead of the whole image (same logits,
fewer rows computed); nothing is cached between runs. The class index n_classes (10) means "no class".

numpy and ONNX Runtime only: no torch, no Qt. Long work is a generator (genstudio.runtime.jobs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from genstudio.engines.model_folder import ModelFolder
from genstudio.runtime.jobs import Progress, drive
from genstudio.runtime.registry import ModelEntry

ClassChoice = int | str | Sequence[int] | None  # None: no class; "all": round robin; an index or a class name


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def log_softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def draw(logits: np.ndarray, u: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """One value per row of logits (N, levels) by inverting the softmax's CDF at uniforms u (N,) in [0, 1)."""
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    cdf = np.cumsum(p, axis=1)
    k = (cdf < (u * cdf[:, -1])[:, None]).sum(axis=1)
    return np.minimum(k, logits.shape[1] - 1)


@dataclass
class PixelCnnModel(ModelFolder):
    """An autoregressive image model folder (logits.onnx) opened through a session pool."""

    FAMILY: ClassVar[str] = "autoregressive"
    FAMILY_TITLE: ClassVar[str] = "an autoregressive image model"
    batch: int = 100  # images per session.run when measuring likelihoods (the logits are 256 x 784 per image)
    sample_batch: int = 16  # images sampled together (one run per pixel covers them); 16 was the fastest per image on one CPU thread
    window: bool = True  # run each pixel on the rows that can reach it only (exact; False: rows 0..r)

    # -- what the manifest says ---------------------------------------------------------------------------
    @property
    def levels(self) -> int:
        return int(self.extra.get("levels", 256))

    @property
    def n_classes(self) -> int:
        return int(self.extra.get("n_classes", 0))

    @property
    def null_class(self) -> int:
        return int(self.extra.get("null_class", self.n_classes))

    @property
    def class_names(self) -> list[str]:
        return [str(n) for n in self.extra.get("class_names", [])]

    @property
    def receptive_rows(self) -> int:
        """Rows above a pixel that can change its logits (the window is this many rows plus its own)."""
        return int(self.extra.get("receptive_rows", self.image_shape[1]))

    # -- classes ------------------------------------------------------------------------------------------
    def resolve_class(self, value: int | str | None) -> int | None:
        """A class index from an index, its digits or its name ("Dress", "ankle boot"); None stays None."""
        if value is None or (isinstance(value, str) and _normalise(value) in ("", "none", "unconditional")):
            return None
        if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
            names = {_normalise(n): i for i, n in enumerate(self.class_names)}
            key = _normalise(value)
            if key not in names:
                raise ValueError(f"{self.name} has no class {value!r}; classes: {', '.join(self.class_names)}")
            return names[key]
        k = int(value)
        if not 0 <= k < self.n_classes:
            raise ValueError(f"class index {k} is outside 0..{self.n_classes - 1}")
        return k

    def class_ids(self, n: int, class_id: ClassChoice = None) -> np.ndarray:
        """(n,) int64 class indices: None -> the null class (unconditional), "all" -> 0, 1, ..., 9, 0, ...
        (round robin), an index or a name -> that class for every image, a sequence -> one per image."""
        if isinstance(class_id, str) and _normalise(class_id) == "all":
            return (np.arange(n) % self.n_classes).astype(np.int64)
        if isinstance(class_id, np.integer):
            class_id = int(class_id)
        if class_id is None or isinstance(class_id, (int, str)):
            k = self.resolve_class(class_id)
            return np.full(n, self.null_class if k is None else k, np.int64)
        ids = np.asarray(class_id, np.int64).reshape(-1)
        if len(ids) != n:
            raise ValueError(f"{len(ids)} class ids for {n} images")
        if ids.size and (ids.min() < 0 or ids.max() > self.null_class):
            raise ValueError(f"class ids must lie in 0..{self.null_class} ({self.null_class}: no class)")
        return ids

    # -- the graph ----------------------------------------------------------------------------------------
    def logits(self, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Logits (N, levels, H, W) for images x (N, 1, H, W) = pixel / 255 and class ids (N,); one run per batch."""
        sess = self._session("logits")
        x = np.ascontiguousarray(x, np.float32)
        classes = np.ascontiguousarray(classes, np.int64)
        outs = [sess.run(["logits"], {"x": x[i:i + self.batch], "class": classes[i:i + self.batch]})[0]
                for i in range(0, len(x), self.batch)]
        return np.concatenate(outs) if outs else np.zeros((0, self.levels, *x.shape[2:]), np.float32)

    def window_start(self, row: int) -> int:
        """The first row the run for a pixel in `row` needs."""
        return max(0, row - self.receptive_rows) if self.window else 0

    # -- sampling -----------------------------------------------------------------------------------------
    def sample_job(self, n: int, seed: int = 0, class_id: ClassChoice = None, temperature: float = 1.0
                   ) -> Generator[Progress, None, np.ndarray]:
        """n images (n, 1, 28, 28) float32 in [0, 1], drawn pixel by pixel: one session run per pixel over
        the whole batch (784 per batch of up to `sample_batch`). Yields after every row with all n partial
        images as preview (pixels not drawn yet are black). The same seed gives the same images, and the
        first k of n are those of k (each image's uniforms come from its own row of one (n, 784) draw)."""
        if n < 0:
            raise ValueError("n must be at least 0")
        if not temperature > 0:
            raise ValueError("temperature must be positive")
        c, h, w = self.image_shape
        classes = self.class_ids(n, class_id)
        u = np.random.default_rng(seed).random((n, h * w))  # one uniform per pixel, raster order
        images = np.zeros((n, c, h, w), np.float32)
        sess = self._session("logits")
        chunks = list(range(0, n, self.sample_batch))
        total = len(chunks) * h
        start = time.perf_counter()
        for k, i in enumerate(chunks):
            x = images[i:i + self.sample_batch]  # a view: drawn values land in `images`
            cls = classes[i:i + self.sample_batch]
            for r in range(h):
                s = self.window_start(r)
                for col in range(w):
                    feed = {"x": np.ascontiguousarray(x[:, :, s:r + 1]), "class": cls}
                    logits = sess.run(["logits"], feed)[0]  # (B, levels, r + 1 - s, W)
                    values = draw(logits[:, :, r - s, col], u[i:i + len(x), r * w + col], temperature)
                    x[:, 0, r, col] = values.astype(np.float32) / (self.levels - 1)
                where = f"row {r + 1}/{h}" + (f", batch {k + 1}/{len(chunks)}" if len(chunks) > 1 else "")
                yield Progress(k * h + r + 1, total, f"{where}, {time.perf_counter() - start:.1f} s",
                               preview=images.copy())
        return images

    def sample(self, n: int, seed: int = 0, class_id: ClassChoice = None, temperature: float = 1.0) -> np.ndarray:
        return drive(self.sample_job(n, seed, class_id, temperature))

    # -- likelihood ---------------------------------------------------------------------------------------
    def pixel_values(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W) / (N, 1, H, W), or float in [0, 1], to int64 pixel values (N, 1, H, W)."""
        a = np.asarray(images)
        if a.ndim == 3:
            a = a[:, None]
        if a.ndim != 4 or tuple(a.shape[1:]) != self.image_shape:
            raise ValueError(f"{self.name} models images of shape {self.image_shape}, got {a.shape}")
        if a.dtype == np.uint8:
            return a.astype(np.int64)
        return np.clip(np.rint(a.astype(np.float64) * (self.levels - 1)), 0, self.levels - 1).astype(np.int64)

    def log_likelihood(self, images: np.ndarray, classes: ClassChoice = None) -> np.ndarray:
        """log p(image | class) in nats per image (N,), exact: the sum over pixels of the log-softmax at the
        pixel's value, from one run per batch. classes: as `class_ids` (None: the unconditional model)."""
        u = self.pixel_values(images)
        cls = self.class_ids(len(u), classes)
        out = np.zeros(len(u), np.float64)
        for i in range(0, len(u), self.batch):
            part = u[i:i + self.batch]
            lp = log_softmax(self.logits(part.astype(np.float32) / (self.levels - 1), cls[i:i + self.batch]))
            picked = np.take_along_axis(lp, part, axis=1)  # (B, 1, H, W): log p of each pixel's value
            out[i:i + self.batch] = picked.reshape(len(part), -1).sum(1, dtype=np.float64)
        return out

    def bits_per_dim(self, images: np.ndarray, classes: ClassChoice = None, *, batch: int | None = None
                     ) -> Generator[Progress, None, dict]:
        """Mean -log2 p(x | class) / D over the images (D = 784 8-bit pixels), its standard error, and the
        per-image values; one yield per batch."""
        n = len(images)
        step = batch or self.batch
        cls = self.class_ids(n, classes)
        start = time.perf_counter()
        parts = []
        total = max(1, math.ceil(n / step))
        for k, i in enumerate(range(0, n, step)):
            parts.append(self.log_likelihood(images[i:i + step], cls[i:i + step]))
            yield Progress(k + 1, total, f"log-likelihood {min(i + step, n)}/{n}")
        lp = np.concatenate(parts) if parts else np.zeros(0)
        dim = int(np.prod(self.image_shape))
        bpd = -lp / (dim * math.log(2.0))
        return {"bits_per_dim": float(bpd.mean()) if n else float("nan"),
                "bits_per_dim_stderr": float(bpd.std() / math.sqrt(max(n, 1))),
                "n_images": n, "per_image": bpd, "seconds": round(time.perf_counter() - start, 3)}


def is_pixelcnn(entry: ModelEntry) -> bool:
    return entry.ready and entry.family == "autoregressive"
