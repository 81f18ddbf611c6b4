"""SynthFaces drawing: one face composed at 4x with Pillow, box-filtered to 64x64, lit, and laid over a backdrop.

The figure is drawn opaque on a transparent RGBA canvas (shapes in synthfaces_parts); `Image.reduce(4)`
averages 4x4 blocks into coverage (alpha) and colour, which is all compositing over the numpy backdrop
needs: no second mask pass. Light is applied at 64x64: Lambert shading on a sphere around the head and a
soft gradient elsewhere.

Randomness: `draw_face(attrs, look)` reads a fixed vector of uniforms (see LOOK_SLOTS); an attribute
override never shifts what the other parts of the face read.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .synthfaces_parts import (
    SS,
    WHITE,
    Colour,
    Face,
    Pen,
    brow,
    earrings,
    ellipse_pts,
    eye,
    facial_hair,
    glasses,
    hair_back,
    hair_front,
    headwear,
    lerp,
    mix,
    mouth,
    mul,
)

SIZE = 64  # output side in pixels
LOOK_SLOTS = 256  # uniforms per face: pose 0-15, colours 16-31, details 32-63, backdrop 64-79, hair 80-255

SKIN: dict[str, Colour] = {
    "pale": (248, 222, 204), "light": (236, 194, 160), "tan": (212, 160, 112),
    "olive": (190, 154, 100), "brown": (148, 99, 62), "dark": (96, 62, 42),
}
HAIR: dict[str, Colour] = {
    "black": (32, 28, 30), "brown": (112, 66, 34), "blonde": (236, 200, 108), "red": (200, 74, 28),
    "grey": (150, 150, 154), "white": (242, 240, 234), "blue": (40, 100, 226), "pink": (244, 110, 186),
}
EYE: dict[str, Colour] = {"brown": (110, 62, 26), "blue": (50, 130, 235), "green": (40, 165, 70), "grey": (128, 138, 150)}
BACKDROP: dict[str, Colour] = {
    "red": (206, 72, 72), "orange": (236, 146, 58), "yellow": (236, 212, 86), "green": (104, 176, 84),
    "teal": (42, 158, 152), "blue": (78, 128, 212), "purple": (142, 98, 192), "grey": (150, 150, 150),
}
SHIRTS: tuple[Colour, ...] = (
    (58, 68, 92), (176, 58, 58), (66, 118, 170), (232, 232, 226), (86, 138, 86), (204, 162, 60),
    (118, 78, 140), (40, 40, 46), (220, 120, 60), (90, 170, 170),
)
ACCESSORY: tuple[Colour, ...] = (
    (210, 40, 40), (36, 78, 184), (36, 140, 70), (110, 192, 240), (236, 194, 36), (236, 112, 28),
    (122, 58, 156), (244, 244, 238), (240, 120, 170),
)
METALS: tuple[Colour, ...] = ((246, 204, 66), (222, 226, 236), (236, 60, 120))

_Y, _X = (np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5)


def _jitter(c: Colour, u: float, amount: float) -> Colour:
    return mul(c, 1.0 + amount * (2 * u - 1))


# ---- background and light ---------------------------------------------------------------------------
def backdrop(kind: str, colour: str, u: np.ndarray) -> np.ndarray:
    """The background (SIZE, SIZE, 3) float32, anti-aliased analytically."""
    base = np.array(BACKDROP[colour], np.float32)
    light = base + (255 - base) * 0.42
    if kind == "solid":
        return np.broadcast_to(base, (SIZE, SIZE, 3)).copy()
    if kind == "gradient":
        a = math.radians(lerp(60, 120, u[0]))  # mostly top to bottom
        t = np.clip((_X - 32) * math.cos(a) + (_Y - 32) * math.sin(a), -32, 32)[..., None] / 64 + 0.5
        return light + (base * 0.78 - light) * t
    if kind == "stripes":
        a = math.radians((0, 45, 90, 135)[int(u[0] * 4)])
        period = lerp(7.0, 10.0, u[1])
        d = ((_X * math.cos(a) + _Y * math.sin(a)) / period + u[2]) % 1.0
        cover = np.clip((np.abs(d - 0.5) - 0.25) * period + 0.5, 0, 1)[..., None]
    else:  # dots, rows offset by half a step
        step, r = lerp(7.5, 10.0, u[1]), lerp(1.6, 2.3, u[3])
        gy = _Y / step + u[2]
        gx = _X / step + u[4] + 0.5 * (np.floor(gy) % 2)
        d = np.hypot(gx % 1.0 - 0.5, gy % 1.0 - 0.5) * step
        cover = np.clip(r - d + 0.5, 0, 1)[..., None]
    return base + (light - base) * cover


def _light(hx: float, hy: float, hrx: float, hry: float, lx: float) -> np.ndarray:
    """Per-pixel light factor (SIZE, SIZE): Lambert on a sphere around the head, a soft gradient elsewhere."""
    ly, lz = -0.35, 0.75
    norm = math.sqrt(lx * lx + ly * ly + lz * lz)
    lx, ly, lz = lx / norm, ly / norm, lz / norm
    u, v = (_X - hx) / hrx, (_Y - hy) / hry
    r2 = u * u + v * v
    lam = np.clip(u * lx + v * ly + np.sqrt(np.clip(1 - r2, 0, 1)) * lz, 0, 1)
    sphere = 0.8 + 0.26 * lam
    flat = 1.0 + 0.12 * ((_X - 32) * lx + (_Y - 32) * ly) / 32
    w = np.clip((1.3 - np.sqrt(r2)) / 0.35, 0, 1)
    return w * sphere + (1 - w) * flat


# ---- the whole face ---------------------------------------------------------------------------------
def _dist(a: Colour, b: Colour) -> int:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True))


def _luma(c: Colour) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _palette(a: dict[str, str], col: np.ndarray, det: np.ndarray, femme: bool) -> dict[str, Colour]:
    """This face's colours: base colours per attribute with a little jitter, plus the derived shades."""
    skin = _jitter(SKIN[a["skin_tone"]], col[0], 0.04)
    hair = _jitter(HAIR[a["hair_colour"]], col[1], 0.06)
    brow = {"white": (200, 198, 192), "grey": (110, 110, 116), "blonde": (150, 108, 48)}.get(
        a["hair_colour"], mul(hair, 0.8) if a["hair_colour"] in ("black", "brown", "red") else (60, 40, 28)
    )
    if _luma(brow) > 0.5 * _luma(skin):  # brows must read against the skin, also pale on pale
        brow = mul(brow, 0.5 * _luma(skin) / _luma(brow))
    lipstick = femme and det[0] < 0.6
    backdrop = BACKDROP[a["background_colour"]]
    far = [c for c in ACCESSORY if min(_dist(c, hair), _dist(c, backdrop)) > 150] or list(ACCESSORY)
    hat = far[int(det[5] * len(far))]
    return {
        "skin": skin, "skin_edge": mul(skin, 0.72), "hair": hair, "brow": brow,
        "hair_edge": mul(hair, 0.6) if a["hair_colour"] != "black" else (74, 70, 76),
        "eye": _jitter(EYE[a["eye_colour"]], col[3], 0.05),
        "lip": mix(skin, (200, 36, 60), 0.72) if lipstick else mix(skin, (176, 70, 74), 0.45 if femme else 0.32),
        "shirt": SHIRTS[int(col[2] * len(SHIRTS))], "tie": ACCESSORY[int(det[1] * len(ACCESSORY))],
        "hat": hat, "trim": far[(int(det[5] * len(far)) + 1 + int(det[6] * 5)) % len(far)],
        "frame": ((24, 24, 30), (24, 24, 30), (110, 64, 30), (168, 136, 60))[int(det[4] * 4)],
        "metal": METALS[int(det[7] * len(METALS))],
    }


