"""The exported GAN folder: manifest, parity, the engine's seeds, truncation, morphs and variations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genstudio.engines.gan import GanModel, nearby, seeded_z, truncate
from genstudio.runtime.registry import check_folder
from genstudio.runtime.sessions import SessionConfig, SessionPool

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gan():
    from gan_tiny import tiny_gan_folder

    return GanModel(check_folder(tiny_gan_folder(), "shipped"), SessionPool(SessionConfig(provider="cpu", threads=1)))


def test_manifest_and_parity(gan):
    from gan_tiny import TINY_COMMAND, tiny_gan_root

    m = gan.entry.manifest
    assert m.family == "gan" and m.build["command"] == TINY_COMMAND
    assert {f.role for f in m.files} >= {"mapping", "synthesis", "mean_latent", "checkpoint", "training_curves"}
    assert m.metrics["parity"]["max_abs_diff_w"] < 1e-4
    assert m.metrics["parity"]["max_abs_diff_image"] < 1e-4
    assert m.metrics["fid"] >= 0 and 0 < m.metrics["diversity"]["ratio"]
    assert "class" in m.metrics["attribute_frequencies"]
    assert m.metrics["train_steps"] == 4
    sweep = m.metrics["truncation_sweep"]  # the same draws at each psi, beside the psi = 1 headline
    assert list(sweep) == ["0.5", "0.7", "0.85"]
    assert all({"fid", "precision", "recall", "coverage", "diversity"} <= set(row) for row in sweep.values())
    assert sweep["0.5"]["diversity"] < m.metrics["diversity"]["ratio"]  # pulled toward w_avg: less varied
    curves = json.loads(gan.entry.path("training_curves").read_text())
    assert len(curves["curves"]["d_loss"]) == 4
    assert (tiny_gan_root() / "docs" / "gan-curves-fashion-mnist.png").is_file()


def test_dynamic_batch_and_shapes(gan):
    for n in (1, 3, 70):  # 70 > the engine's batch of 64: two session runs
        b = gan.sample(n, seed=1)
        assert b.z.shape == (n, gan.z_dim) and b.w.shape == (n, gan.w_dim)
        assert b.images.shape == (n, 1, 28, 28) and b.images.dtype == np.float32
        assert 0.0 <= b.images.min() and b.images.max() <= 1.0


def test_seed_reproducible(gan):
    a, b, c = gan.sample(6, seed=3), gan.sample(6, seed=3), gan.sample(6, seed=4)
    assert np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert np.array_equal(gan.sample(2, seed=3).z, a.z[:2])  # a prefix of a longer draw


def test_truncation(gan):
    mean = gan.mean_image()
    zero = gan.sample(5, seed=0, truncation=0.0)
    assert np.allclose(zero.w, gan.w_avg[None], atol=1e-6)
    assert np.allclose(zero.images, np.repeat(mean, 5, axis=0), atol=1e-5)
    full = gan.sample(5, seed=0, truncation=1.0)
    half = gan.sample(5, seed=0, truncation=0.5)
    assert np.allclose(half.w, 0.5 * (full.w + gan.w_avg[None]), atol=1e-5)
    w = np.ones((2, 3), np.float32)
    assert np.allclose(truncate(w, np.zeros(3, np.float32), 0.25), 0.25)


def test_morph_and_variations(gan):
    z = seeded_z(2, gan.z_dim, 0)
    path, images = gan.morph(z[0], z[1], steps=5)
    assert path.shape == (5, gan.z_dim) and images.shape == (5, 1, 28, 28)
    assert np.allclose(path[0], z[0]) and np.allclose(path[-1], z[1])
    norms = np.linalg.norm(path, axis=1)  # slerp between similar-norm points stays near their norms
    assert norms.min() > 0.8 * min(np.linalg.norm(z, axis=1))
    with pytest.raises(ValueError):
        gan.morph(z[0], z[1], steps=1)
    zs, imgs = gan.variations(z[0], n=4, strength=0.2, seed=1)
    assert zs.shape == (4, gan.z_dim) and imgs.shape == (4, 1, 28, 28)
    assert np.allclose(nearby(z[0], 3, 0.0, 0), z[0][None])
    with pytest.raises(ValueError):
        gan.map(np.zeros((1, gan.z_dim + 1), np.float32))
