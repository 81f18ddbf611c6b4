"""Test helper: a tiny style-based GAN on fake Fashion-MNIST, trained for a few steps by the real pipeline, once."""

from __future__ import annotations

import functools
from pathlib import Path

from session_dirs import session_dir

TINY_GAN = "gan-fashion-mnist"
TINY_COMMAND = "genstudio export gan --dataset fashion-mnist --steps 4 (tiny test)"


@functools.cache
def tiny_gan_root() -> Path:
    """A models root holding eval-fashion-mnist (from vae_tiny) and gan-fashion-mnist trained for 4 steps."""
    import torch
    from vae_tiny import tiny_data, tiny_vae_root

    from genstudio.export.gan.build import GanBuild, build_gan
    from genstudio.export.gan.generator import GanConfig
    from genstudio.export.gan.train import GanTrainConfig

    torch.set_num_threads(1)
    root = session_dir("genstudio-gan-tiny-")
    build_gan(GanBuild(dataset="fashion-mnist",
                       gan=GanConfig(z_dim=8, w_dim=8, mapping_layers=2, g_widths=(8, 8, 4, 4), d_widths=(4, 4, 8, 8)),
                       train=GanTrainConfig(steps=4, batch_size=8, r1_every=2), n_train=64, n_mean=1000, n_fid=40, n_directions=400,
                       evaluator_root=str(tiny_vae_root()), data_dir=str(tiny_data())),
              root, command=TINY_COMMAND, docs_dir=root / "docs")
    return root


def tiny_gan_folder() -> Path:
    return tiny_gan_root() / TINY_GAN


def tiny_gan_with_directions(dest: Path) -> Path:
    """A copy of the tiny GAN's root with two made-up attribute directions (the 4-step model has no real ones)."""
    import json
    import shutil

    import numpy as np

    root = Path(dest) / "models"
    shutil.copytree(tiny_gan_root(), root)
    folder = root / TINY_GAN
    data = json.loads((folder / "model.json").read_text())
    w_dim = data["extra"]["w_dim"]
    vectors = np.eye(w_dim, dtype=np.float32)[:2]
    np.save(folder / "directions.npy", vectors)
    data["files"] = [f for f in data["files"] if f["role"] != "directions"] + [
        {"path": "directions.npy", "role": "directions"}]
    data["extra"]["directions"] = [
        {"name": "first axis", "head": "class", "positive": ["Bag"], "index": 0, "scale": 1.0,
         "boundary_accuracy": 0.9, "edit_success": {"into_at_plus_2": 0.5, "out_of_at_minus_2": 0.75}},
        {"name": "second axis", "head": "class", "positive": ["Dress"], "index": 1, "scale": 2.0,
         "boundary_accuracy": 0.8, "edit_success": {}}]
    (folder / "model.json").write_text(json.dumps(data, indent=2))
    return root
