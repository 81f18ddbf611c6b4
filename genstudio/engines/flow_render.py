"""Pictures of 2-D densities as numpy arrays: a viridis colour map, log/linear scaling, histograms, heatmaps.

The studio turns these arrays into QImages and draws its overlays with QPainter; the CLI writes them as
PNGs with the samples drawn in. Row 0 of every picture is the top of the plot (largest y).
"""

from __future__ import annotations

import numpy as np

Range = tuple[float, float, float, float]  # xmin, xmax, ymin, ymax

# Viridis (matplotlib's default map, CC0), sampled at 9 points and interpolated linearly.
_VIRIDIS_ANCHORS = np.array([
    (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
    (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)], np.float64)
LOG_SPAN = 10.0  # nats below the maximum that the log scale shows; lower values get the darkest colour


def viridis_lut(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 colours from dark purple (0) to yellow (n - 1)."""
    t = np.linspace(0.0, 1.0, n)
    pos = np.linspace(0.0, 1.0, len(_VIRIDIS_ANCHORS))
    lut = np.stack([np.interp(t, pos, _VIRIDIS_ANCHORS[:, c]) for c in range(3)], 1)
    return (lut + 0.5).astype(np.uint8)


_LUT = viridis_lut()


def scale_log_density(log_p: np.ndarray, scale: str = "log", span: float = LOG_SPAN) -> tuple[np.ndarray, float, float]:
    """Map log p to [0, 1] for colouring; returns (values, lo, hi) where lo/hi label the colour bar ends.

    "log": colour by log p from max - span to max (lo, hi in nats). "linear": colour by p from 0 to max p.
    """
    lp = np.asarray(log_p, np.float64)
    finite = lp[np.isfinite(lp)]
    top = float(finite.max()) if finite.size else 0.0
    if scale == "log":
        lo = top - span
        v = (np.nan_to_num(lp, nan=lo, neginf=lo) - lo) / span
        return np.clip(v, 0.0, 1.0), lo, top
    if scale == "linear":
        with np.errstate(over="ignore"):  # p / max p, without overflow; +inf (a singular point) is the top
            p = np.minimum(np.exp(np.nan_to_num(lp, nan=-np.inf) - top), 1.0)
        return p, 0.0, float(np.exp(top))
    raise ValueError(f"scale must be 'log' or 'linear', not {scale!r}")


def scale_counts(counts: np.ndarray, scale: str = "log") -> np.ndarray:
    """Histogram counts to [0, 1]: log1p-scaled or linear, relative to the largest bin."""
    c = np.asarray(counts, np.float64)
    top = c.max() if c.size and c.max() > 0 else 1.0
    return np.log1p(c) / np.log1p(top) if scale == "log" else c / top


def colorize(values01: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] with row 0 at the bottom (y up) to (H, W, 3) uint8 with row 0 at the top."""
    idx = np.clip((np.asarray(values01) * 255.0 + 0.5).astype(np.int64), 0, 255)
    return np.ascontiguousarray(_LUT[idx][::-1])


def histogram(points: np.ndarray, range_: Range, bins: int = 128) -> np.ndarray:
    """Counts (bins, bins) of 2-D points over the range; row i is the i-th band of y from the bottom."""
    x0, x1, y0, y1 = range_
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    h, _, _ = np.histogram2d(pts[:, 1], pts[:, 0], bins=bins, range=[[y0, y1], [x0, x1]])
    return h


def to_pixels(points: np.ndarray, range_: Range, width: int, height: int) -> np.ndarray:
    """Data coordinates (N, 2) to pixel coordinates (N, 2) of a width x height picture of the range."""
    x0, x1, y0, y1 = range_
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    px = (pts[:, 0] - x0) / (x1 - x0) * width
    py = (y1 - pts[:, 1]) / (y1 - y0) * height
    return np.stack([px, py], 1)


def render_density(log_p: np.ndarray, range_: Range, samples: np.ndarray | None = None, *,
                   scale: str = "log", size: int = 512, title: str | None = None) -> np.ndarray:
    """A heatmap (size x size, uint8 RGB) of log p with samples drawn as small white dots."""
    from PIL import Image, ImageDraw

    values, _lo, _hi = scale_log_density(log_p, scale)
    img = Image.fromarray(colorize(values)).resize((size, size), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img)
    if samples is not None and len(samples):
        for x, y in to_pixels(samples, range_, size, size):
            if 0 <= x < size and 0 <= y < size:
                draw.ellipse((x - 1.6, y - 1.6, x + 1.6, y + 1.6), fill=(255, 255, 255), outline=(20, 20, 20))
    if title:
        draw.rectangle((0, 0, size, 18), fill=(0, 0, 0))
        draw.text((5, 3), title, fill=(255, 255, 255))
    return np.asarray(img.convert("RGB"))


def render_histogram(points: np.ndarray, range_: Range, *, bins: int = 128, scale: str = "log",
                     size: int = 512, title: str | None = None) -> np.ndarray:
    """The training-data histogram as a size x size uint8 RGB picture in the same colour map."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(colorize(scale_counts(histogram(points, range_, bins), scale)))
    img = img.resize((size, size), Image.Resampling.NEAREST)
    if title:
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, 0, size, 18), fill=(0, 0, 0))
        draw.text((5, 3), title, fill=(255, 255, 255))
    return np.asarray(img.convert("RGB"))
