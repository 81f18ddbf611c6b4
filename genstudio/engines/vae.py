"""The VAE engine: encode, decode, prior samples, interpolation, latent arithmetic, map planes, KL and the ELBO.

    vae = VaeModel(registry.get("vae-fashion-mnist"), pool)
    mu, logvar = vae.encode(images)                 # any image size/layout; (N, latent) each
    images = vae.decode(z)                          # (N, C, H, W) float in [0, 1]
    z, images = vae.sample(16, seed=0)              # from the prior N(0, I); same seed, same images
    path = interpolate(a, b, 12, "slerp")           # (12, latent), endpoints included
    plane = vae.default_plane()                     # the latent plane (2-D) or the codes' top-2 PCs
    metrics = drive(vae.evaluate(test_u8))          # recon error, ELBO, bits/dim, KL per dimension

numpy and ONNX Runtime only: no torch, no Qt. Long work is a generator (genstudio.runtime.jobs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from genstudio.engines.evaluate import fit_images
from genstudio.engines.model_folder import ModelFolder
from genstudio.runtime.jobs import Progress
from genstudio.runtime.registry import ModelEntry


# -- latent-space helpers (pure numpy) ------------------------------------------------------------------
def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985) between vectors a and b at t in [0, 1]; linear when parallel."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.atleast_1d(np.asarray(t, np.float64))[:, None]
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-12 or nb < 1e-12:
        return ((1 - t) * a + t * b).astype(np.float32)
    cos = np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0)
    omega = math.acos(cos)
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    s = math.sin(omega)
    return (np.sin((1 - t) * omega) / s * a + np.sin(t * omega) / s * b).astype(np.float32)


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, mode: str = "linear") -> np.ndarray:
    """(steps, latent) points from a to b inclusive; mode "linear" or "slerp"."""
    if steps < 2:
        raise ValueError("an interpolation needs at least 2 steps")
    t = np.linspace(0.0, 1.0, steps)
    if mode == "slerp":
        out = slerp(a, b, t)
        out[0], out[-1] = a, b  # exact endpoints
        return out
    if mode != "linear":
        raise ValueError(f"mode must be 'linear' or 'slerp', not {mode!r}")
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return ((1 - t)[:, None] * a + t[:, None] * b).astype(np.float32)


def arithmetic(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """A - B + C: the change from B to A applied to C ("smiling woman - woman + man")."""
    return (np.asarray(a, np.float32) - np.asarray(b, np.float32) + np.asarray(c, np.float32)).astype(np.float32)


def kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(q(z|x) || N(0, I)) per example and dimension, nats: (N, latent), never negative."""
    mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    return np.maximum(0.5 * (mu ** 2 + np.exp(logvar) - 1.0 - logvar), 0.0)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def discretized_logistic_logp(u8: np.ndarray, loc: np.ndarray, log_scale: np.ndarray) -> np.ndarray:
    """log p(u | loc, s) per pixel for 8-bit values (the numpy twin of export.vae.model's, same formula)."""
    x = np.asarray(u8, np.float64) / 255.0
    loc, log_scale = np.asarray(loc, np.float64), np.asarray(log_scale, np.float64)
    half = 0.5 / 255.0
    inv_s = np.exp(-log_scale)
    plus, minus = (x - loc + half) * inv_s, (x - loc - half) * inv_s
    cdf_delta = 1.0 / (1.0 + np.exp(-plus)) - 1.0 / (1.0 + np.exp(-minus))
    mid = (x - loc) * inv_s
    log_pdf_mid = mid - log_scale - 2.0 * softplus(mid)
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = np.where(cdf_delta > 1e-5, np.log(np.maximum(cdf_delta, 1e-12)), log_pdf_mid + math.log(2 * half))
    lower, upper = -softplus(-plus), -softplus(minus)
    return np.where(x * 255.0 < 0.5, lower, np.where(x * 255.0 > 254.5, upper, interior))


@dataclass
class Plane:
    """A 2-D plane in latent space: z = centre + u * axes[0] + v * axes[1]."""

    centre: np.ndarray  # (latent,)
    axes: np.ndarray  # (2, latent), orthonormal
    names: tuple[str, str] = ("z1", "z2")  # axis labels for the map
    extent: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0)  # umin, umax, vmin, vmax shown

    def to_latent(self, uv: np.ndarray) -> np.ndarray:
        uv = np.atleast_2d(np.asarray(uv, np.float32))
        return (self.centre[None] + uv @ self.axes).astype(np.float32)  # (N, latent)

    def project(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(z, np.float32))
        return ((z - self.centre[None]) @ self.axes.T).astype(np.float32)  # (N, 2)

    def grid(self, n: int) -> np.ndarray:
        """(n*n, 2) plane coordinates of an n x n grid of cell centres, row 0 at the top (v max)."""
        u0, u1, v0, v1 = self.extent
        us = u0 + (np.arange(n) + 0.5) * (u1 - u0) / n
        vs = v1 - (np.arange(n) + 0.5) * (v1 - v0) / n
        gu, gv = np.meshgrid(us, vs)
        return np.stack([gu.ravel(), gv.ravel()], 1).astype(np.float32)


