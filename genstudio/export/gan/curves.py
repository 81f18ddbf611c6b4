"""Training curves of a GAN run drawn with Pillow (no matplotlib): D and G loss, the R1 penalty, D's logits.

    plot_curves(trainer.curves, trainer.r1_steps, Path("docs/gan-curves-synthfaces.png"), title="gan-synthfaces")

Three stacked panels share the step axis; raw per-step values are faint, a moving average is drawn over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PANELS = (  # (title, [(curve, colour)])
    ("loss (logistic, non-saturating)", [("d_loss", (200, 60, 40)), ("g_loss", (40, 90, 200))]),
    ("discriminator logits (mean)", [("d_real", (30, 140, 60)), ("d_fake", (150, 60, 160))]),
    ("R1 penalty |grad D(real)|^2", [("r1", (120, 120, 120))]),
)
W, PANEL_H, MARGIN_L, MARGIN_R, TOP = 900, 220, 70, 20, 40


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average with a window that grows from 1 at the start (same length as y)."""
    if len(y) == 0 or window <= 1:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_curves(curves: dict[str, Sequence[float]], r1_steps: Sequence[int], path: Path, *, title: str = "") -> Path:
    """Write the three-panel PNG; returns the path."""
    font = ImageFont.load_default()
    h = TOP + PANEL_H * len(PANELS) + 30
    img = Image.new("RGB", (W, h), "white")
    draw = ImageDraw.Draw(img)
    n_steps = max([len(curves.get(k, [])) for k in ("d_loss", "g_loss")] + [1])
    draw.text((MARGIN_L, 10), f"{title}  ({n_steps} steps)", fill="black", font=font)
    for p, (name, series) in enumerate(PANELS):
        y0 = TOP + p * PANEL_H
        box = (MARGIN_L, y0 + 18, W - MARGIN_R, y0 + PANEL_H - 22)
        draw.rectangle(box, outline=(160, 160, 160))
        draw.text((MARGIN_L, y0 + 4), name, fill="black", font=font)
        data = []
        for key, colour in series:
            y = np.asarray(curves.get(key, []), np.float64)
            x = np.asarray(r1_steps if key == "r1" else np.arange(len(y)), np.float64)[:len(y)]
            data.append((key, colour, x, y))
        values = np.concatenate([d[3] for d in data if len(d[3])] or [np.zeros(1)])
        lo, hi = np.percentile(values, 1), np.percentile(values, 99)
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        pad = 0.05 * (hi - lo)
        lo, hi = lo - pad, hi + pad

        def to_px(x: np.ndarray, y: np.ndarray, box=box, lo=lo, hi=hi) -> list[tuple[float, float]]:
            px = box[0] + (box[2] - box[0]) * x / max(n_steps - 1, 1)
            py = box[3] - (box[3] - box[1]) * (np.clip(y, lo, hi) - lo) / (hi - lo)
            return list(zip(px.tolist(), py.tolist(), strict=True))

        for frac in (0.0, 0.5, 1.0):  # y ticks
            v = lo + frac * (hi - lo)
            yy = box[3] - frac * (box[3] - box[1])
            draw.line((box[0] - 4, yy, box[0], yy), fill="black")
            draw.text((4, yy - 6), f"{v:.3g}", fill="black", font=font)
        legend_x = box[2] - 160
        for i, (key, colour, x, y) in enumerate(data):
            if len(y) >= 2:
                faint = tuple(int(c + (255 - c) * 0.7) for c in colour)
                draw.line(to_px(x, y), fill=faint, width=1)
                draw.line(to_px(x, smooth(y, max(1, len(y) // 50))), fill=colour, width=2)
            draw.line((legend_x, y0 + 10 + 12 * i, legend_x + 20, y0 + 10 + 12 * i), fill=colour, width=3)
            draw.text((legend_x + 26, y0 + 4 + 12 * i), key, fill="black", font=font)
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):  # x ticks under the last panel
        xx = MARGIN_L + frac * (W - MARGIN_L - MARGIN_R)
        draw.text((xx - 10, h - 24), f"{int(round(frac * (n_steps - 1)))}", fill="black", font=font)
    draw.text((W // 2 - 20, h - 12), "step", fill="black", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
