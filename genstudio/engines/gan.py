"""The GAN engine: seeded samples, truncation toward the mean latent, slerp morphs and small variations.

    gan = GanModel(registry.get("gan-synthfaces"), pool)
    batch = gan.sample(16, seed=0, truncation=0.85)     # GanBatch: z (N, z_dim), w (N, w_dim), images (N, C, H, W)
    images = gan.synthesize(gan.truncate(w, 0.5))      # float32 in [0, 1]
    strip = gan.morph(z_a, z_b, steps=10)              # slerp in z, then map, truncate and render
    near = gan.variations(z, n=8, strength=0.3, seed=1)
    w2 = gan.edit(w, {"smile": 1.5, "glasses": -1.0})   # move along attribute directions, in their own units

A style-based model ships mapping.onnx (z -> w) and synthesis.onnx (w -> image) and the mean latent
w_avg.npy; truncation is w_avg + psi * (w - w_avg) (StyleGAN, https://arxiv.org/abs/1812.04948, section
2.3), so psi = 0 renders the mean face. Attribute directions (directions.npy, described in model.json
extra["directions"]) are unit vectors in W fitted by the export pipeline; one slider unit is each one's
`scale` (for the shipped models, how far the attribute moves w with the others held fixed). Long work is a
generator (`sample_job`). numpy + ONNX Runtime only.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from genstudio.engines.model_folder import ModelFolder
from genstudio.engines.vae import slerp
from genstudio.runtime.jobs import Progress, drive
from genstudio.runtime.registry import ModelEntry


@dataclass
class GanBatch:
    z: np.ndarray  # (N, z_dim) the noise drawn
    w: np.ndarray  # (N, w_dim) after mapping and truncation: what was rendered
    images: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    seed: int = 0
    truncation: float = 1.0


def truncate(w: np.ndarray, w_avg: np.ndarray, psi: float) -> np.ndarray:
    """Pull latents toward the mean: w_avg + psi * (w - w_avg). psi 1 leaves them, 0 gives the mean."""
    w = np.asarray(w, np.float32)
    return (w_avg[None] + np.float32(psi) * (w - w_avg[None])).astype(np.float32)


def seeded_z(n: int, z_dim: int, seed: int) -> np.ndarray:
    """n draws of z ~ N(0, I); the same seed gives the same draws (and the first k of n are those of k)."""
    return np.random.default_rng(seed).standard_normal((n, z_dim)).astype(np.float32)


def nearby(z: np.ndarray, n: int, strength: float, seed: int) -> np.ndarray:
    """n points around z: (z + strength * eps) / sqrt(1 + strength^2), eps ~ N(0, I), which keeps z's
    distribution N(0, I); strength 0 returns z itself n times."""
    z = np.asarray(z, np.float32).reshape(-1)
    eps = np.random.default_rng(seed).standard_normal((n, z.shape[0])).astype(np.float32)
    return ((z[None] + np.float32(strength) * eps) / np.float32(np.sqrt(1.0 + strength ** 2))).astype(np.float32)


# The psi a model folder starts at when its manifest names none. Both shipped GANs keep their precision down to
# psi 0.5 (metrics.truncation_sweep), while recall and coverage fall quickly below 0.85; 0.85 keeps most of the
# variety and calms the backdrops.
DEFAULT_TRUNCATION = 0.85


@dataclass
class GanModel(ModelFolder):
    """A GAN model folder (mapping.onnx + synthesis.onnx + w_avg.npy) opened through a session pool."""

    FAMILY: ClassVar[str] = "gan"
    FAMILY_TITLE: ClassVar[str] = "a GAN"

    @property
    def default_truncation(self) -> float:
        return float(self.entry.manifest.defaults.get("truncation", DEFAULT_TRUNCATION))

    @property
    def z_dim(self) -> int:
        return int(self.extra["z_dim"])

    @property
    def w_dim(self) -> int:
        return int(self.extra["w_dim"])

    @property
    def w_avg(self) -> np.ndarray:
        if "w_avg" not in self._cache:
            w_avg = np.load(self.entry.path("mean_latent")).astype(np.float32).reshape(-1)
            if w_avg.shape != (self.w_dim,):
                raise ValueError(f"{self.name}: mean latent has shape {w_avg.shape}, expected ({self.w_dim},)")
            self._cache["w_avg"] = w_avg
        return self._cache["w_avg"]

    def _run(self, role: str, name: str, x: np.ndarray) -> np.ndarray:
        sess = self.pool.get(self.entry.path(role), root=self.entry.folder)
        x = np.ascontiguousarray(x, np.float32)
        return np.concatenate([sess.run(None, {name: x[i:i + self.batch]})[0] for i in range(0, len(x), self.batch)])

    # -- the graphs --------------------------------------------------------------------------------------------
    def map(self, z: np.ndarray) -> np.ndarray:
        """z (N, z_dim) -> w (N, w_dim) through mapping.onnx."""
        z = np.atleast_2d(np.asarray(z, np.float32))
        if z.shape[1] != self.z_dim:
            raise ValueError(f"{self.name} takes z of {self.z_dim} dimensions, got {z.shape[1]}")
        if not len(z):
            return np.zeros((0, self.w_dim), np.float32)
        return self._run("mapping", "z", z)

    def synthesize(self, w: np.ndarray) -> np.ndarray:
        """w (N, w_dim) -> images (N, C, H, W) float32 in [0, 1] through synthesis.onnx."""
        w = np.atleast_2d(np.asarray(w, np.float32))
        if w.shape[1] != self.w_dim:
            raise ValueError(f"{self.name} takes w of {self.w_dim} dimensions, got {w.shape[1]}")
        if not len(w):
            return np.zeros((0, *self.image_shape), np.float32)
        return self._run("synthesis", "w", w)

    @property
    def directions(self) -> dict[str, tuple[np.ndarray, float]]:
        """name -> (unit vector in W, one slider unit); empty when the folder ships none."""
        if "directions" not in self._cache:
            found: dict[str, tuple[np.ndarray, float]] = {}
            info = self.extra.get("directions") or []
            if info and self.entry.manifest.files_with_role("directions"):
                vectors = np.load(self.entry.path("directions")).astype(np.float32)
                if vectors.ndim != 2 or vectors.shape[1] != self.w_dim or len(vectors) < len(info):
                    raise ValueError(f"{self.name}: directions.npy has shape {vectors.shape}, expected "
                                     f"({len(info)}, {self.w_dim})")
                found = {d["name"]: (vectors[int(d["index"])], float(d["scale"])) for d in info}
            self._cache["directions"] = found
        return self._cache["directions"]

    def edit(self, w: np.ndarray, amounts: Mapping[str, float]) -> np.ndarray:
        """w moved along the named directions by amount x scale each; unknown names raise KeyError."""
        w = np.array(np.atleast_2d(w), np.float32)
        known = self.directions
        for name, amount in amounts.items():
            if name not in known:
                raise KeyError(f"{self.name} has no direction {name!r}; it has {', '.join(known) or 'none'}")
            unit, scale = known[name]
            w += np.float32(amount * scale) * unit[None]
        return w

    def truncate(self, w: np.ndarray, psi: float) -> np.ndarray:
        return truncate(w, self.w_avg, psi)

    def render(self, z: np.ndarray, truncation: float = 1.0, edits: Mapping[str, float] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(w after truncation and the attribute edits, images) for latents z."""
        w = self.truncate(self.map(z), truncation)
        if edits:
            w = self.edit(w, edits)
        return w, self.synthesize(w)

    # -- what the tab and the CLI call ----------------------------------------------------------------------------
    def sample_job(self, n: int, seed: int = 0, truncation: float = 1.0) -> Generator[Progress, None, GanBatch]:
        """n samples in chunks of `batch`; each chunk yields a Progress whose preview is the images so far."""
        if n < 0:
            raise ValueError("n must be at least 0")
        z = seeded_z(n, self.z_dim, seed)
        ws, images = [], []
        for i in range(0, n, self.batch):
            w, img = self.render(z[i:i + self.batch], truncation)
            ws.append(w)
            images.append(img)
            yield Progress(min(i + self.batch, n), n, f"{min(i + self.batch, n)}/{n} samples", preview=img)
        w_all = np.concatenate(ws) if ws else np.zeros((0, self.w_dim), np.float32)
        img_all = np.concatenate(images) if images else np.zeros((0, *self.image_shape), np.float32)
        return GanBatch(z, w_all, img_all, seed, float(truncation))

    def sample(self, n: int, seed: int = 0, truncation: float = 1.0) -> GanBatch:
        return drive(self.sample_job(n, seed, truncation))

    def mean_image(self) -> np.ndarray:
        """The image of the mean latent (1, C, H, W): what truncation 0 gives for every z."""
        return self.synthesize(self.w_avg[None])

    def morph(self, z_a: np.ndarray, z_b: np.ndarray, steps: int = 10, truncation: float = 1.0,
              edits: Mapping[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(z path (steps, z_dim), images): slerp from z_a to z_b inclusive (z ~ N(0, I) lives near a sphere),
        every frame with the same attribute edits."""
        if steps < 2:
            raise ValueError("a morph needs at least 2 steps")
        z_a, z_b = np.asarray(z_a, np.float32).reshape(-1), np.asarray(z_b, np.float32).reshape(-1)
        path = slerp(z_a, z_b, np.linspace(0.0, 1.0, steps))
        path[0], path[-1] = z_a, z_b  # exact endpoints
        return path, self.render(path, truncation, edits)[1]

    def variations(self, z: np.ndarray, n: int = 8, strength: float = 0.3, seed: int = 0, truncation: float = 1.0
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(n latents near z, their images): see `nearby`."""
        zs = nearby(z, n, strength, seed)
        return zs, self.render(zs, truncation)[1]


def is_gan(entry: ModelEntry) -> bool:
    return entry.ready and entry.family == "gan"
