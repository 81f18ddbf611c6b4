"""The 2-D test densities: samplers agree with their log-densities, densities normalise, entropies are right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genstudio.export.flow import densities as D


@pytest.mark.parametrize("name", D.NAMES)
def test_samples_have_finite_log_density_and_lie_in_the_range(name):
    d = D.get(name)
    x = d.sample(2000, np.random.default_rng(0))
    assert x.shape == (2000, 2) and x.dtype == np.float32
    assert np.isfinite(d.log_prob(x)).all()  # every sample lies where the density is positive
    x0, x1, y0, y1 = d.range
    inside = (x[:, 0] > x0) & (x[:, 0] < x1) & (x[:, 1] > y0) & (x[:, 1] < y1)
    assert inside.mean() > 0.995


def test_same_seed_same_samples():
    d = D.get("moons")
    a = d.sample(100, np.random.default_rng(3))
    b = d.sample(100, np.random.default_rng(3))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("name", ["moons", "8gaussians", "checkerboard", "icon"])
def test_log_density_integrates_to_one(name):
    d = D.get(name)
    x0, x1, y0, y1 = d.range
    pts, area = D.grid((x0 - 1, x1 + 1, y0 - 1, y1 + 1), 300)
    assert np.exp(d.log_prob(pts)).sum() * area == pytest.approx(1.0, abs=2e-3)


def test_checkerboard_entropy_is_the_log_area():
    e = D.Checkerboard().entropy()
    assert e.exact and e.nats == pytest.approx(math.log(32.0))


@pytest.mark.parametrize("name", ["checkerboard", "icon", "8gaussians"])
def test_entropy_agrees_with_monte_carlo(name):
    d = D.get(name)
    x = d.sample(40000, np.random.default_rng(1))
    mc = -d.log_prob(x)
    assert d.entropy().nats == pytest.approx(mc.mean(), abs=4 * mc.std() / math.sqrt(len(mc)) + 1e-3)


def test_eight_gaussians_entropy_is_close_to_the_separated_formula():
    e = D.eight_gaussians().entropy()
    assert not e.exact and "estimate" in e.method
    assert e.nats == pytest.approx(math.log(8) + math.log(2 * math.pi * math.e * 0.25**2), abs=1e-3)


def test_picture_weights_bright_and_dark():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, :3] = 255  # white
    rgba[0, 1, :3] = (40, 100, 200)  # saturated blue
    rgba[1, 0, 3] = 0  # transparent (and black)
    bright = D.picture_weights(rgba, mode="bright")
    dark = D.picture_weights(rgba, mode="dark")
    assert bright[0, 0] == 1.0 and bright[0, 1] == 0.0 and bright[1, 0] == 0.0
    assert dark[1, 1] == 1.0 and dark[0, 0] == 0.0 and dark[1, 0] == 0.0
    with pytest.raises(ValueError):
        D.picture_weights(rgba, mode="grey")


def test_picture_density_puts_mass_only_on_weighted_pixels():
    w = np.zeros((4, 4))
    w[0, 3] = 1.0  # the top-right pixel: x in [2, 4], y in [2, 4] for half = 4
    d = D.PictureDensity("t", "t", w)
    x = d.sample(500, np.random.default_rng(0))
    assert (x[:, 0] >= 2).all() and (x[:, 1] >= 2).all()
    assert d.entropy().nats == pytest.approx(math.log(4.0))  # uniform on a 2 x 2 square
    assert d.log_prob(np.array([[-3.0, -3.0]]))[0] == -np.inf


def test_icon_density_comes_from_the_app_icon():
    d = D.get("icon")
    assert D.icon_path().is_file() and d.weights.shape == (256, 256)
    assert d.entropy().exact


def test_unknown_density_names_the_known_ones():
    with pytest.raises(KeyError, match="checkerboard"):
        D.get("nope")
