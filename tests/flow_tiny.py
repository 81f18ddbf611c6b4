"""Test helpers: tiny 2-D flow model folders built once per test session by the real export pipeline."""

from __future__ import annotations

import functools
import gzip
import struct
from pathlib import Path

import numpy as np
from session_dirs import session_dir

TINY_NAME = "flow-8gaussians-glow"


@functools.cache
def tiny_flow_root() -> Path:
    """A models root holding flow-8gaussians-glow, trained for 40 steps (a few seconds, real files)."""
    import torch

    from genstudio.export.flow.build2d import Flow2DBuild, build_flow2d
    from genstudio.export.flow.flow2d import FlowConfig
    from genstudio.export.trainer import TrainerConfig

    torch.set_num_threads(1)
    root = session_dir("genstudio-flow-tiny-")
    cfg = Flow2DBuild(density="8gaussians", arch="glow", flow=FlowConfig(n_blocks=3, hidden=16),
                      trainer=TrainerConfig(steps=40, batch_size=256, warmup=5),
                      n_train=4000, n_heldout=500, n_shipped_train=1000, integral_grid=128, timing_grid=32)
    build_flow2d(cfg, root, command="genstudio export flow --density 8gaussians --arch glow --steps 40 (tiny test)")
    return root


def tiny_flow_folder() -> Path:
    return tiny_flow_root() / TINY_NAME


def write_idx(path: Path, array: np.ndarray, *, compress: bool) -> Path:
    """An idx file as the dataset's authors write them (big-endian header, uint8 payload)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def make_fake_dataset(folder: Path, n_train: int = 12, n_test: int = 6, seed: int = 0) -> Path:
    """A folder with the four Fashion-MNIST files (train gzip-compressed, test plain), random pixels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, compress in (("train", n_train, True), ("t10k", n_test, False)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress=compress)
        write_idx(folder / f"{split}-labels-idx1-ubyte", np.arange(n) % 10, compress=compress)
    return folder
