"""Test helper: a tiny PixelCNN on fake Fashion-MNIST, trained for a few steps by the real pipeline, once."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from session_dirs import session_dir

TINY_PIXELCNN = "pixelcnn-fashion-mnist"
TINY_COMMAND = "genstudio export pixelcnn --steps 6 --width 8 --layers 3 (tiny test)"


def tiny_config(**changes):
    """The tiny build's configuration (3 layers of 8 channels, 6 steps, 10 FID samples), with changes."""
    from vae_tiny import tiny_data

    from genstudio.export.pixelcnn.build import PixelCnnBuild
    from genstudio.export.pixelcnn.model import PixelCnnConfig
    from genstudio.export.trainer import TrainerConfig

    cfg = PixelCnnBuild(model=PixelCnnConfig(dim=8, layers=3, head=16),
                        trainer=TrainerConfig(steps=6, batch_size=8, warmup=2), n_train=64, n_test=40,
                        n_fid=10, n_class_samples=10, n_parity=4, threads=1, data_dir=str(tiny_data()))
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


@functools.cache
def tiny_pixelcnn_root() -> Path:
    """A models root holding eval-fashion-mnist (copied from vae_tiny's) and pixelcnn-fashion-mnist."""
    import torch
    from vae_tiny import TINY_EVAL, tiny_vae_root

    from genstudio.export.pixelcnn.build import build_pixelcnn

    torch.set_num_threads(1)
    root = session_dir("genstudio-pixelcnn-tiny-")
    shutil.copytree(tiny_vae_root() / TINY_EVAL, root / TINY_EVAL)
    build_pixelcnn(tiny_config(), root, command=TINY_COMMAND)
    return root


def tiny_pixelcnn_folder() -> Path:
    return tiny_pixelcnn_root() / TINY_PIXELCNN
