"""SynthFaces parts: the pen that draws in face units, the head's geometry, and every feature drawn on it.

Coordinates are "face units": one unit is one output pixel, the origin is the head centre, y points down.
A `Pen` rotates, scales and places those units on the 4x canvas, so the whole head tilts as one piece.
Each part function draws one attribute's shapes (hair, eyes, brows, mouth, glasses, headwear...) with
opaque colours, so the canvas's alpha stays a clean coverage mask.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import ImageDraw

SS = 4  # supersampling: shapes are drawn at 4x and box-filtered down

Colour = tuple[int, int, int]
WHITE: Colour = (250, 250, 246)


def mix(a: Colour, b: Colour, t: float) -> Colour:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def mul(c: Colour, f: float) -> Colour:
    return tuple(min(255, int(round(x * f))) for x in c)  # type: ignore[return-value]


def lerp(lo: float, hi: float, u: float) -> float:
    return lo + (hi - lo) * float(u)


_CIRCLES = {n: np.stack([np.cos(t), np.sin(t)], axis=1) for n in range(12, 65, 4)
            for t in [np.linspace(0, 2 * np.pi, n, endpoint=False)]}  # unit circles (n, 2) by point count


def ellipse_pts(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, t0=0.0, t1=2 * math.pi, n=0):
    """Points (n, 2) on an ellipse, or on the arc t0..t1 of it (radians, y down)."""
    if t1 - t0 >= 2 * math.pi - 1e-9:
        unit = _CIRCLES[min(64, 12 + 4 * int(max(rx, ry) * 1.25))]
    else:
        t = np.linspace(t0, t1, n or 9)
        unit = np.stack([np.cos(t), np.sin(t)], axis=1)
    if angle:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        return unit @ np.array([[c * rx, s * rx], [-s * ry, c * ry]]) + (cx, cy)
    return unit * (rx, ry) + (cx, cy)


class Pen:
    """Draws in face units onto the 4x canvas: p -> centre + scale * R(angle) (p - pivot) + scale * pivot."""

    def __init__(self, draw: ImageDraw.ImageDraw, cx: float, cy: float, scale: float, angle: float = 0.0,
                 pivot: tuple[float, float] = (0.0, 0.0)):
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        self.draw, self.px = draw, SS * scale
        self.m = self.px * np.array([[c, -s], [s, c]])  # (2, 2) rotation and scale
        piv = np.array(pivot)
        self.b = SS * (np.array([cx, cy]) + scale * piv) - self.m @ piv

    def to_canvas(self, pts) -> list[float]:
        return (np.asarray(pts, dtype=np.float64) @ self.m.T + self.b).ravel().tolist()

    def w(self, width: float) -> int:
        return max(1, int(round(width * self.px)))

    def poly(self, pts, fill: Colour, outline: Colour | None = None, width: float = 0.35) -> None:
        self.draw.polygon(self.to_canvas(pts), fill=fill, outline=outline, width=self.w(width) if outline else 0)

    def ellipse(self, cx, cy, rx, ry, fill: Colour, outline: Colour | None = None, width=0.35, angle=0.0) -> None:
        self.poly(ellipse_pts(cx, cy, rx, ry, angle), fill, outline, width)

    def line(self, pts, fill: Colour, width: float, closed: bool = False) -> None:
        pts = np.asarray(pts, dtype=np.float64)
        if closed:
            pts = np.concatenate([pts, pts[:2]])
        self.draw.line(self.to_canvas(pts), fill=fill, width=self.w(width), joint="curve")


# ---- the head ---------------------------------------------------------------------------------------
FACE_RADII = {"round": (14.0, 14.0), "oval": (11.6, 16.0), "square": (13.4, 14.8), "heart": (13.8, 15.4)}
FACE_WIDTH = {"woman": 0.95, "man": 1.04, "person": 1.0}


def _outline(shape: str, rx: float, ry: float, n: int = 72) -> np.ndarray:
    """The face outline (n, 2), starting at the chin and going left, over the top, and right."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + np.pi / 2
    c, s = np.cos(t), np.sin(t)
    low = np.maximum(s, 0.0)
    if shape == "square":  # boxy jaw, flat chin, rounder crown
        x = np.sign(c) * np.abs(c) ** np.where(s > 0, 0.4, 0.7)
        y = np.sign(s) * np.abs(s) ** np.where(s > 0, 0.5, 0.9)
    elif shape == "heart":  # wide brow, pointed chin
        x, y = c * (1.06 - 0.64 * low**1.3), s * (1 + 0.04 * low)
    else:
        x, y = c * (1 - (0.10 if shape == "round" else 0.14) * low**2), s
    return np.stack([rx * x, ry * y], axis=1)