def _extent(uv: np.ndarray, minimum: float) -> tuple[float, float, float, float]:
    """A square-ish window holding 99% of the projected codes (and at least +-minimum)."""
    if len(uv) == 0:
        return (-minimum, minimum, -minimum, minimum)
    lo, hi = np.percentile(uv, 0.5, axis=0), np.percentile(uv, 99.5, axis=0)
    r = max(float(np.abs(np.concatenate([lo, hi])).max()) * 1.1, minimum)
    return (-r, r, -r, r)


def pca_plane(codes: np.ndarray, centre: np.ndarray | None = None) -> tuple[Plane, np.ndarray]:
    """The plane of the codes' first two principal components (through their mean) and the explained shares."""
    codes = np.asarray(codes, np.float64)
    mean = codes.mean(0) if centre is None else np.asarray(centre, np.float64)
    _, s, vt = np.linalg.svd(codes - codes.mean(0), full_matrices=False)
    var = s ** 2
    explained = var / max(var.sum(), 1e-12)
    axes = vt[:2].astype(np.float32)
    plane = Plane(mean.astype(np.float32), axes, ("PC 1", "PC 2"))
    plane.extent = _extent(plane.project(codes), 1.0)
    return plane, explained.astype(np.float32)


def axis_plane(codes: np.ndarray, i: int, j: int, centre: np.ndarray | None = None) -> Plane:
    """The plane spanned by latent axes i and j through the codes' mean (or `centre`)."""
    codes = np.asarray(codes, np.float32)
    d = codes.shape[1]
    if not (0 <= i < d and 0 <= j < d) or i == j:
        raise ValueError(f"axes must be two different indices below {d}, got {i} and {j}")
    axes = np.zeros((2, d), np.float32)
    axes[0, i] = axes[1, j] = 1.0
    c = codes.mean(0) if centre is None else np.asarray(centre, np.float32)
    plane = Plane(c.astype(np.float32), axes, (f"z{i + 1}", f"z{j + 1}"))
    plane.extent = _extent(plane.project(codes), 1.0)
    return plane


# -- the model --------------------------------------------------------------------------------------------
@dataclass
class HeldOut:
    codes: np.ndarray  # (N, latent) posterior means of the held-out images
    labels: np.ndarray  # (N, heads) class / attribute indices
    heads: dict[str, list[str]]  # label column -> class names
    images: np.ndarray | None  # uint8 images of the first few, (M, H, W) or (M, H, W, 3), for "encode a sample"


