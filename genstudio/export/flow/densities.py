"""Two-dimensional test densities for the flows: samplers, exact log-densities, plotting ranges, entropies.

Every density here is defined so that its sampler and its log-density describe the same distribution
exactly (no "a curve with noise, roughly"):

- moons, rings, spiral and eight Gaussians are finite mixtures of isotropic Gaussians: the curves are
  laid down as K equally weighted centres at most 0.4 sigma apart, so they look continuous.
- checkerboard is uniform on the dark cells of a 4x4 board.
- picture is piecewise uniform: a pixel is picked with probability proportional to its weight, then a
  point uniform inside that pixel's square (sub-pixel jitter), so the density is the image histogram.

Entropies: checkerboard and picture have closed forms (exact). The Gaussian mixtures have none; their
entropy is computed by midpoint quadrature of -p log p over a fine grid (an estimate; the grid
captures mass 1 - 1e-6 or better and its discretisation error is far below the numbers reported).
Natural logarithms throughout, so entropies and NLLs are in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

Range = tuple[float, float, float, float]  # xmin, xmax, ymin, ymax


@dataclass(frozen=True)
class Entropy:
    nats: float  # differential entropy H = -E[log p(x)]
    exact: bool  # True for a closed form, False for a numerical estimate
    method: str  # how it was obtained, in words


class Density:
    """A 2-D distribution: `sample(n, rng)` [n, 2] float32, `log_prob(x)` [n] float64, `entropy()`."""

    name: str  # short id, used in model names: flow-<name>-<arch>
    title: str  # for people
    range: Range  # the square the viewer plots and the integral check covers

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def entropy(self) -> Entropy:
        return quadrature_entropy(self)


# -- mixtures of isotropic Gaussians (moons, rings, spiral, eight Gaussians) -----------------------------
@dataclass(eq=False)
class GaussianMixture(Density):
    name: str
    title: str
    centers: np.ndarray  # (K, 2) component means, equally weighted
    sigma: float  # the standard deviation of every component, both axes
    range: Range = (-4.0, 4.0, -4.0, 4.0)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.integers(0, len(self.centers), size=n)
        x = self.centers[k] + self.sigma * rng.standard_normal((n, 2))  # (n, 2)
        return x.astype(np.float32)

    def log_prob(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        x = np.asarray(x, np.float64).reshape(-1, 2)
        out = np.empty(len(x))
        c = self.centers.astype(np.float64)
        norm = -math.log(len(c)) - math.log(2 * math.pi * self.sigma**2)
        for i in range(0, len(x), chunk):
            d2 = ((x[i:i + chunk, None, :] - c[None]) ** 2).sum(-1)  # (chunk, K)
            a = -0.5 * d2 / self.sigma**2
            m = a.max(1)
            out[i:i + chunk] = m + np.log(np.exp(a - m[:, None]).sum(1)) + norm
        return out


def _along(points: np.ndarray, spacing: float) -> np.ndarray:
    """Resample a dense polyline (M, 2) at equal arc length `spacing`; returns (K, 2)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    k = max(2, int(round(s[-1] / spacing)) + 1)
    t = np.linspace(0.0, s[-1], k)
    return np.stack([np.interp(t, s, points[:, 0]), np.interp(t, s, points[:, 1])], 1)


def two_moons(sigma: float = 0.16) -> GaussianMixture:
    """Scikit-learn's two interleaved half circles, centred and scaled by 1.6 (noise 0.1 before scaling)."""
    t = np.linspace(0.0, math.pi, 2000)
    upper = np.stack([np.cos(t), np.sin(t)], 1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], 1)
    arcs = [(_along(a, sigma / 4) - [0.5, 0.25]) * 1.6 for a in (upper, lower)]
    return GaussianMixture("moons", "Two moons", np.concatenate(arcs), sigma, (-3.5, 3.5, -3.5, 3.5))