class Face:
    """Where the features sit on one head, in face units."""

    def __init__(self, shape: str, gender: str, u_wide: float):
        rx, ry = FACE_RADII[shape]
        self.rx, self.ry = rx * FACE_WIDTH[gender] * lerp(0.97, 1.03, u_wide), ry
        self.outline = _outline(shape, self.rx, ry)
        self.ey = 0.6  # eye line
        self.ex = 0.41 * self.rx  # eye distance from the middle
        self.my = self.ey + 0.55 * ry  # mouth line

    def arc_above(self, y: float, grow: float = 1.0, lift: float = 0.0) -> np.ndarray:
        """Outline points above height y (left, over the top, right), grown about the centre and lifted."""
        pts = self.outline * grow - (0.0, lift)
        return pts[pts[:, 1] < y]

    def arc_below(self, y: float, grow: float = 1.0) -> np.ndarray:
        """Outline points below height y, from right round the chin to left."""
        pts = np.roll(self.outline * grow, -len(self.outline) // 2, axis=0)  # starts at the top, goes right
        return pts[pts[:, 1] > y]


def _dome(xi: float, y_side: float, y_top: float, tilt: float = 0.0, n: int = 15) -> np.ndarray:
    """A hairline from the right temple over the forehead to the left temple."""
    s = np.linspace(0, np.pi, n)
    x = xi * np.cos(s)
    return np.stack([x, y_side - (y_side - y_top) * np.sin(s) ** 0.7 + tilt * x], axis=1)


# ---- hair -------------------------------------------------------------------------------------------
def hair_back(pen: Pen, f: Face, style: str, col: Colour, edge: Colour, tie: Colour, u: np.ndarray) -> None:
    rx, ry = f.rx, f.ry
    if style == "long":
        top = f.arc_above(0.0, 1.13, 1.0)
        bottom = ry + lerp(8.0, 12.0, u[0])
        sides = [(rx * 1.22, ry * 0.5), (rx * 1.34, bottom - 1.5), (rx * 0.9, bottom), (0.0, bottom - 0.8),
                 (-rx * 0.9, bottom), (-rx * 1.34, bottom - 1.5), (-rx * 1.22, ry * 0.5)]
        pen.poly(np.concatenate([top, sides]), col, edge, 0.45)
    elif style == "bob":
        top = f.arc_above(0.0, 1.15, 0.8)
        y = ry * lerp(0.62, 0.8, u[0])
        sides = [(rx * 1.2, ry * 0.3), (rx * 1.25, y), (rx * 0.7, y + 1.0), (-rx * 0.7, y + 1.0),
                 (-rx * 1.25, y), (-rx * 1.2, ry * 0.3)]
        pen.poly(np.concatenate([top, sides]), col, edge, 0.45)
    elif style == "curly":
        big = lerp(0.0, 1.5, u[0])
        pen.poly(np.concatenate([f.arc_above(6.0, 1.12, 1.0), [(0.0, 4.0)]]), col)
        for i, t in enumerate(np.linspace(math.radians(155), math.radians(385), 17)):
            r = lerp(3.0, 4.0, u[1 + i])
            pen.ellipse((rx + 2.0 + big) * math.cos(t), (ry + 1.6 + big) * math.sin(t) - 0.8, r, r, col, edge, 0.4)
    elif style == "ponytail":
        side = 1.0 if u[0] < 0.5 else -1.0
        pen.ellipse(side * (rx + 2.8), -0.1 * ry, 3.0, 8.0, col, edge, 0.45, angle=side * 18)
        pen.ellipse(side * (rx + 0.6), -0.55 * ry, 1.5, 1.2, tie)
    elif style == "bun":
        pen.ellipse(0.0, -ry - 2.6, 5.0, 4.6, col, edge, 0.45)


def hair_front(pen: Pen, f: Face, style: str, col: Colour, edge: Colour, skin: Colour, u: np.ndarray) -> None:
    rx, ry, ey = f.rx, f.ry, f.ey
    if style == "bald":
        pen.ellipse(-0.3 * rx, -0.72 * ry, 3.2, 1.6, mix(skin, WHITE, 0.3), angle=-20)
    elif style == "short":
        cap = f.arc_above(ey - 1.0, 1.05, 0.7)
        line = _dome(0.87 * rx, ey - 1.0, -0.5 * ry, tilt=lerp(-0.1, 0.1, u[20]))
        pen.poly(np.concatenate([cap, line]), col, edge, 0.4)
    elif style == "long":
        side = 1.0 if u[20] < 0.5 else -1.0
        cap = f.arc_above(ey + 1.5, 1.09, 0.9)
        line = _dome(0.8 * rx, ey + 1.5, -0.48 * ry, tilt=side * 0.13)
        pen.poly(np.concatenate([cap, line]), col, edge, 0.4)
        pen.line([(side * 0.25 * rx, -0.62 * ry), (side * 0.2 * rx, -ry - 0.4)], mix(col, edge, 0.6), 0.45)
    elif style == "bob":
        cap = f.arc_above(ey + 2.0, 1.11, 0.8)
        yf, xi = ey - 6.8, 0.92 * rx
        xs = np.linspace(xi, -xi, 9)
        fringe = np.stack([xs, yf + 0.55 * (np.arange(9) % 2)], axis=1)
        pen.poly(np.concatenate([cap, [(xi, ey + 2.0)], fringe, [(-xi, ey + 2.0)]]), col, edge, 0.4)
    elif style in ("ponytail", "bun"):
        cap = f.arc_above(ey - 2.0, 1.04, 0.4)
        line = _dome(0.84 * rx, ey - 2.0, -0.6 * ry)
        pen.poly(np.concatenate([cap, line]), col, edge, 0.4)
        for k in (-0.4, 0.0, 0.4):  # combed-back strands
            pen.line([(k * rx, -0.66 * ry), (k * 0.8 * rx, -ry - 0.2)], mix(col, edge, 0.45), 0.35)
    elif style == "curly":
        cap = f.arc_above(ey, 1.08, 1.0)
        line = _dome(0.82 * rx, ey, -0.5 * ry)
        pen.poly(np.concatenate([cap, line]), col)
        for i, (x, y) in enumerate(line[::2]):
            r = lerp(2.0, 2.6, u[30 + i])
            pen.ellipse(x, y - 0.8, r, r, col, edge, 0.4)
        for i, (x, y) in enumerate(f.arc_above(ey, 1.0, 0.5)[::5]):
            if u[40 + i] < 0.8:
                pen.ellipse(x, y, 2.3, 2.3, col, edge, 0.4)
    elif style == "mohawk":
        cap = f.arc_above(ey - 2.0, 1.01, 0.0)
        pen.poly(np.concatenate([cap, _dome(0.85 * rx, ey - 2.0, -0.6 * ry)]), mix(skin, col, 0.28))
        top, h = -ry, lerp(6.5, 9.0, u[20])
        crest = [(-2.8, -0.5 * ry), (-3.4, top - 0.5), (-3.8, top - 0.55 * h), (-2.2, top - 2.2),
                 (-1.4, top - 0.95 * h), (0.0, top - 2.6), (1.4, top - h), (2.2, top - 2.2),
                 (3.8, top - 0.6 * h), (3.4, top - 0.5), (2.8, -0.5 * ry)]
        pen.poly(crest, col, edge, 0.45)


# ---- features ---------------------------------------------------------------------------------------
def eye(pen: Pen, f: Face, side: float, expr: str, iris: Colour, skin: Colour, lashes: bool) -> None:
    x, y = side * f.ex, f.ey
    ew, eh = (2.7, 2.35) if expr == "surprised" else (2.55, 1.75)
    x_in, x_out = x - side * ew, x + side * ew
    pen.ellipse(x, y, ew, eh, WHITE)
    pen.ellipse(x, y + 0.1, 1.45, 1.45, iris)
    pen.ellipse(x, y + 0.1, 0.68, 0.68, (14, 12, 12))
    pen.ellipse(x + 0.45, y - 0.4, 0.34, 0.34, (255, 255, 255))
    lid = mul(skin, 0.45)
    if expr in ("angry", "sad"):  # a slanted upper lid: low at the inner corner (angry) or the outer (sad)
        lo, hi = (x_in, x_out) if expr == "angry" else (x_out, x_in)
        pen.poly([(lo, y - eh - 0.8), (lo, y - 0.15), (hi, y - eh + 0.35), (hi, y - eh - 0.8)], skin)
        pen.line([(lo, y - 0.15), (hi, y - eh + 0.35)], lid, 0.5)
    else:
        pen.line(ellipse_pts(x, y, ew, eh, t0=math.pi, t1=2 * math.pi, n=9), lid, 0.5)
    if expr == "smiling":  # cheeks push the lower lid up
        xs = np.linspace(x_out, x_in, 9)
        curve = np.stack([xs, y + 0.35 + 0.9 * ((xs - x) / ew) ** 2], axis=1)
        pen.poly(np.concatenate([curve, [(x_in, y + eh + 0.8), (x_out, y + eh + 0.8)]]), skin)
        pen.line(curve, mix(skin, lid, 0.5), 0.35)
    if lashes:
        pen.line([(x_out - side * 0.2, y - 0.6 * eh), (x_out + side * 1.0, y - eh - 0.3)], lid, 0.45)


BROW_POSE = {  # (inner end dy, outer end dy, arch): negative is up
    "neutral": (0.0, 0.0, 0.5), "smiling": (-0.5, -0.4, 0.8), "sad": (-1.9, 0.8, 0.2),
    "surprised": (-2.3, -1.8, 1.4), "angry": (1.5, -1.4, -0.3),
}


def brow(pen: Pen, f: Face, side: float, shape: str, expr: str, col: Colour) -> None:
    x, by = side * f.ex, f.ey - 4.2
    d_in, d_out, arch = BROW_POSE[expr]
    width = {"thin": 0.55, "thick": 1.8, "arched": 0.9}[shape]
    arch += 1.4 if shape == "arched" else 0.0
    pts = [(x - side * 2.4, by + d_in), (x + side * 0.4, by - arch + 0.5 * (d_in + d_out)), (x + side * 3.1, by + d_out + 0.7)]
    pen.line(pts, col, width)


def mouth(pen: Pen, f: Face, expr: str, lip: Colour) -> None:
    my, dark = f.my, (96, 26, 36)
    if expr == "smiling":
        xs = np.linspace(-4.6, 4.6, 13)
        top = np.stack([xs, my - 1.0 + 0.35 * (1 - (xs / 4.6) ** 2)], axis=1)
        bottom = np.stack([xs[::-1], my - 1.0 + 3.6 * np.sqrt(1 - (xs[::-1] / 4.6) ** 2)], axis=1)
        pen.poly(np.concatenate([top, bottom]), dark, lip, 0.5)
        xt = np.linspace(-3.4, 3.4, 7)
        teeth = np.stack([xt, my - 0.55 + 0.3 * (1 - (xt / 3.4) ** 2)], axis=1)
        pen.poly(np.concatenate([teeth, teeth[::-1] + (0, 1.2)]), WHITE)
    elif expr == "neutral":
        pen.line([(-3.4, my), (0.0, my + 0.15), (3.4, my)], mul(lip, 0.75), 0.9)
    elif expr == "sad":
        xs = np.linspace(-3.8, 3.8, 9)
        pen.line(np.stack([xs, my + 1.6 - 2.2 * (1 - (xs / 3.8) ** 2)], axis=1), mul(lip, 0.75), 1.0)
    elif expr == "surprised":
        pen.ellipse(0.0, my + 0.6, 2.1, 2.8, dark, lip, 0.55)
    elif expr == "angry":  # bared, clenched teeth
        xs = np.linspace(-3.6, 3.6, 9)
        top = np.stack([xs, my - 0.4 + 0.9 * (xs / 3.6) ** 2], axis=1)
        pen.poly(np.concatenate([top, top[::-1] + (0, 2.0)]), WHITE, dark, 0.45)
        pen.line(top + (0, 1.0), mul(WHITE, 0.6), 0.3)


def facial_hair(pen: Pen, f: Face, kind: str, col: Colour, edge: Colour, skin: Colour) -> None:
    rx, my = f.rx, f.my
    stache = [(-4.8, my - 0.3), (-2.8, my - 2.2), (-0.8, my - 2.6), (0.0, my - 2.2), (0.8, my - 2.6),
              (2.8, my - 2.2), (4.8, my - 0.3), (2.8, my - 1.2), (0.0, my - 1.4), (-2.8, my - 1.2)]
    if kind in ("beard", "stubble"):
        y0 = f.ey + 2.0
        jaw = f.arc_below(y0, 1.05 if kind == "beard" else 1.0)
        inner = [(-0.72 * rx, y0 + 0.5), (-4.8, my - 2.0), (-2.0, my - 2.9), (0.0, my - 2.6),
                 (2.0, my - 2.9), (4.8, my - 2.0), (0.72 * rx, y0 + 0.5)]
        if kind == "beard":
            pen.poly(np.concatenate([jaw, inner]), col, edge, 0.4)
        else:
            pen.poly(np.concatenate([jaw, inner]), mix(skin, mul(col, 0.5), 0.33))
    elif kind == "moustache":
        pen.poly(stache, col, edge, 0.35)


def glasses(pen: Pen, f: Face, kind: str, frame: Colour) -> None:
    ex, ey, rx = f.ex, f.ey, f.rx
    glint = (236, 242, 252)
    for side in (-1.0, 1.0):
        x = side * ex
        if kind == "round":
            pen.line(ellipse_pts(x, ey, 3.3, 3.1), frame, 0.65, closed=True)
        elif kind == "square":
            pen.line([(x - 3.7, ey - 2.4), (x + 3.7, ey - 2.4), (x + 3.5, ey + 2.5), (x - 3.5, ey + 2.5)], frame, 0.7,
                     closed=True)
        else:
            lens = [(x - 3.9, ey - 2.3), (x + 3.9, ey - 2.3), (x + 3.6, ey + 1.4), (x + 2.0, ey + 2.9),
                    (x - 2.0, ey + 2.9), (x - 3.6, ey + 1.4)]
            pen.poly(lens, (22, 22, 30), frame, 0.4)
        pen.line([(x - 2.0, ey - 1.0), (x - 1.0, ey - 1.8)], glint, 0.4)
        pen.line([(side * (ex + 3.4), ey - 0.9), (side * rx * 0.99, ey - 1.2)], frame, 0.6)
    gap = ex - (3.3 if kind == "round" else 3.7)
    pen.line([(-gap, ey - 0.6), (0.0, ey - 1.2), (gap, ey - 0.6)], frame, 0.6)


def headwear(pen: Pen, f: Face, kind: str, col: Colour, trim: Colour) -> None:
    rx, ry = f.rx, f.ry
    dark = mul(col, 0.72)
    if kind == "cap":  # crown with a badge, and a peak seen from the front
        yb = -0.6 * ry
        pen.poly(f.arc_above(yb + 1.0, 1.1, 1.6), col, dark, 0.4)
        pen.ellipse(0.0, -1.1 * ry - 1.5, 1.1, 0.8, dark)
        pen.ellipse(0.0, yb - 3.0, 2.0, 1.7, trim)
        pen.line([(0.0, yb - 4.6), (0.0, -1.1 * ry - 1.0)], dark, 0.4)  # seam between the front panels
        xs = np.linspace(-1.2 * rx, 1.2 * rx, 15)
        peak = np.stack([xs[::-1], yb + 0.4 + 3.6 * np.sqrt(1 - (xs[::-1] / xs[-1]) ** 2)], axis=1)
        pen.poly(np.concatenate([[(xs[0], yb - 0.2), (xs[-1], yb - 0.2)], peak]), mul(col, 0.8), mul(col, 0.45), 0.45)
        pen.line(peak[3:-3] + (0.0, -0.9), mul(col, 0.6), 0.35)
    elif kind == "beanie":
        pen.poly(f.arc_above(-0.45 * ry, 1.12, 1.4), col, dark, 0.4)
        y0, y1, xw = -0.64 * ry, -0.38 * ry, 1.1 * rx
        pen.poly([(-xw, y0), (xw, y0), (xw, y1), (-xw, y1)], dark, mul(col, 0.55), 0.35)
        for x in np.arange(-xw + 1.4, xw, 1.6):
            pen.line([(x, y0 + 0.5), (x, y1 - 0.5)], mul(col, 0.55), 0.3)
        pen.ellipse(0.0, -1.12 * ry - 2.8, 2.7, 2.5, mix(col, WHITE, 0.25), dark, 0.35)
    elif kind == "headband":
        xs = np.linspace(-1.04 * rx, 1.04 * rx, 11)
        pen.line(np.stack([xs, -0.5 * ry - 2.2 * (1 - (xs / rx) ** 2)], axis=1), col, 2.2)
    elif kind == "hat":
        yb = -0.62 * ry
        pen.ellipse(0.0, yb, rx + 6.5, 2.6, dark, mul(col, 0.5), 0.4)
        crown = [(-0.86 * rx, yb), (-0.8 * rx, -ry - 3.5), (-0.5 * rx, -ry - 5.2), (0.5 * rx, -ry - 5.2),
                 (0.8 * rx, -ry - 3.5), (0.86 * rx, yb)]
        pen.poly(crown, col, dark, 0.4)
        pen.poly([(-0.86 * rx, yb), (-0.84 * rx, yb - 2.2), (0.84 * rx, yb - 2.2), (0.86 * rx, yb)], trim)


def earrings(pen: Pen, f: Face, kind: str, metal: Colour) -> None:
    for side in (-1.0, 1.0):
        x, y = side * (f.rx * 0.97 + 0.2), f.ey + 4.4
        if kind == "studs":
            pen.ellipse(x, y, 1.35, 1.35, metal, mul(metal, 0.55), 0.35)
            pen.ellipse(x - 0.4, y - 0.4, 0.45, 0.45, WHITE)
        else:
            pen.line(ellipse_pts(x, y + 1.9, 1.9, 2.1), metal, 0.7, closed=True)
