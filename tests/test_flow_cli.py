"""`genstudio generate flow` and `genstudio evaluate flow` on the tiny model: JSON, the .npy grid, the PNG."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flow_tiny import TINY_NAME, tiny_flow_root

from genstudio.cli import main
from genstudio.runtime.imaging import read_png_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_models(monkeypatch):
    monkeypatch.setenv("GENSTUDIO_MODELS", str(tiny_flow_root()))


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_generate_writes_density_npy_and_png(tiny_models, tmp_path, capsys):
    npy, png = tmp_path / "p.npy", tmp_path / "p.png"
    out = run_json(capsys, ["generate", "flow", "--model", TINY_NAME, "--n", "200", "--seed", "3", "--grid", "64",
                            "--density-out", str(npy), "--out", str(png), "--json", "--threads", "1"])
    assert out["model"] == TINY_NAME and out["n"] == 200 and out["grid"] == 64
    x0, x1, y0, y1 = out["range"]
    assert x0 < x1 and y0 < y1
    p = np.load(npy)
    assert p.shape == (64, 64) and p.dtype == np.float32 and (p >= 0).all()
    cell = (x1 - x0) * (y1 - y0) / p.size
    assert float(p.sum() * cell) == pytest.approx(out["integral"], rel=1e-5)
    assert read_png_settings(png)["model"] == TINY_NAME
    assert out["written"] == {"density_out": str(npy), "out": str(png)}


def test_generate_rows_are_along_y(tiny_models, tmp_path, capsys):
    from genstudio.engines.flow import FlowModel
    from genstudio.runtime.registry import Registry
    from genstudio.runtime.sessions import SessionPool

    npy = tmp_path / "p.npy"
    out = run_json(capsys, ["generate", "flow", "--model", TINY_NAME, "--grid", "8", "--density-out", str(npy),
                            "--json"])
    x0, x1, y0, y1 = out["range"]
    p = np.load(npy)
    model = FlowModel(Registry().get(TINY_NAME), SessionPool())
    # row 1 (second from the bottom), column 6
    point = np.array([[x0 + 6.5 * (x1 - x0) / 8, y0 + 1.5 * (y1 - y0) / 8]], np.float32)
    assert p[1, 6] == pytest.approx(float(np.exp(model.log_prob(point)[0])), rel=1e-4)


def test_generate_same_seed_same_samples(tiny_models, tmp_path, capsys):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    for path in (a, b):
        run_json(capsys, ["generate", "flow", "--model", TINY_NAME, "--n", "50", "--seed", "11", "--grid", "4",
                          "--samples-out", str(path), "--json"])
    assert np.array_equal(np.load(a), np.load(b)) and np.load(a).shape == (50, 2)


def test_generate_all_renders_one_picture(tiny_models, tmp_path, capsys):
    png = tmp_path / "all.png"
    out = run_json(capsys, ["generate", "flow", "--model", "all", "--grid", "32", "--n", "50", "--out", str(png),
                            "--json"])
    assert [m["model"] for m in out["models"]] == [TINY_NAME] and png.is_file()


def test_evaluate_recomputes_the_recorded_numbers(tiny_models, capsys):
    out = run_json(capsys, ["evaluate", "flow", "--model", TINY_NAME, "--grid", "128", "--json"])
    assert out["heldout_nll_nats"] == pytest.approx(out["recorded_heldout_nll_nats"], rel=1e-5)
    assert out["integral"] == pytest.approx(out["recorded_integral"], abs=1e-5)


def test_unknown_model_is_a_one_line_error(tiny_models, capsys):
    assert main(["generate", "flow", "--model", "nope"]) == 2
    assert "no model named 'nope'" in capsys.readouterr().err
    assert main(["generate", "flow", "--seed", "-1"]) == 2
    assert "--seed must be 0 or more" in capsys.readouterr().err
