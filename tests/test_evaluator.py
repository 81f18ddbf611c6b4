"""The evaluator metrics (FID, precision/recall, accuracy, image fitting) and a tiny exported evaluator."""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest

from genstudio.engines import evaluate as ev


def gaussian(n: int, d: int, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def test_fid_of_identical_sets_is_zero_and_grows_with_a_shift():
    a = gaussian(2000, 8)
    assert ev.fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)
    small, large = ev.fid_from_features(a, gaussian(2000, 8, 0.5, 1)), ev.fid_from_features(a, gaussian(2000, 8, 2.0, 1))
    assert 0.0 < small < large
    assert large == pytest.approx(8 * 2.0 ** 2, rel=0.1)  # ||mu1 - mu2||^2 dominates


def test_frechet_distance_matches_the_closed_form_for_commuting_covariances():
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 2.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    expected = 5.0 + sum((np.sqrt(a) - np.sqrt(b)) ** 2 for a, b in ((1, 4), (4, 1), (9, 1)))
    assert ev.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    rot = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))[0]  # a non-diagonal pair
    s3, s4 = rot @ s1 @ rot.T, rot @ s2 @ rot.T
    assert ev.frechet_distance(mu1, s3, mu2, s4) == pytest.approx(expected, rel=1e-6)


def test_precision_recall_on_toy_data():
    real = gaussian(400, 2)
    same = ev.precision_recall(real, gaussian(400, 2, seed=1), k=5)
    assert same["precision"] > 0.85 and same["recall"] > 0.85 and same["coverage"] > 0.85
    far = ev.precision_recall(real, gaussian(400, 2, shift=20.0, seed=2), k=5)
    assert far["precision"] == 0.0 and far["recall"] == 0.0 and far["coverage"] == 0.0
    collapsed = ev.precision_recall(real, gaussian(400, 2, seed=3) * 0.05, k=5)  # mode collapse: precise, low recall
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.3
    with pytest.raises(ValueError):
        ev.precision_recall(real[:3], real[:3], k=5)


