"""Sample-quality metrics on evaluator features: Frechet distance, k-NN precision/recall/coverage, accuracy.

    ev = Evaluator.open(registry, "fashion-mnist", pool)   # the shipped eval-fashion-mnist model
    out = ev.run(images)                                   # features (N, 128), logits per head
    fid = ev.fid(images)                                   # against the test-set statistics it ships
    pr = precision_recall(ev.reference_features(), out.features, k=5)

Images may be uint8 or float in [0, 1], (N, H, W), (N, H, W, C) or (N, C, H, W), of any size: they are
fitted to the evaluator's input by `fit_images` (grey <-> RGB, centre crop/pad or antialiased resize).
numpy and ONNX Runtime only; the same code serves the studio, the CLI and the export pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genstudio.runtime.registry import ModelEntry, Registry
from genstudio.runtime.sessions import SessionPool

DATASETS = ("fashion-mnist", "synthfaces")
MODEL_NAMES = {"fashion-mnist": "eval-fashion-mnist", "synthfaces": "eval-synthfaces"}


# -- images -------------------------------------------------------------------------------------------
def resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of a triangle (bilinear) filter, widened when shrinking (antialiased, like PIL)."""
    scale = n_in / n_out
    support = max(scale, 1.0)  # filter half-width in input pixels
    centres = (np.arange(n_out) + 0.5) * scale - 0.5  # output pixel centres in input coordinates
    taps = np.arange(n_in)[None, :] - centres[:, None]
    w = np.clip(1.0 - np.abs(taps) / support, 0.0, None)
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """float (N, C, H, W) to (N, C, size, size) with separable antialiased bilinear filtering."""
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    rows, cols = resample_matrix(h, size), resample_matrix(w, size)
    return np.einsum("ih,nchw,jw->ncij", rows, x, cols, optimize=True).astype(np.float32)


def centre_fit(x: np.ndarray, size: int) -> np.ndarray:
    """float (N, C, H, W) to (N, C, size, size): centre crop when larger, zero padding when smaller."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, size, size), np.float32)
    sh, sw = min(h, size), min(w, size)
    y0, x0 = (h - sh) // 2, (w - sw) // 2  # in the input
    y1, x1 = (size - sh) // 2, (size - sw) // 2  # in the output
    out[:, :, y1:y1 + sh, x1:x1 + sw] = x[:, :, y0:y0 + sh, x0:x0 + sw]
    return out


def to_nchw_float(images: np.ndarray) -> np.ndarray:
    """uint8 (0-255) or float ([0, 1]) images of rank 3 or 4, channels first or last, to float32 (N, C, H, W)."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]  # (N, H, W): greyscale
    if x.ndim != 4:
        raise ValueError(f"expected images of rank 3 or 4, got shape {x.shape}")
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)[:, :3]  # (N, C, H, W)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32)


def fit_images(images: np.ndarray, size: int, channels: int, mode: str = "resize") -> np.ndarray:
    """Images to float32 (N, channels, size, size) in [0, 1]. mode: "resize" (antialiased) or "centre"
    (crop or pad around the centre: the inverse of padding 28x28 Fashion-MNIST to 32x32)."""
    x = to_nchw_float(images)
    if x.shape[1] != channels:
        x = x.mean(1, keepdims=True) if channels == 1 else np.repeat(x[:, :1], channels, axis=1)
    if mode == "centre":
        x = centre_fit(x, size)
    elif mode == "resize":
        x = resize(x, size)
    else:
        raise ValueError(f"mode must be 'resize' or 'centre', not {mode!r}")
    return np.clip(x, 0.0, 1.0)


# -- Frechet distance -----------------------------------------------------------------------------------
def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need features (N >= 2, D), got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues clipped)."""
    vals, vecs = np.linalg.eigh((a + a.T) / 2.0)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    tr((S1 S2)^(1/2)) = tr((A S2 A)^(1/2)) with A = S1^(1/2): the eigenvalues of the symmetric product
    A S2 A, so no scipy.linalg.sqrtm and no complex round-off."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    a = _sqrt_psd(s1)
    m = a @ s2 @ a
    vals = np.linalg.eigvalsh((m + m.T) / 2.0)
    tr_sqrt = float(np.sqrt(np.clip(vals, 0.0, None)).sum())
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    return max(d, 0.0)


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """Frechet distance between two feature sets (N1, D) and (N2, D)."""
    return frechet_distance(*feature_stats(f1), *feature_stats(f2))


# -- k-NN precision, recall, density, coverage ----------------------------------------------------------
def _pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.clip(d, 0.0, None)


def _kth_radius(x: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each point of x to its k-th nearest other point of x."""
    d = _pairwise_sq(x, x)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Improved precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020).

    precision: share of fake points inside some real point's k-NN ball; recall: share of real points inside
    some fake point's ball; density: mean number of real balls holding a fake point, over k; coverage: share
    of real balls holding at least one fake point. All on the feature vectors given (N, D)."""
    real, fake = np.asarray(real), np.asarray(fake)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"need more than k={k} points in each set, got {len(real)} and {len(fake)}")
    r_real, r_fake = _kth_radius(real, k), _kth_radius(fake, k)
    d = _pairwise_sq(real, fake)  # (R, F)
    inside_real = d <= r_real[:, None]  # fake j inside real i's ball
    inside_fake = d <= r_fake[None, :]  # real i inside fake j's ball
    return {
        "precision": float(inside_real.any(0).mean()),
        "recall": float(inside_fake.any(1).mean()),
        "density": float(inside_real.sum(0).mean() / k),
        "coverage": float((d.min(1) <= r_real).mean()),
        "k": int(k),
    }


def class_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose arg-max logit is the label."""
    return float((np.asarray(logits).argmax(1) == np.asarray(labels)).mean())