def rings(radii: tuple[float, ...] = (1.0, 2.0, 3.0), sigma: float = 0.1) -> GaussianMixture:
    """Concentric circles with mass proportional to circumference (uniform along the rings)."""
    t = np.linspace(0.0, 2 * math.pi, 4000)
    circles = [_along(np.stack([r * np.cos(t), r * np.sin(t)], 1), sigma / 4)[:-1] for r in radii]
    return GaussianMixture("rings", "Concentric rings", np.concatenate(circles), sigma, (-4.0, 4.0, -4.0, 4.0))


def eight_gaussians(radius: float = 2.5, sigma: float = 0.25) -> GaussianMixture:
    """Eight equal Gaussians on a circle; neighbours are 7.7 sigma apart, so H ~ log 8 + log(2 pi e sigma^2)."""
    a = np.arange(8) * (2 * math.pi / 8)
    centers = radius * np.stack([np.cos(a), np.sin(a)], 1)
    return GaussianMixture("8gaussians", "Eight Gaussians", centers, sigma, (-4.0, 4.0, -4.0, 4.0))


def spiral(turns: float = 1.5, r_max: float = 3.3, sigma: float = 0.12) -> GaussianMixture:
    """Two interleaved Archimedean spiral arms, uniform along their length."""
    theta = np.linspace(0.35, 2 * math.pi * turns, 6000)
    r = r_max * theta / theta[-1]
    arm = np.stack([r * np.cos(theta), r * np.sin(theta)], 1)
    arm = _along(arm, sigma / 4)
    return GaussianMixture("spiral", "Spiral", np.concatenate([arm, -arm]), sigma, (-4.0, 4.0, -4.0, 4.0))


# -- checkerboard ---------------------------------------------------------------------------------------
@dataclass(eq=False)
class Checkerboard(Density):
    """Uniform on the dark cells of a `cells` x `cells` board covering [-half, half]^2."""

    name: str = "checkerboard"
    title: str = "Checkerboard"
    cells: int = 4  # cells per side (even)
    half: float = 4.0  # the board spans [-half, half] on both axes
    range: Range = (-4.5, 4.5, -4.5, 4.5)

    @property
    def cell(self) -> float:
        return 2 * self.half / self.cells

    def _dark(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return (i + j) % 2 == 0

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        dark = np.argwhere(self._dark(*np.indices((self.cells, self.cells))))  # (cells^2 / 2, 2)
        pick = dark[rng.integers(0, len(dark), size=n)]
        x = -self.half + (pick + rng.random((n, 2))) * self.cell  # (n, 2): column i along x, j along y
        return x.astype(np.float32)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64).reshape(-1, 2)
        idx = np.floor((x + self.half) / self.cell).astype(np.int64)
        inside = ((idx >= 0) & (idx < self.cells)).all(1) & self._dark(idx[:, 0], idx[:, 1])
        area = (self.cells**2 // 2) * self.cell**2
        return np.where(inside, -math.log(area), -np.inf)

    def entropy(self) -> Entropy:
        area = (self.cells**2 // 2) * self.cell**2
        return Entropy(math.log(area), True, f"exact: log of the support's area ({area:g})")


# -- a density drawn from a picture ---------------------------------------------------------------------
def picture_weights(rgba: np.ndarray, *, mode: str = "bright", floor: float = 0.3) -> np.ndarray:
    """Per-pixel weights (H, W) from an RGBA uint8 image.

    "bright": alpha x brightness above `floor`, brightness being the smallest channel (white = 1, saturated
    colours and black low), so white marks on a coloured or transparent background carry the mass.
    "dark": alpha x darkness (1 - the largest channel) above `floor`, for dark ink on paper.
    """
    a = rgba.astype(np.float64) / 255.0
    alpha = a[..., 3] if a.shape[-1] == 4 else np.ones(a.shape[:2])
    rgb = a[..., :3]
    level = rgb.min(-1) if mode == "bright" else 1.0 - rgb.max(-1)
    if mode not in ("bright", "dark"):
        raise ValueError(f"mode must be 'bright' or 'dark', not {mode!r}")
    return alpha * np.clip((level - floor) / (1.0 - floor), 0.0, 1.0)


@dataclass(eq=False)
class PictureDensity(Density):
    """Piecewise uniform over the pixels of a picture, p(pixel) proportional to its weight."""

    name: str
    title: str
    weights: np.ndarray  # (H, W) non-negative; row 0 is the top of the picture
    half: float = 4.0  # the picture spans [-half, half] on both axes
    range: Range = (-4.5, 4.5, -4.5, 4.5)
    _p: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, np.float64)
        if w.ndim != 2 or (w < 0).any() or w.sum() <= 0:
            raise ValueError("picture weights must be a non-negative (H, W) array with some mass")
        self._p = w / w.sum()

    @property
    def cell(self) -> tuple[float, float]:
        h, w = self._p.shape
        return 2 * self.half / w, 2 * self.half / h  # (width, height) of one pixel

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        h, w = self._p.shape
        flat = rng.choice(h * w, size=n, p=self._p.ravel())
        row, col = np.divmod(flat, w)
        cw, ch = self.cell
        jitter = rng.random((n, 2))  # uniform inside the pixel's square
        x = -self.half + (col + jitter[:, 0]) * cw
        y = self.half - (row + jitter[:, 1]) * ch  # image rows run down, y runs up
        return np.stack([x, y], 1).astype(np.float32)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64).reshape(-1, 2)
        h, w = self._p.shape
        cw, ch = self.cell
        col = np.floor((x[:, 0] + self.half) / cw).astype(np.int64)
        row = np.floor((self.half - x[:, 1]) / ch).astype(np.int64)
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        p = np.zeros(len(x))
        p[inside] = self._p[row[inside], col[inside]]
        with np.errstate(divide="ignore"):
            return np.log(p / (cw * ch))

    def entropy(self) -> Entropy:
        p = self._p[self._p > 0]
        cw, ch = self.cell
        h = float(-(p * np.log(p / (cw * ch))).sum())
        return Entropy(h, True, "exact: the histogram's entropy, -sum p_i log(p_i / pixel area)")


