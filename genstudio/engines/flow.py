"""The flow engine: exact densities on grids, seeded samples, layer-by-layer trajectories and quality numbers.

    flow = open_flow(registry.get("flow-moons-realnvp"), pool)
    grid = drive(flow.density_grid(256))            # DensityGrid: log p on 256 x 256, rows along y
    x = flow.sample(1000, seed=0)                   # (1000, 2); the same seed gives the same points
    layers = flow.push(flow.base_noise(1000, 0))[1] # (L+1, 1000, 2) from the Gaussian base to the data

Long work (grids, evaluations, the tab's whole view) are generators per genstudio.runtime.jobs.
numpy and ONNX Runtime only: no torch, no Qt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genstudio.runtime.jobs import Progress
from genstudio.runtime.registry import ModelEntry
from genstudio.runtime.sessions import SessionPool

Range = tuple[float, float, float, float]  # xmin, xmax, ymin, ymax


@dataclass
class DensityGrid:
    log_p: np.ndarray  # (n, n) float32 log-density at cell centres; row i is y = ys[i], bottom row first
    range: Range  # the square covered
    seconds: float = 0.0  # wall time of the evaluation

    @property
    def n(self) -> int:
        return self.log_p.shape[0]

    @property
    def p(self) -> np.ndarray:
        return np.exp(self.log_p.astype(np.float64))

    @property
    def cell_area(self) -> float:
        x0, x1, y0, y1 = self.range
        return (x1 - x0) * (y1 - y0) / self.log_p.size

    def integral(self) -> float:
        """Midpoint-rule integral of p over the range (about 1 when the range holds the mass)."""
        return float(self.p.sum() * self.cell_area)

    def value_at(self, x: float, y: float) -> float | None:
        """log p at the grid cell holding (x, y), or None outside the range."""
        x0, x1, y0, y1 = self.range
        n = self.n
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            return None
        # the closed upper edge (x = xmax or y = ymax, where the cursor's last pixel lands) is in the last cell
        j = min(math.floor((x - x0) / (x1 - x0) * n), n - 1)
        i = min(math.floor((y - y0) / (y1 - y0) * n), n - 1)
        return float(self.log_p[i, j])


def grid_points(range_: Range, n: int) -> np.ndarray:
    """Cell centres (n*n, 2) float32 of an n x n grid, row-major with rows along y (bottom first)."""
    x0, x1, y0, y1 = range_
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)


@dataclass
class FlowView:
    """Everything the density tab draws; plain arrays, ready for a worker thread to hand over."""

    grid: DensityGrid
    samples: np.ndarray  # (N, 2) model samples
    sample_layers: np.ndarray  # (L+1, N, 2) the samples from the base (0) to the data layer (L)
    grid_lines: np.ndarray  # (L+1, K, P, 2) K lines of P points of a square base grid, carried along
    train: np.ndarray  # (M, 2) training points for the histogram
    heldout_nll: float  # nats, on the shipped held-out points
    seed: int = 0


@dataclass
class FlowModel:
    """A 2-D flow folder opened through a session pool (log_density.onnx + sample.onnx + the shipped points)."""

    entry: ModelEntry
    pool: SessionPool
    batch: int = 16384  # points per session.run when evaluating grids
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.entry.require_ready()
        if self.manifest.family != "flow" or self.manifest.extra.get("kind") != "2d":
            raise ValueError(f"{self.entry.name} is not a 2-D flow model")

    # -- what the manifest says ---------------------------------------------------------------------
    @property
    def manifest(self):
        return self.entry.manifest

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def range(self) -> Range:
        return tuple(float(v) for v in self.manifest.extra["range"])  # type: ignore[return-value]

    @property
    def n_layers(self) -> int:
        return int(self.manifest.extra["n_layers"])

    @property
    def layer_names(self) -> list[str]:
        return list(self.manifest.extra.get("layer_names", []))

    @property
    def true_entropy(self) -> tuple[float | None, bool]:
        """(nats, exact) of the data density, (None, False) when unknown."""
        m = self.manifest.metrics
        return m.get("true_entropy_nats"), bool(m.get("true_entropy_exact", False))

    # -- sessions and shipped data --------------------------------------------------------------------
    def _session(self, role: str):
        return self.pool.get(self.entry.path(role), root=self.entry.folder)

    def _points(self, role: str) -> np.ndarray:
        if role not in self._cache:
            self._cache[role] = np.load(self.entry.path(role), allow_pickle=False).astype(np.float32)
        return self._cache[role]

    def train_samples(self) -> np.ndarray:
        return self._points("train_samples")

    def heldout_samples(self) -> np.ndarray:
        return self._points("heldout_samples")

    # -- density --------------------------------------------------------------------------------------
    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log p(x) in nats for points (N, 2); evaluated in batches."""
        x = np.ascontiguousarray(x, np.float32).reshape(-1, 2)
        sess = self._session("log_density")
        return np.concatenate([sess.run(None, {"x": x[i:i + self.batch]})[0]
                               for i in range(0, len(x), self.batch)] or [np.zeros(0, np.float32)])

    def density_grid(self, n: int = 256, range_: Range | None = None) -> Generator[Progress, None, DensityGrid]:
        """log p on an n x n grid over the range (the model's by default), one yield per batch."""
        range_ = range_ or self.range
        t0 = time.perf_counter()
        pts = grid_points(range_, n)
        sess = self._session("log_density")
        out = np.empty(len(pts), np.float32)
        steps = math.ceil(len(pts) / self.batch)
        for k, i in enumerate(range(0, len(pts), self.batch)):
            out[i:i + self.batch] = sess.run(None, {"x": pts[i:i + self.batch]})[0]
            yield Progress(k + 1, steps, f"density {k + 1}/{steps}")
        return DensityGrid(out.reshape(n, n), range_, time.perf_counter() - t0)

    def heldout_nll(self) -> float:
        return float(-self.log_prob(self.heldout_samples()).astype(np.float64).mean())

    # -- sampling -------------------------------------------------------------------------------------
    @staticmethod
    def base_noise(n: int, seed: int) -> np.ndarray:
        """n draws (n, 2) from the standard normal base; a fixed seed fixes them."""
        return np.random.default_rng(seed).standard_normal((n, 2)).astype(np.float32)

    def push(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Base points (N, 2) to data points (N, 2) and every layer's output (L+1, N, 2)."""
        z = np.ascontiguousarray(z, np.float32).reshape(-1, 2)
        if not len(z):  # no points (a sample count of 0): nothing to run, but the layer axis stays
            return np.zeros((0, 2), np.float32), np.zeros((self.n_layers + 1, 0, 2), np.float32)
        sess = self._session("sample")
        xs, layers = [], []
        for i in range(0, len(z), self.batch):
            x, lay = sess.run(None, {"z": z[i:i + self.batch]})
            xs.append(x)
            layers.append(lay)
        return np.concatenate(xs), np.concatenate(layers, 1)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        return self.push(self.base_noise(n, seed))[0]

    def sample_layers(self, n: int, seed: int = 0) -> np.ndarray:
        return self.push(self.base_noise(n, seed))[1]

    def sample_job(self, n: int, seed: int = 0) -> Generator[Progress, None, np.ndarray]:
        """sample_layers as a job: (L+1, n, 2), one yield per batch of points."""
        z = self.base_noise(n, seed)
        sess = self._session("sample")
        parts = []
        steps = max(1, math.ceil(n / self.batch))
        for k, i in enumerate(range(0, n, self.batch)):
            parts.append(sess.run(None, {"z": z[i:i + self.batch]})[1])
            yield Progress(k + 1, steps, "sampling")
        if not parts:
            return np.zeros((self.n_layers + 1, 0, 2), np.float32)
        return np.concatenate(parts, 1)

    def grid_lines(self, lines: int = 13, points: int = 97, extent: float = 3.0) -> np.ndarray:
        """A square grid of `lines` horizontal and vertical lines over [-extent, extent]^2 in the base,
        carried through every layer: (L+1, 2 * lines, points, 2)."""
        ticks = np.linspace(-extent, extent, lines, dtype=np.float32)
        along = np.linspace(-extent, extent, points, dtype=np.float32)
        horiz = np.stack(np.broadcast_arrays(along[None, :], ticks[:, None]), -1)  # (lines, points, 2)
        vert = horiz[..., ::-1]
        base = np.concatenate([horiz, vert])  # (2 * lines, points, 2)
        layers = self.push(base.reshape(-1, 2))[1]  # (L+1, 2 * lines * points, 2)
        return layers.reshape(layers.shape[0], 2 * lines, points, 2)

    # -- the tab's view and the evaluation --------------------------------------------------------
    def view(self, n_grid: int = 256, n_samples: int = 1000, seed: int = 0) -> Generator[Progress, None, FlowView]:
        grid = yield from self.density_grid(n_grid)
        layers = self.sample_layers(n_samples, seed)
        yield Progress(1, 3, "samples")
        lines = self.grid_lines()
        yield Progress(2, 3, "grid trajectory")
        nll = self.heldout_nll()
        yield Progress(3, 3, "held-out NLL")
        return FlowView(grid, layers[-1], layers, lines, self.train_samples(), nll, seed)

    def evaluate(self, integral_grid: int = 512) -> Generator[Progress, None, dict]:
        """Recompute held-out NLL and the integral check; compare with what model.json recorded."""
        nll = self.heldout_nll()
        yield Progress(1, 2, "held-out NLL")
        grid = yield from self.density_grid(integral_grid)
        h, exact = self.true_entropy
        recorded = self.manifest.metrics
        return {
            "model": self.name,
            "heldout_nll_nats": nll,
            "heldout_points": int(len(self.heldout_samples())),
            "true_entropy_nats": h,
            "true_entropy_exact": exact,
            "kl_estimate_nats": None if h is None else nll - h,
            "integral": grid.integral(),
            "integral_grid": integral_grid,
            "range": list(self.range),
            "recorded_heldout_nll_nats": recorded.get("heldout_nll_nats"),
            "recorded_integral": (recorded.get("integral") or {}).get("value"),
        }


@dataclass
class ImageFlowModel:
    """An image flow folder: sampling z -> image and exact log-density image -> log p (for bits/dim)."""

    entry: ModelEntry
    pool: SessionPool
    batch: int = 500  # images per session.run

    def __post_init__(self) -> None:
        self.entry.require_ready()
        if self.entry.manifest.extra.get("kind") != "image":
            raise ValueError(f"{self.entry.name} is not an image flow model")

    @property
    def dim(self) -> int:
        return int(self.entry.manifest.extra["dim"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.entry.manifest.extra["image_shape"])  # type: ignore[return-value]

    def _session(self, role: str):
        return self.pool.get(self.entry.path(role), root=self.entry.folder)

    def sample(self, n: int, seed: int = 0, temperature: float = 0.7) -> np.ndarray:
        """Images (n, C, H, W) in [0, 1]; the same seed and temperature give the same images."""
        z = temperature * np.random.default_rng(seed).standard_normal((n, self.dim)).astype(np.float32)
        return self._session("sample").run(None, {"z": z})[0]

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        sess = self._session("log_density")
        x = np.ascontiguousarray(x, np.float32)
        return np.concatenate([sess.run(None, {"x": x[i:i + self.batch]})[0] for i in range(0, len(x), self.batch)])

    def bits_per_dim(self, images_u8: np.ndarray, seed: int = 1234) -> Generator[Progress, None, dict]:
        """Dequantised bits/dim of uint8 images (N, H, W): one uniform noise draw per image."""
        rng = np.random.default_rng(seed)
        u = np.asarray(images_u8, np.float32).reshape(len(images_u8), *self.image_shape)
        x = (u + rng.random(u.shape, dtype=np.float32)) / 256.0
        sess = self._session("log_density")
        parts = []
        steps = math.ceil(len(x) / self.batch)
        for k, i in enumerate(range(0, len(x), self.batch)):
            parts.append(sess.run(None, {"x": x[i:i + self.batch]})[0])
            yield Progress(k + 1, steps, "bits/dim")
        lp = np.concatenate(parts).astype(np.float64)
        bpd = (-lp + self.dim * math.log(256.0)) / (self.dim * math.log(2.0))
        return {"model": self.entry.name, "test_bits_per_dim": float(bpd.mean()),
                "stderr": float(bpd.std() / math.sqrt(len(bpd))), "images": int(len(bpd)),
                "recorded_test_bits_per_dim": self.entry.manifest.metrics.get("test_bits_per_dim")}


def open_flow(entry: ModelEntry, pool: SessionPool) -> FlowModel | ImageFlowModel:
    """The right engine object for a flow folder: 2-D density or image flow."""
    kind = entry.require_ready().manifest.extra.get("kind")
    return ImageFlowModel(entry, pool) if kind == "image" else FlowModel(entry, pool)


def is_2d_flow(entry: ModelEntry) -> bool:
    return entry.ready and entry.family == "flow" and entry.manifest.extra.get("kind") == "2d"


def load_view(entry: ModelEntry, pool: SessionPool, *, n_grid: int = 256, n_samples: int = 1000,
              seed: int = 0) -> Generator[Progress, None, tuple[FlowModel, FlowView]]:
    """Open a 2-D flow (session creation included) and compute its view: one job for the studio."""
    yield Progress(0, None, f"loading {entry.name}")
    model = FlowModel(entry, pool)
    model._session("log_density")
    model._session("sample")
    view = yield from model.view(n_grid, n_samples, seed)
    return model, view

