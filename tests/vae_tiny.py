"""Test helpers: a tiny evaluator and a tiny 2-D VAE, built once per session by the real pipeline on fake data."""

from __future__ import annotations

import functools
from pathlib import Path

from flow_tiny import make_fake_dataset
from session_dirs import session_dir

TINY_VAE = "vae-fashion-mnist"
TINY_EVAL = "eval-fashion-mnist"


@functools.cache
def tiny_data() -> Path:
    """A fake Fashion-MNIST folder: 64 training and 40 test images of random pixels."""
    return make_fake_dataset(session_dir("genstudio-vae-data-"), n_train=64, n_test=40)


@functools.cache
def tiny_vae_root() -> Path:
    """A models root holding eval-fashion-mnist and vae-fashion-mnist, each trained for a few steps."""
    import torch

    from genstudio.export.evaluator.build import EvaluatorBuild, build_evaluator
    from genstudio.export.trainer import TrainerConfig
    from genstudio.export.vae.build import VaeBuild, build_vae
    from genstudio.export.vae.model import VaeConfig

    torch.set_num_threads(1)
    root = session_dir("genstudio-vae-tiny-")
    data = str(tiny_data())
    build_evaluator(EvaluatorBuild(dataset="fashion-mnist", trainer=TrainerConfig(steps=4, batch_size=16, warmup=2),
                                   n_train=64, n_test=40, widths=(4, 8), n_reference_features=40, data_dir=data),
                    root, command="genstudio export evaluator --dataset fashion-mnist --steps 4 (tiny test)")
    build_vae(VaeBuild(dataset="fashion-mnist", vae=VaeConfig(latent=2, widths=(4, 8), hidden=16),
                       trainer=TrainerConfig(steps=6, batch_size=16, warmup=2), n_train=64, n_heldout=40,
                       n_codes=40, n_images=8, n_fid=20, latency_runs=5, data_dir=data),
              root, command="genstudio export vae --dataset fashion-mnist --steps 6 (tiny test)")
    return root


def tiny_vae_folder() -> Path:
    return tiny_vae_root() / TINY_VAE