def icon_path() -> Path:
    from genstudio.runtime.paths import resources_dir

    return resources_dir() / "icons" / "genstudio-256.png"


def picture(path: Path | None = None, *, mode: str = "bright", floor: float = 0.3) -> PictureDensity:
    """The app icon (or any picture) as a density: its white spiral of dots carries the mass."""
    from PIL import Image

    with Image.open(path or icon_path()) as img:
        rgba = np.asarray(img.convert("RGBA"))
    return PictureDensity("icon", "App icon", picture_weights(rgba, mode=mode, floor=floor))


# -- numerical entropy and the registry of names --------------------------------------------------------
def grid(range_: Range, n: int) -> tuple[np.ndarray, float]:
    """Cell centres of an n x n grid over the range, (n*n, 2) with rows along y, and the cell area."""
    x0, x1, y0, y1 = range_
    dx, dy = (x1 - x0) / n, (y1 - y0) / n
    xs = x0 + (np.arange(n) + 0.5) * dx
    ys = y0 + (np.arange(n) + 0.5) * dy
    gx, gy = np.meshgrid(xs, ys)  # (n, n): row i is y = ys[i]
    return np.stack([gx.ravel(), gy.ravel()], 1), dx * dy


def quadrature_entropy(density: Density, n: int = 400, pad: float = 1.0) -> Entropy:
    """-sum p log p dA over the plotting range widened by `pad` on every side (midpoint rule)."""
    x0, x1, y0, y1 = density.range
    pts, area = grid((x0 - pad, x1 + pad, y0 - pad, y1 + pad), n)
    logp = density.log_prob(pts)
    p = np.exp(logp)
    mass = float(p.sum() * area)
    h = float(-(p * np.where(p > 0, logp, 0.0)).sum() * area)
    return Entropy(h, False, f"estimate: midpoint quadrature of -p log p on a {n}x{n} grid "
                             f"(captured mass {mass:.6f})")


_FACTORIES = {
    "moons": two_moons,
    "rings": rings,
    "8gaussians": eight_gaussians,
    "checkerboard": Checkerboard,
    "spiral": spiral,
    "icon": picture,
}
NAMES: tuple[str, ...] = tuple(_FACTORIES)


def get(name: str) -> Density:
    """A density by name (see NAMES)."""
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise KeyError(f"no density named {name!r}; known: {', '.join(NAMES)}") from None