SHOULDER_TOP = 50.0  # y of the top of the shoulders


def _body(pen: Pen, bx: float, chin: float, g: str, femme: bool, p: dict[str, Colour], collar: bool) -> None:
    """Neck, neckline, and the chin's soft shadow on the neck: drawn over the shoulders and back hair."""
    skin, shirt, top = p["skin"], p["shirt"], SHOULDER_TOP
    neck = {"man": 5.8, "woman": 4.6}.get(g, 5.2)
    pen.poly([(bx - neck, chin - 8), (bx + neck, chin - 8), (bx + neck, top + 1.5), (bx - neck, top + 1.5)], skin)
    if femme:  # scoop neckline
        pen.ellipse(bx, top + 1.8, neck + 3.6, 3.6, skin)
    else:
        pen.ellipse(bx, top + 1.5, neck + 1.0, 2.3, skin)
        if collar:  # shirt collar points
            light = mix(shirt, WHITE, 0.35)
            for side in (-1.0, 1.0):
                pts = [(bx + side * (neck + 1.4), top - 0.4), (bx + side * 0.6, top + 4.2), (bx + side * (neck + 4.2), top + 2.6)]
                pen.poly(pts, light, mul(shirt, 0.6), 0.3)
        else:
            pen.line(ellipse_pts(bx, top + 1.5, neck + 1.0, 2.3, t0=0.15, t1=math.pi - 0.15, n=9), mul(shirt, 0.7), 0.6)
    for depth, shade in ((3.8, 0.84), (2.4, 0.7)):  # soft edge in two steps
        xs = np.linspace(-neck, neck, 9)
        low = chin - 1.0 + depth * np.sqrt(np.clip(1 - (xs / (neck + 1.5)) ** 2, 0, 1))
        pen.poly(np.concatenate([[(bx - neck, chin - 4.0), (bx + neck, chin - 4.0)],
                                 np.stack([bx + xs[::-1], low[::-1]], axis=1)]), mul(skin, shade))


