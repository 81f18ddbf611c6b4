"""Attribute directions: the boundary fit, what the build records, and the engine's edits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genstudio.engines.gan import GanModel, seeded_z
from genstudio.export.gan.directions import (
    MIN_EDIT_SUCCESS,
    attribute_effect,
    balanced_accuracy,
    fit_boundary,
)
from genstudio.runtime.registry import check_folder
from genstudio.runtime.sessions import SessionConfig, SessionPool


def test_fit_boundary_recovers_a_known_hyperplane():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 6)) * np.array([1, 3, 0.5, 1, 2, 1])
    normal = np.array([0.0, 1.0, 0.0, 0.0, -1.0, 0.0])
    y = (x @ normal + 0.7 > 0).astype(float)
    a, b = fit_boundary(x[:3000], y[:3000], steps=800)
    cosine = a @ normal / np.linalg.norm(a) / np.linalg.norm(normal)
    assert cosine > 0.98
    assert balanced_accuracy(x[3000:] @ a + b, y[3000:]) > 0.95


def test_the_attribute_effect_holds_the_other_attributes_fixed():
    """w shifted by the attribute (along axis 0) and by a second attribute that the samples pair with it (axis 2):
    the plain mean difference drags axis 2 along, the effect with the other attribute held fixed does not."""
    rng = np.random.default_rng(0)
    y = rng.random(8000) < 0.3
    other = np.where(y, rng.random(8000) < 0.8, rng.random(8000) < 0.2).astype(int)  # paired with y
    x = rng.standard_normal((8000, 3)) * np.array([3.0, 0.1, 1.0])
    x[:, 0] += 2.0 * y
    x[:, 2] += 3.0 * other
    plain, _ = attribute_effect(x, y.astype(float))
    unit, length = attribute_effect(x, y.astype(float), [np.eye(2)[other]])
    assert abs(plain[2]) > 0.5  # the mean difference is mostly the paired attribute
    assert unit[0] > 0.99 and length == pytest.approx(2.0, rel=0.1)
    a, _ = fit_boundary(x, y.astype(float), steps=800)
    assert abs(a[0]) < 0.5 * np.linalg.norm(a)  # the logistic normal leans on the paired attribute's axis too


def test_balanced_accuracy_weighs_both_classes():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], float)
    assert balanced_accuracy(-np.ones(10), y) == pytest.approx(0.5)  # "never" is right 90% of the time, not 90%
    assert balanced_accuracy(np.where(y > 0, 1.0, -1.0), y) == 1.0


@pytest.mark.slow
def test_build_records_directions_or_why_not():
    from gan_tiny import tiny_gan_folder

    m = json.loads((tiny_gan_folder() / "model.json").read_text())
    kept, dropped = m["extra"].get("directions", []), m["extra"].get("directions_dropped", [])
    assert len(kept) + len(dropped) == 5  # the Fashion-MNIST table; a 4-step GAN may have none worth keeping
    assert all(d["note"] for d in dropped)
    assert "InterFaceGAN" in m["extra"]["directions_method"] and "held fixed" in m["extra"]["directions_method"]
    assert all(d["edit_success"]["into_at_plus_2"] >= MIN_EDIT_SUCCESS for d in kept)
    assert all("into_at_plus_2" not in d["edit_success"] or d["edit_success"]["into_at_plus_2"] < MIN_EDIT_SUCCESS
               for d in dropped)
    assert all("boundary_edit_success" in d and d["scale"] > 0 for d in kept)
    if kept:
        vectors = np.load(tiny_gan_folder() / "directions.npy")
        assert vectors.shape == (len(kept), m["extra"]["w_dim"])
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_engine_edits_move_w_along_the_directions(tmp_path):
    from gan_tiny import TINY_GAN, tiny_gan_with_directions

    root = tiny_gan_with_directions(tmp_path)
    gan = GanModel(check_folder(root / TINY_GAN, "shipped"), SessionPool(SessionConfig(provider="cpu", threads=1)))
    assert list(gan.directions) == ["first axis", "second axis"]
    z = seeded_z(2, gan.z_dim, 0)
    w = gan.map(z)
    moved = gan.edit(w, {"first axis": 1.0, "second axis": -0.5})
    delta = moved - w
    assert delta[:, 0] == pytest.approx([1.0, 1.0]) and delta[:, 1] == pytest.approx([-1.0, -1.0])
    assert np.abs(delta[:, 2:]).max() == 0
    with pytest.raises(KeyError, match="no direction 'smile'"):
        gan.edit(w, {"smile": 1.0})
    _, plain = gan.render(z[:1])
    _, edited = gan.render(z[:1], edits={"second axis": 3.0})
    assert np.abs(plain - edited).max() > 0
    path, frames = gan.morph(z[0], z[1], steps=3, edits={"first axis": 2.0})
    assert frames.shape[0] == 3


@pytest.mark.slow
def test_a_directions_file_of_the_wrong_shape_is_a_clear_error(tmp_path):
    from gan_tiny import TINY_GAN, tiny_gan_with_directions

    root = tiny_gan_with_directions(tmp_path)
    np.save(root / TINY_GAN / "directions.npy", np.zeros((1, 3), np.float32))
    gan = GanModel(check_folder(root / TINY_GAN, "shipped"), SessionPool(SessionConfig(provider="cpu", threads=1)))
    with pytest.raises(ValueError, match="directions.npy has shape"):
        _ = gan.directions
