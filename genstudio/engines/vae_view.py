"""What the VAE Explorer shows, as job generators: the opened model with its map, decoded mosaics, interpolations.

    view = drive(load_view(entry, pool, grid=16))    # VaeView: model, held-out codes, plane, mosaic, latency
    mosaic = drive(decode_mosaic(view.model, view.plane, 16))   # uint8 (16*H, 16*W, 3)
    frames = drive(interpolation_frames(model, a, b, 12, "slerp"))  # uint8 (12, H, W, 3)

numpy and ONNX Runtime only; results are arrays and small dataclasses, never Qt objects.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from genstudio.engines.vae import HeldOut, Plane, VaeModel, interpolate
from genstudio.runtime.imaging import to_uint8
from genstudio.runtime.jobs import Progress
from genstudio.runtime.registry import ModelEntry
from genstudio.runtime.sessions import SessionPool


def to_rgb_u8(images: np.ndarray) -> np.ndarray:
    """Decoder output (N, C, H, W) in [0, 1] to uint8 RGB (N, H, W, 3)."""
    u8 = to_uint8(images, value_range=(0.0, 1.0))
    return np.repeat(u8, 3, axis=-1) if u8.shape[-1] == 1 else u8


@dataclass
class VaeView:
    model: VaeModel
    heldout: HeldOut
    plane: Plane
    explained: np.ndarray | None  # variance shares of the principal components (None for a 2-D latent)
    mosaic: np.ndarray  # uint8 (g*H, g*W, 3): decodings of a g x g grid over the plane's extent
    grid: int  # g
    decode_ms: float  # median batch-1 decode time through ONNX Runtime, measured on this machine
    kl: np.ndarray  # (latent,) mean KL per dimension over the held-out set, nats


def measure_decode_ms(model: VaeModel, runs: int = 30) -> float:
    """Median wall time of one batch-1 decode (after a warm-up), milliseconds."""
    z = np.zeros((1, model.latent_dim), np.float32)
    model.decode(z)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.decode(z)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def mosaic_from(images: np.ndarray, grid: int) -> np.ndarray:
    """(g*g, C, H, W) decodings, row-major with row 0 at the top, to one uint8 (g*H, g*W, 3) picture."""
    rgb = to_rgb_u8(images)  # (g*g, H, W, 3)
    _, h, w, _ = rgb.shape
    return rgb.reshape(grid, grid, h, w, 3).transpose(0, 2, 1, 3, 4).reshape(grid * h, grid * w, 3)


def decode_mosaic(model: VaeModel, plane: Plane, grid: int, rows_per_step: int = 4
                  ) -> Generator[Progress, None, np.ndarray]:
    """Decode a grid x grid lattice over the plane, a few rows per step (each step is a cancel point)."""
    uv = plane.grid(grid)
    parts = []
    for r in range(0, grid, rows_per_step):
        z = plane.to_latent(uv[r * grid:(r + rows_per_step) * grid])
        parts.append(model.decode(z))
        yield Progress(min(r + rows_per_step, grid), grid, "decoding the map")
    return mosaic_from(np.concatenate(parts), grid)


def load_view(entry: ModelEntry, pool: SessionPool, grid: int = 16) -> Generator[Progress, None, VaeView]:
    """Open the model, read its held-out codes, pick the default plane, decode the background, time a decode."""
    yield Progress(0, grid + 2, f"opening {entry.name}")
    model = VaeModel(entry, pool)
    held = model.heldout()
    plane, explained = model.default_plane()
    decode_ms = measure_decode_ms(model)
    yield Progress(1, grid + 2, f"decode {decode_ms:.2f} ms")
    mosaic = yield from decode_mosaic(model, plane, grid)
    return VaeView(model, held, plane, explained, mosaic, grid, decode_ms, model.kl_by_dimension())


def interpolation_frames(model: VaeModel, a: np.ndarray, b: np.ndarray, steps: int, mode: str = "linear"
                         ) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray]]:
    """The latent path from a to b (steps, latent) and its decodings, uint8 RGB (steps, H, W, 3)."""
    path = interpolate(a, b, steps, mode)
    frames = []
    for i in range(0, steps, 8):
        frames.append(to_rgb_u8(model.decode(path[i:i + 8])))
        yield Progress(min(i + 8, steps), steps, "interpolating")
    return path, np.concatenate(frames)


def save_interpolation_gif(frames: np.ndarray, path, *, fps: float = 12.0, scale: int = 4,
                           bounce: bool = True) -> Generator[Progress, None, str]:
    """Write the frames (forth and back when bounce) as an animated GIF, enlarged `scale` times."""
    from genstudio.runtime.imaging import save_gif

    seq = list(frames) + (list(frames[-2:0:-1]) if bounce else [])
    yield Progress(0, 1, "writing GIF")
    out = save_gif(seq, path, fps=fps, scale=scale, hold_last=1.0 / fps)
    yield Progress(1, 1, f"wrote {out}")
    return str(out)