def draw_face(a: dict[str, str], look: np.ndarray) -> np.ndarray:
    """One face (SIZE, SIZE, 3) uint8 from attributes `a` and LOOK_SLOTS uniforms `look`."""
    pose, col, det, bg, hair_u = look[0:16], look[16:32], look[32:64], look[64:80], look[80:]
    g = a["gender"]
    femme = g == "woman" or (g == "person" and det[8] < 0.5)  # lashes, lipstick, scoop neckline
    scale = lerp(1.0, 1.1, pose[0]) * (0.97 if g == "woman" else 1.0)
    hx, hy = 32 + lerp(-2.0, 2.0, pose[1]), 27.5 + lerp(-1.5, 1.5, pose[2])
    tilt = lerp(-7.0, 7.0, pose[3])
    f = Face(a["face_shape"], g, pose[4])
    p = _palette(a, col, det, femme)
    skin, hair, edge = p["skin"], p["hair"], p["hair_edge"]

    canvas = Image.new("RGBA", (SIZE * SS, SIZE * SS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    body = Pen(draw, 0.0, 0.0, 1.0)
    head = Pen(draw, hx, hy, scale, tilt, pivot=(0.0, 0.8 * f.ry))
    bx = 32 + 0.6 * (hx - 32)

    width = {"man": 27.0, "woman": 23.0}.get(g, 25.0)
    body.ellipse(bx, SHOULDER_TOP + 18.0, width, 18.0, p["shirt"], mul(p["shirt"], 0.7), 0.4)
    hair_back(head, f, a["hair_style"], hair, edge, p["tie"], hair_u)
    _body(body, bx, hy + scale * f.ry, g, femme, p, collar=det[9] < 0.5)
    for side in (-1.0, 1.0):
        head.ellipse(side * f.rx * 0.97, f.ey + 1.4, 2.0, 3.2, skin, p["skin_edge"], 0.35)
        head.ellipse(side * f.rx * 0.99, f.ey + 1.4, 0.9, 1.8, mul(skin, 0.86))
    head.poly(f.outline, skin, p["skin_edge"], 0.35)
    if a["expression"] == "smiling" or (femme and det[2] < 0.5):
        for side in (-1.0, 1.0):
            head.ellipse(side * 0.56 * f.rx, f.my - 2.6, 2.1, 1.1, mix(skin, (236, 96, 110), 0.22))
    if a["facial_hair"] in ("beard", "stubble"):
        facial_hair(head, f, a["facial_hair"], hair, edge, skin)
    head.line([(0.5, f.ey + 2.4), (1.3, f.ey + 4.9), (-0.2, f.ey + 5.4)], p["skin_edge"], 0.55)
    mouth(head, f, a["expression"], p["lip"])
    if a["facial_hair"] == "moustache" or (a["facial_hair"] == "beard" and det[3] < 0.7):
        facial_hair(head, f, "moustache", hair, edge, skin)
    for side in (-1.0, 1.0):
        eye(head, f, side, a["expression"], p["eye"], skin, femme)
        brow(head, f, side, a["eyebrows"], a["expression"], p["brow"])
    hair_front(head, f, a["hair_style"], hair, edge, skin, hair_u)
    if a["glasses"] != "none":
        glasses(head, f, a["glasses"], p["frame"])
    if a["headwear"] != "none":
        headwear(head, f, a["headwear"], p["hat"], p["trim"])
    if a["earrings"] != "none":
        earrings(head, f, a["earrings"], p["metal"])

    fig = np.asarray(canvas.reduce(SS), dtype=np.float32)  # (64, 64, 4), box filter; colour not premultiplied
    light = _light(hx, hy - 1.0, 1.3 * scale * f.rx, 1.25 * scale * f.ry, lerp(-0.8, 0.8, pose[5]))
    alpha = fig[..., 3:] / 255.0  # (64, 64, 1) coverage
    figure = fig[..., :3] * (light[..., None] * alpha)
    out = figure + backdrop(a["background"], a["background_colour"], bg) * (1 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