@dataclass
class VaeModel(ModelFolder):
    """A VAE model folder (encoder.onnx + decoder.onnx + held-out codes) opened through a session pool."""

    FAMILY: ClassVar[str] = "vae"
    FAMILY_TITLE: ClassVar[str] = "a VAE"
    batch: int = 512  # images per session.run

    @property
    def latent_dim(self) -> int:
        return int(self.extra["latent_dim"])

    # -- encode / decode --------------------------------------------------------------------------------
    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Any images to the encoder's float (N, C, H, W) in [0, 1]."""
        c, h, _ = self.image_shape
        return fit_images(images, h, c, str(self.extra.get("fit", "resize")))

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and log-variance (N, latent) of the images."""
        x = self.prepare(images)
        sess = self._session("encoder")
        outs = [sess.run(["mu", "logvar"], {"x": x[i:i + self.batch]}) for i in range(0, len(x), self.batch)]
        if not outs:
            d = self.latent_dim
            return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Images (N, C, H, W) float32 in [0, 1] for latent points (N, latent)."""
        return self.decode_with_loc(z)[0]

    def decode_with_loc(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = np.ascontiguousarray(np.atleast_2d(z), np.float32)
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"{self.name} has {self.latent_dim} latent dimensions, got points of {z.shape[1]}")
        sess = self._session("decoder")
        outs = [sess.run(["image", "loc"], {"z": z[i:i + self.batch]}) for i in range(0, len(z), self.batch)]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def reconstruct(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(posterior means, their decodings): the deterministic reconstruction the tab shows."""
        mu, _ = self.encode(images)
        return mu, self.decode(mu)

    def reconstruction_error(self, images: np.ndarray) -> np.ndarray:
        """Per-image mean squared error between the images and their reconstructions, both in [0, 1]."""
        x = self.prepare(images)
        recon = self.decode(self.encode(x)[0]) if len(x) else x
        return ((recon - x) ** 2).reshape(len(x), -1).mean(1)

    def prior(self, n: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """n latent points from N(0, temperature^2 I); the same seed gives the same points."""
        rng = np.random.default_rng(seed)
        return (rng.standard_normal((n, self.latent_dim)) * temperature).astype(np.float32)

    def sample(self, n: int, seed: int = 0, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        z = self.prior(n, seed, temperature)
        return z, self.decode(z) if n else np.zeros((0, *self.image_shape), np.float32)

    # -- shipped data ------------------------------------------------------------------------------------
    def heldout(self) -> HeldOut:
        if "heldout" not in self._cache:
            codes = np.load(self.entry.path("heldout_codes")).astype(np.float32)
            if codes.ndim != 2 or codes.shape[1] != self.latent_dim:  # else the map fails later, in the tab
                raise ValueError(f"{self.name}: held-out codes have shape {codes.shape}, expected (N, {self.latent_dim})")
            labels = np.load(self.entry.path("heldout_labels"))
            images = None
            if self.entry.manifest.files_with_role("heldout_images"):
                with np.load(self.entry.path("heldout_images")) as z:
                    images = z["images"]
            heads = {k: list(v) for k, v in self.extra.get("heads", {}).items()}
            self._cache["heldout"] = HeldOut(codes, labels.reshape(len(codes), -1), heads, images)
        return self._cache["heldout"]

    def log_scale(self) -> np.ndarray:
        if "log_scale" not in self._cache:
            self._cache["log_scale"] = np.load(self.entry.path("likelihood_scale")).astype(np.float32)
        return self._cache["log_scale"]

    def kl_by_dimension(self) -> np.ndarray:
        """Mean KL per latent dimension over the held-out set (nats), as recorded at export (or recomputed)."""
        recorded = self.entry.manifest.metrics.get("kl_per_dim_nats")
        if recorded and len(recorded) == self.latent_dim:
            return np.asarray(recorded, np.float32)
        return np.zeros(self.latent_dim, np.float32)

    def default_plane(self) -> tuple[Plane, np.ndarray | None]:
        """The latent plane itself for a 2-D model, else the held-out codes' top-2 principal components."""
        codes = self.heldout().codes
        if self.latent_dim == 2:
            plane = Plane(np.zeros(2, np.float32), np.eye(2, dtype=np.float32), ("z1", "z2"))
            plane.extent = _extent(codes, 3.0)
            return plane, None
        return pca_plane(codes)

    # -- quality ---------------------------------------------------------------------------------------------
    def elbo(self, images_u8: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
        """Per image: log-likelihood of one posterior sample, KL per dimension, squared error of the mean."""
        u8 = np.asarray(images_u8)
        x = self.prepare(u8)  # (N, C, H, W) in [0, 1]
        target = np.rint(x * 255.0)
        mu, logvar = self.encode(x)
        z = mu + np.random.default_rng(seed).standard_normal(mu.shape).astype(np.float32) * np.exp(0.5 * logvar)
        _, loc = self.decode_with_loc(z)
        logp = discretized_logistic_logp(target, loc, self.log_scale()[None]).reshape(len(x), -1).sum(1)
        recon = self.decode(mu)
        return {"log_likelihood": logp, "kl": kl_per_dim(mu, logvar), "sq_error": ((recon - x) ** 2).reshape(len(x), -1).mean(1)}

    def evaluate(self, images_u8: np.ndarray, *, batch: int = 1000, seed: int = 0) -> Generator[Progress, None, dict]:
        """Reconstruction error, ELBO (nats per image), bits/dim and KL per dimension over the images."""
        n = len(images_u8)
        parts: list[dict[str, np.ndarray]] = []
        start = time.perf_counter()
        steps = max(1, math.ceil(n / batch))
        for k, i in enumerate(range(0, n, batch)):
            parts.append(self.elbo(images_u8[i:i + batch], seed=seed + k))
            yield Progress(k + 1, steps, f"ELBO {k + 1}/{steps}")
        logp = np.concatenate([p["log_likelihood"] for p in parts])
        kl = np.concatenate([p["kl"] for p in parts])
        se = np.concatenate([p["sq_error"] for p in parts])
        dim = int(np.prod(self.image_shape))
        elbo = logp - kl.sum(1)
        mse = float(se.mean())
        return {
            "n_images": n,
            "reconstruction_mse": mse,
            "reconstruction_psnr_db": float(10 * math.log10(1.0 / max(mse, 1e-12))),
            "elbo_nats": float(elbo.mean()),
            "elbo_nats_stderr": float(elbo.std() / math.sqrt(max(n, 1))),
            "bits_per_dim": float(-elbo.mean() / (dim * math.log(2.0))),
            "reconstruction_nats": float(-logp.mean()),
            "kl_nats": float(kl.sum(1).mean()),
            "kl_per_dim_nats": kl.mean(0).round(5).tolist(),
            "active_dims": int((kl.mean(0) > 0.01).sum()),
            "seconds": round(time.perf_counter() - start, 3),
        }


def is_vae(entry: ModelEntry) -> bool:
    return entry.ready and entry.family == "vae"
