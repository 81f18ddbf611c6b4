"""The flow engine (numpy + ONNX Runtime): grid densities integrate to 1, seeds reproduce, trajectories line up."""

from __future__ import annotations

import numpy as np
import pytest
from flow_tiny import TINY_NAME, tiny_flow_root

from genstudio.engines.flow import FlowModel, grid_points, is_2d_flow, load_view, open_flow
from genstudio.engines.flow_render import colorize, render_density, scale_log_density
from genstudio.runtime.jobs import Progress, drive
from genstudio.runtime.registry import Registry
from genstudio.runtime.sessions import SessionConfig, SessionPool

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flow():
    entry = Registry([(tiny_flow_root(), "shipped")]).get(TINY_NAME)
    assert is_2d_flow(entry)
    model = open_flow(entry, SessionPool(SessionConfig(provider="cpu", threads=1)))
    assert isinstance(model, FlowModel)
    return model


def test_grid_density_integrates_to_one_over_a_wide_square(flow):
    grid = drive(flow.density_grid(400, (-14.0, 14.0, -14.0, 14.0)))
    assert grid.log_p.shape == (400, 400)
    assert grid.integral() == pytest.approx(1.0, abs=5e-3)


def test_grid_over_the_model_range_matches_the_recorded_integral(flow):
    steps = []
    grid = drive(flow.density_grid(128), steps.append)
    assert all(isinstance(s, Progress) for s in steps) and steps[-1].step == steps[-1].total
    assert grid.range == flow.range
    assert grid.integral() == pytest.approx(flow.manifest.metrics["integral"]["value"], abs=1e-5)


def test_grid_rows_run_along_y(flow):
    grid = drive(flow.density_grid(16))
    pts = grid_points(flow.range, 16)
    assert np.allclose(grid.log_p.ravel(), flow.log_prob(pts), atol=1e-5)
    x0, x1, y0, y1 = flow.range
    i, j = 3, 11  # row 3 from the bottom, column 11
    cell = np.array([[x0 + (j + 0.5) * (x1 - x0) / 16, y0 + (i + 0.5) * (y1 - y0) / 16]], np.float32)
    assert grid.log_p[i, j] == pytest.approx(flow.log_prob(cell)[0], abs=1e-5)
    assert grid.value_at(*cell[0]) == pytest.approx(grid.log_p[i, j])
    assert grid.value_at(x1 + 1, 0.0) is None


def test_same_seed_same_samples_other_seed_other_samples(flow):
    a, b, c = flow.sample(500, seed=7), flow.sample(500, seed=7), flow.sample(500, seed=8)
    assert a.shape == (500, 2) and np.array_equal(a, b) and not np.allclose(a, c)


def test_trajectory_runs_from_the_base_to_the_samples(flow):
    z = flow.base_noise(50, seed=1)
    x, layers = flow.push(z)
    assert layers.shape == (flow.n_layers + 1, 50, 2)
    assert np.allclose(layers[0], z) and np.allclose(layers[-1], x)
    assert np.array_equal(drive(flow.sample_job(50, seed=1)), flow.sample_layers(50, seed=1))
    lines = flow.grid_lines(lines=5, points=9)
    assert lines.shape == (flow.n_layers + 1, 10, 9, 2)
    assert np.allclose(lines[0, 0, :, 1], -3.0)  # the first horizontal line of the base grid


def test_heldout_nll_and_evaluate_reproduce_model_json(flow):
    assert flow.heldout_nll() == pytest.approx(flow.manifest.metrics["heldout_nll_nats"], rel=1e-5)
    result = drive(flow.evaluate(integral_grid=128))
    assert result["heldout_nll_nats"] == pytest.approx(result["recorded_heldout_nll_nats"], rel=1e-5)
    assert result["integral"] == pytest.approx(result["recorded_integral"], abs=1e-5)
    assert result["true_entropy_nats"] == pytest.approx(2.1443, abs=1e-3)


def test_load_view_gives_the_tab_everything(flow):
    model, view = drive(load_view(flow.entry, flow.pool, n_grid=256, n_samples=300, seed=2))
    assert view.grid.log_p.shape == (256, 256)
    assert view.samples.shape == (300, 2) and np.array_equal(view.samples, model.sample(300, seed=2))
    assert view.sample_layers.shape[0] == view.grid_lines.shape[0] == model.n_layers + 1
    assert view.train.shape[1] == 2 and np.isfinite(view.heldout_nll)


def test_render_density_and_scales(flow):
    grid = drive(flow.density_grid(64))
    v, lo, hi = scale_log_density(grid.log_p, "log")
    assert v.min() >= 0 and v.max() == 1 and hi - lo == pytest.approx(10.0)
    lin, _, top = scale_log_density(grid.log_p, "linear")
    assert lin.max() == pytest.approx(1.0) and top == pytest.approx(np.exp(grid.log_p.max()), rel=1e-5)
    assert colorize(v).shape == (64, 64, 3)
    img = render_density(grid.log_p, grid.range, flow.sample(20), size=128)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