def test_accuracy_and_histogram():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert ev.class_accuracy(logits, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    assert ev.label_histogram(logits, 2).tolist() == pytest.approx([2 / 3, 1 / 3])


def test_fit_images_sizes_channels_and_layouts():
    u8 = np.zeros((2, 28, 28), np.uint8)
    u8[:, 10:18, 10:18] = 255
    padded = np.pad(u8, ((0, 0), (2, 2), (2, 2)))  # 32x32, as a GAN trained on padded images makes them
    assert np.array_equal(ev.fit_images(padded, 28, 1, "centre"), ev.fit_images(u8, 28, 1, "centre"))
    assert ev.fit_images(u8, 32, 1, "centre").shape == (2, 1, 32, 32)
    rgb = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    up = ev.fit_images(rgb, 64, 3, "resize")
    assert up.shape == (3, 3, 64, 64) and 0.0 <= up.min() and up.max() <= 1.0
    assert ev.fit_images(rgb, 28, 1).shape == (3, 1, 28, 28)  # RGB to grey
    assert ev.fit_images(u8, 64, 3).shape == (2, 3, 64, 64)  # grey to RGB
    flat = np.full((1, 3, 64, 64), 0.25, np.float32)
    assert np.allclose(ev.resize(flat, 48), 0.25, atol=1e-6)  # the filter keeps a flat image flat
    assert np.allclose(ev.resample_matrix(64, 32).sum(1), 1.0)


@pytest.mark.slow
def test_tiny_evaluator_runs_through_onnx_runtime(capsys, monkeypatch, tmp_path):
    from vae_tiny import TINY_EVAL, tiny_data, tiny_vae_root

    from genstudio.cli import main
    from genstudio.export.data import fashion_mnist
    from genstudio.runtime.registry import Registry
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    root = tiny_vae_root()
    evaluator = ev.Evaluator.open(Registry([(root, "shipped")]), "fashion-mnist",
                                  SessionPool(SessionConfig(provider="cpu", threads=1)))
    assert evaluator.entry.name == TINY_EVAL and evaluator.feature_name == "genstudio-eval-fmnist"
    m = evaluator.entry.manifest
    assert m.family == "evaluator" and "class" in m.metrics["test_accuracy"]
    assert m.metrics["parity"]["max_abs_diff_features"] < 1e-4 and m.build["command"].startswith("genstudio export")
    test = fashion_mnist.load("test", tiny_data()).images
    out = evaluator.run(test)
    assert out.features.shape == (40, 128) and out.logits["class"].shape == (40, 10)
    padded = evaluator.run(np.pad(test, ((0, 0), (2, 2), (2, 2))))  # 32x32 inputs are accepted
    assert np.allclose(padded.features, out.features, atol=1e-5)
    assert evaluator.fid(test) == pytest.approx(0.0, abs=1e-3)  # the reference is these very images
    with pytest.raises(LookupError):
        ev.Evaluator.open(Registry([(root, "shipped")]), "synthfaces", evaluator.pool)

    monkeypatch.setenv("GENSTUDIO_MODELS", str(root))
    np.save(tmp_path / "x.npy", test)
    assert main(["evaluate", "evaluator", "--dataset", "fashion-mnist", "--npy", str(tmp_path / "x.npy"),
                 "--json", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["fid"] == pytest.approx(0.0, abs=1e-3) and result["fid_name"].startswith("FID (genstudio-eval")
    assert len(result["predicted_share"]["class"]) == 10


def test_export_evaluator_takes_its_widths_and_records_them(tmp_path, capsys):
    from vae_tiny import tiny_data

    from genstudio.cli import main
    from genstudio.runtime.manifest import Manifest

    argv = ["export", "evaluator", "--dataset", "fashion-mnist", "--steps", "2", "--train-images", "40",
            "--test-images", "40", "--data", str(tiny_data()), "--out", str(tmp_path), "--threads", "1"]
    assert main([*argv, "--widths", "8,x"]) == 2 and "--widths" in capsys.readouterr().err
    assert main([*argv, "--widths", "8,12", "--stem", "4"]) == 0
    m = Manifest.load(tmp_path / "eval-fashion-mnist")
    assert "--widths 8,12" in m.build["command"] and "--stem 4" in m.build["command"]
    from safetensors import safe_open

    with safe_open(str(tmp_path / "eval-fashion-mnist" / "evaluator.safetensors"), framework="numpy") as f:
        config = ast.literal_eval(f.metadata()["config"])
    assert config["widths"] == [8, 12] and config["stem"] == 4


def test_head_weights_average_the_heads_losses():
    import torch
    import torch.nn.functional as F

    from genstudio.export.evaluator.build import weighted_head_loss

    g = torch.Generator().manual_seed(0)
    logits = {"a": torch.randn(6, 3, generator=g), "b": torch.randn(6, 4, generator=g)}
    y = torch.stack([torch.randint(0, 3, (6,), generator=g), torch.randint(0, 4, (6,), generator=g)], 1)
    ce_a, ce_b = F.cross_entropy(logits["a"], y[:, 0]), F.cross_entropy(logits["b"], y[:, 1])
    assert torch.allclose(weighted_head_loss(logits, y, {}), (ce_a + ce_b) / 2)
    assert torch.allclose(weighted_head_loss(logits, y, {"a": 3.0}), (3 * ce_a + ce_b) / 4)


def test_export_evaluator_takes_head_weights_and_refuses_bad_ones(tmp_path, capsys):
    from vae_tiny import tiny_data

    from genstudio.cli import main
    from genstudio.export.data import image_sets
    from genstudio.export.evaluator.build import EvaluatorBuild
    from genstudio.runtime.manifest import Manifest

    defaults = EvaluatorBuild(dataset="synthfaces").weights
    assert set(defaults) == {"hair_colour", "expression", "glasses"} <= set(image_sets.heads("synthfaces"))
    argv = ["export", "evaluator", "--dataset", "fashion-mnist", "--steps", "2", "--train-images", "40",
            "--test-images", "40", "--data", str(tiny_data()), "--out", str(tmp_path), "--threads", "1"]
    assert main([*argv, "--head-weights", "class"]) == 2 and "name=weight" in capsys.readouterr().err
    assert main([*argv, "--head-weights", "glasses=4"]) == 2 and "unknown heads ['glasses']" in capsys.readouterr().err
    for bad in ("class=0", "class=nan", "class=inf"):
        assert main([*argv, "--head-weights", bad]) == 2 and "finite number above 0" in capsys.readouterr().err
    assert main([*argv, "--head-weights", "class=1,class=2"]) == 2 and "twice" in capsys.readouterr().err
    assert not (tmp_path / "eval-fashion-mnist").exists()  # nothing half-built is left behind
    assert main([*argv, "--head-weights", " class = 2 "]) == 0
    m = Manifest.load(tmp_path / "eval-fashion-mnist")
    assert "--head-weights class=2" in m.build["command"] and m.build["data"]["head_weights"] == {"class": 2.0}
    assert main(argv) == 0  # the dataset's default (none for Fashion-MNIST), written into the command
    m = Manifest.load(tmp_path / "eval-fashion-mnist")
    assert "--head-weights ''" in m.build["command"] and m.build["data"]["head_weights"] == {}
