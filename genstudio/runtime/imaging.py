"""Image arrays to files: uint8 conversion, grids, PNGs with settings in text chunks, animated GIFs (Pillow)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SETTINGS_KEY = "genstudio"  # the PNG text chunk that holds generation settings as JSON


def to_uint8(images: np.ndarray, *, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Float images in value_range, [N, C, H, W] or [N, H, W, C], to uint8 [N, H, W, C]."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected images of rank 3 or 4, got shape {x.shape}")
    if x.shape[1] in (1, 3, 4) and x.shape[-1] not in (1, 3, 4):
        x = x.transpose(0, 2, 3, 1)  # (N, H, W, C)
    if x.dtype == np.uint8:
        return x
    lo, hi = value_range
    x = (x.astype(np.float32) - lo) / (hi - lo)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def make_grid(images: np.ndarray, *, cols: int | None = None, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """uint8 [N, H, W, C] to one uint8 [rows*H, cols*W, C] image."""
    n, h, w, c = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, c), pad_value, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        grid[y:y + h, x:x + w] = images[i]
    return grid


def to_pil(image: np.ndarray):
    from PIL import Image

    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    return Image.fromarray(img)


def save_png(image: np.ndarray, path: Path, settings: dict[str, Any] | None = None) -> Path:
    """Save a uint8 image; `settings` go into a PNG text chunk so a dropped file restores them."""
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    if settings:
        info.add_text(SETTINGS_KEY, json.dumps(settings, sort_keys=True))
    _write_whole(path, lambda tmp: to_pil(image).save(tmp, format="PNG", pnginfo=info))
    return path


def _write_whole(path: Path, write) -> None:
    """`write(tmp)` then rename: never a half-written file under the real name, nor a .part left behind
    (a full disk, a failed rename)."""
    tmp = path.with_name(path.name + ".part")
    try:
        write(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_png_settings(path: Path) -> dict[str, Any] | None:
    """The settings saved by save_png, or None when the file has none (or is not a PNG)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            text = getattr(img, "text", {}) or img.info
            raw = text.get(SETTINGS_KEY)
    except (OSError, UnidentifiedImageError):
        return None
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def ping_pong(index: int, n: int) -> int:
    """The frame to show at tick `index` when playing n frames forth and back (0, 1, .., n-1, n-2, .., 1, 0, ..)."""
    k = index % (2 * n - 2 or 1)
    return k if k < n else 2 * n - 2 - k


def save_gif(frames: Sequence[np.ndarray], path: Path, *, fps: float = 12.0, scale: int = 1,
             hold_last: float = 1.0) -> Path:
    """An animated GIF from uint8 frames [H, W, C]; `scale` enlarges with nearest neighbours."""
    from PIL import Image

    if not frames:
        raise ValueError("no frames to save")
    pil = []
    for f in frames:
        img = to_pil(f).convert("RGB")
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
        pil.append(img)
    duration = [int(1000 / fps)] * len(pil)
    duration[-1] = int(1000 * hold_last)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_whole(path, lambda tmp: pil[0].save(tmp, format="GIF", save_all=True, append_images=pil[1:],
                                               duration=duration, loop=0, optimize=False))
    return path