def label_histogram(logits: np.ndarray, n_classes: int) -> np.ndarray:
    """How often each class is predicted (a generator's mode coverage), as shares summing to 1."""
    counts = np.bincount(np.asarray(logits).argmax(1), minlength=n_classes).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


# -- the evaluator models -------------------------------------------------------------------------------
@dataclass
class EvalOutput:
    features: np.ndarray  # (N, D) penultimate features
    logits: dict[str, np.ndarray]  # head name -> (N, classes)

    def predictions(self) -> dict[str, np.ndarray]:
        return {k: v.argmax(1) for k, v in self.logits.items()}


@dataclass
class Evaluator:
    """An evaluator model folder (family "evaluator") opened through a session pool."""

    entry: ModelEntry
    pool: SessionPool
    batch: int = 500  # images per session.run
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.entry.require_ready()
        if self.entry.family != "evaluator":
            raise ValueError(f"{self.entry.name} is a {self.entry.family} model, not an evaluator")

    @classmethod
    def open(cls, registry: Registry, dataset: str, pool: SessionPool) -> Evaluator:
        """The evaluator for a dataset ("fashion-mnist" or "synthfaces")."""
        for e in registry.ready("evaluator"):
            if e.manifest.extra.get("dataset") == dataset:
                return cls(e, pool)
        raise LookupError(f"no evaluator for {dataset!r} is installed "
                          f"(build it with `genstudio export evaluator --dataset {dataset}`)")

    @property
    def extra(self) -> dict[str, Any]:
        return self.entry.manifest.extra

    @property
    def feature_name(self) -> str:
        """How tables name these features: "FID (genstudio-eval-fmnist features)"."""
        return str(self.extra["feature_name"])

    @property
    def heads(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.extra["heads"].items()}

    def fit(self, images: np.ndarray) -> np.ndarray:
        return fit_images(images, int(self.extra["image_size"]), int(self.extra["channels"]),
                          str(self.extra.get("fit", "resize")))

    def run(self, images: np.ndarray) -> EvalOutput:
        """Features and logits for any images (fitted to the evaluator's input first)."""
        sess = self.pool.get(self.entry.path("evaluator"), root=self.entry.folder)
        names = ["features", *[f"logits_{h}" for h in self.heads]]
        x = self.fit(images)
        if not len(x):
            raise ValueError("no images to evaluate")
        parts: list[list[np.ndarray]] = [[] for _ in names]
        for i in range(0, len(x), self.batch):
            for p, out in zip(parts, sess.run(names, {"x": x[i:i + self.batch]}), strict=True):
                p.append(out)
        arrays = [np.concatenate(p) for p in parts]
        return EvalOutput(arrays[0], dict(zip(self.heads, arrays[1:], strict=True)))

    def reference(self) -> dict[str, np.ndarray]:
        """The test-set statistics shipped with the model: mu, sigma, features (a subset), labels."""
        if "ref" not in self._cache:
            with np.load(self.entry.path("reference")) as z:
                self._cache["ref"] = {k: z[k] for k in z.files}
        return self._cache["ref"]

    def reference_features(self) -> np.ndarray:
        return self.reference()["features"].astype(np.float32)

    def fid(self, images: np.ndarray | None = None, *, features: np.ndarray | None = None) -> float:
        """Frechet distance of images (or their features) to the shipped test-set statistics."""
        f = features if features is not None else self.run(images).features
        ref = self.reference()
        return frechet_distance(*feature_stats(f), ref["mu"], ref["sigma"])

    def report(self, images: np.ndarray, *, k: int = 5, labels: dict[str, np.ndarray] | None = None) -> dict:
        """FID, precision/recall/density/coverage against the reference, and accuracy when labels are given."""
        out = self.run(images)
        ref = self.reference_features()
        n = min(len(ref), len(out.features))
        result: dict[str, Any] = {
            "fid": self.fid(features=out.features),
            "fid_name": f"FID ({self.feature_name} features)",
            "n_images": int(len(out.features)),
            **precision_recall(ref[:n], out.features[:n], k=k),
        }
        if labels:
            result["accuracy"] = {h: class_accuracy(out.logits[h], y) for h, y in labels.items()}
        return result

    def sample_numbers(self, images: np.ndarray, method: str, *, k: int = 5) -> dict[str, Any]:
        """What a manifest records for a model's samples: FID, precision/recall/density/coverage, the evaluator's
        name and how the samples were drawn (`method`)."""
        r = self.report(images, k=k)
        return {"fid": round(float(r["fid"]), 3), "fid_name": r["fid_name"], "fid_n_samples": int(len(images)),
                "precision_recall": {key: round(float(r[key]), 4)
                                     for key in ("precision", "recall", "density", "coverage")},
                "fid_evaluator": {"name": self.entry.name}, "fid_method": method}
