"""The VAE engine on the tiny model: encode/decode shapes, seeds, slerp, arithmetic, planes, KL, ELBO, the views."""

from __future__ import annotations

import numpy as np
import pytest

from genstudio.engines import vae as V

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    from vae_tiny import TINY_VAE, tiny_vae_root

    from genstudio.runtime.registry import Registry
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    entry = Registry([(tiny_vae_root(), "shipped")]).get(TINY_VAE)
    return V.VaeModel(entry, SessionPool(SessionConfig(provider="cpu", threads=1)))


def test_encode_decode_shapes(model):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    mu, logvar = model.encode(images)
    assert mu.shape == logvar.shape == (5, 2)
    assert model.encode(np.pad(images, ((0, 0), (2, 2), (2, 2))))[0] == pytest.approx(mu, abs=1e-5)  # 32x32 input
    out = model.decode(mu)
    assert out.shape == (5, 1, 28, 28) and out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    z, recon = model.reconstruct(images)
    assert np.allclose(z, mu) and recon.shape == out.shape
    err = model.reconstruction_error(images)
    assert err.shape == (5,) and (err >= 0).all()
    assert np.allclose(err, ((recon - images[:, None] / 255.0) ** 2).reshape(5, -1).mean(1), atol=1e-6)
    with pytest.raises(ValueError):
        model.decode(np.zeros((1, 3), np.float32))


def test_samples_are_reproducible_by_seed(model):
    z1, x1 = model.sample(4, seed=3)
    z2, x2 = model.sample(4, seed=3)
    z3, _ = model.sample(4, seed=4)
    assert np.array_equal(z1, z2) and np.array_equal(x1, x2) and not np.array_equal(z1, z3)


def test_slerp_and_linear_endpoints():
    a, b = np.array([1.0, 0.0, 0.0], np.float32), np.array([0.0, 2.0, 0.0], np.float32)
    for mode in ("linear", "slerp"):
        path = V.interpolate(a, b, 7, mode)
        assert path.shape == (7, 3) and np.allclose(path[0], a) and np.allclose(path[-1], b)
    mid = V.slerp(np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.5)[0]
    assert np.linalg.norm(mid) == pytest.approx(1.0, abs=1e-6)  # stays on the sphere, unlike the chord
    assert np.allclose(V.slerp(a, a, 0.3), a)  # parallel: no division by zero
    with pytest.raises(ValueError):
        V.interpolate(a, b, 1)


def test_arithmetic_and_kl():
    assert np.allclose(V.arithmetic(np.ones(3), np.zeros(3), np.full(3, 2.0)), 3.0)
    rng = np.random.default_rng(0)
    kl = V.kl_per_dim(rng.standard_normal((50, 4)), rng.standard_normal((50, 4)))
    assert kl.shape == (50, 4) and (kl >= 0).all()
    assert np.allclose(V.kl_per_dim(np.zeros((1, 2)), np.zeros((1, 2))), 0.0)


def test_planes():
    codes = np.random.default_rng(1).standard_normal((300, 6)) * np.array([5, 3, 1, 1, 1, 1])
    plane, explained = V.pca_plane(codes)
    assert np.allclose(plane.axes @ plane.axes.T, np.eye(2), atol=1e-5) and explained[0] > explained[1]
    assert abs(plane.axes[0, 0]) > 0.9  # the widest direction first
    uv = np.array([[0.5, -1.0]], np.float32)
    assert np.allclose(plane.project(plane.to_latent(uv)), uv, atol=1e-5)
    ap = V.axis_plane(codes, 2, 4)
    assert ap.names == ("z3", "z5") and ap.to_latent(uv)[0, 2] == pytest.approx(ap.centre[2] + 0.5)
    assert plane.grid(4).shape == (16, 2)
    with pytest.raises(ValueError):
        V.axis_plane(codes, 1, 1)


def test_default_plane_heldout_and_evaluate(model):
    plane, explained = model.default_plane()
    assert explained is None and plane.names == ("z1", "z2")  # a 2-D latent is its own map
    held = model.heldout()
    assert held.codes.shape == (40, 2) and held.labels.shape == (40, 1) and held.images.shape == (8, 28, 28)
    assert list(held.heads) == ["class"] and len(held.heads["class"]) == 10
    from genstudio.runtime.jobs import drive

    images = np.random.default_rng(0).integers(0, 256, (30, 28, 28)).astype(np.uint8)
    m = drive(model.evaluate(images, batch=16))
    assert m["n_images"] == 30 and m["bits_per_dim"] > 0 and len(m["kl_per_dim_nats"]) == 2
    assert min(m["kl_per_dim_nats"]) >= 0 and m["reconstruction_mse"] >= 0
    assert model.kl_by_dimension().shape == (2,)


def test_view_jobs(model, tmp_path):
    from genstudio.engines.vae_view import interpolation_frames, load_view, save_interpolation_gif
    from genstudio.runtime.jobs import drive

    view = drive(load_view(model.entry, model.pool, grid=6))
    assert view.mosaic.shape == (6 * 28, 6 * 28, 3) and view.mosaic.dtype == np.uint8 and view.decode_ms > 0
    path, frames = drive(interpolation_frames(model, np.zeros(2), np.ones(2), 5, "slerp"))
    assert path.shape == (5, 2) and frames.shape == (5, 28, 28, 3)
    out = drive(save_interpolation_gif(frames, tmp_path / "a.gif", scale=2))
    from PIL import Image

    with Image.open(out) as gif:
        assert gif.n_frames == 8 and gif.size == (56, 56)  # forth and back
