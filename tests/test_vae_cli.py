"""`genstudio generate vae` (prior samples, --encode) and `genstudio evaluate vae` on the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genstudio.cli import main
from genstudio.runtime.imaging import read_png_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_models(monkeypatch):
    from vae_tiny import tiny_vae_root

    monkeypatch.setenv("GENSTUDIO_MODELS", str(tiny_vae_root()))


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_generate_samples_json_npy_png(tiny_models, tmp_path, capsys):
    npy, png = tmp_path / "s.npy", tmp_path / "s.png"
    out = run_json(capsys, ["generate", "vae", "--model", "vae-fashion-mnist", "--n", "6", "--seed", "2",
                            "--npy", str(npy), "--out", str(png), "--json", "--threads", "1"])
    assert out["n"] == 6 and out["shape"] == [6, 1, 28, 28] and out["written"] == {"out": str(png), "npy": str(npy)}
    images = np.load(npy)
    assert images.shape == (6, 28, 28, 1) and images.dtype == np.uint8
    assert read_png_settings(png)["seed"] == 2
    again = tmp_path / "again.npy"
    run_json(capsys, ["generate", "vae", "--n", "6", "--seed", "2", "--npy", str(again), "--json"])
    assert np.array_equal(np.load(again), images)  # the default model, the same seed, the same images


def test_generate_encode_reconstructs_an_image(tiny_models, tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3)).astype(np.uint8)).save(src)
    out_png = tmp_path / "recon.png"
    out = run_json(capsys, ["generate", "vae", "--encode", str(src), "--out", str(out_png), "--json"])
    assert len(out["z"]) == 2 and out["shape"] == [1, 1, 28, 28]
    with Image.open(out_png) as img:
        assert img.size == (28, 28)
    assert main(["generate", "vae", "--encode", str(tmp_path / "missing.png")]) == 2


def test_generate_encode_of_an_image_over_pillows_pixel_cap_is_one_line(tiny_models, tmp_path, capsys, monkeypatch):
    from PIL import Image

    src = tmp_path / "huge.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(src)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels: over twice the cap, a DecompressionBombError
    assert main(["generate", "vae", "--encode", str(src)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_generate_bad_input_and_unwritable_paths_are_one_line(tiny_models, tmp_path, capsys):
    from cli_errors import assert_one_line_errors

    assert_one_line_errors(main, "vae", [(["--seed", "-1"], "--seed must be 0 or more"),
                                          (["--temperature", "inf"], "--temperature must be a number")], tmp_path, capsys)


def test_generate_with_a_broken_model_folder_is_one_line(tmp_path, capsys, monkeypatch):
    import shutil

    from vae_tiny import TINY_VAE, tiny_vae_root

    root = tmp_path / "models"
    shutil.copytree(tiny_vae_root(), root)
    (root / TINY_VAE / "decoder.onnx").write_bytes(b"not onnx")
    monkeypatch.setenv("GENSTUDIO_MODELS", str(root))
    assert main(["generate", "vae", "--model", TINY_VAE, "--n", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{TINY_VAE} cannot be used" in err and "Traceback" not in err


def test_evaluate_json(tiny_models, capsys):
    from vae_tiny import tiny_data

    out = run_json(capsys, ["evaluate", "vae", "--data", str(tiny_data()), "--n", "40", "--json", "--threads", "1"])
    assert out["model"] == "vae-fashion-mnist" and out["n_images"] == 40
    assert out["bits_per_dim"] == pytest.approx(out["recorded_bits_per_dim"], rel=0.05)
    assert out["fid_prior_samples"] >= 0 and out["fid_name"].startswith("FID (genstudio-eval-fmnist")
