"""The export pipeline on tiny settings: model.json, ONNX parity, dynamic batch, safetensors, the image flow."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from flow_tiny import TINY_NAME, make_fake_dataset, tiny_flow_folder

from genstudio.export.flow.build2d import CHECKPOINT_FILE
from genstudio.export.flow.flow2d import Flow2D, FlowConfig
from genstudio.export.onnx_io import ort_session
from genstudio.runtime.manifest import Manifest
from genstudio.runtime.registry import check_folder

pytestmark = pytest.mark.slow


def test_manifest_records_build_metrics_and_files():
    folder = tiny_flow_folder()
    m = Manifest.load(folder)
    assert m.family == "flow" and m.name == TINY_NAME
    assert m.build["command"].startswith("genstudio export flow --density 8gaussians --arch glow")
    assert {f.role for f in m.files} >= {"log_density", "sample", "train_samples", "heldout_samples", "checkpoint"}
    metrics = m.metrics
    assert metrics["parity"]["max_abs_diff_log_prob"] < 1e-4
    assert metrics["parity"]["max_abs_diff_samples"] < 1e-4
    assert metrics["parity"]["max_abs_diff_layers"] < 1e-4
    assert np.isfinite(metrics["heldout_nll_nats"])
    assert metrics["true_entropy_nats"] == pytest.approx(2.1443, abs=1e-3) and not metrics["true_entropy_exact"]
    assert 0.8 < metrics["integral"]["value"] <= 1.0 + 1e-3
    assert metrics["timing"]["onnxruntime_ms"] > 0 and metrics["timing"]["torch_eager_ms"] > 0
    assert m.extra["kind"] == "2d" and len(m.extra["layer_names"]) == m.extra["n_layers"]
    assert check_folder(folder, deep=True).ready  # passes the studio's ONNX safety checks


def test_graphs_have_opset_18_and_a_dynamic_batch():
    folder = tiny_flow_folder()
    m = Manifest.load(folder)
    for role in ("log_density", "sample"):
        model = onnx.load(str(folder / m.file_for(role).path))
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 18
    lp = ort_session(folder / "log_density.onnx")
    sample = ort_session(folder / "sample.onnx")
    for n in (1, 7, 300):
        assert lp.run(None, {"x": np.zeros((n, 2), np.float32)})[0].shape == (n,)
        x, layers = sample.run(None, {"z": np.zeros((n, 2), np.float32)})
        assert x.shape == (n, 2) and layers.shape == (m.extra["n_layers"] + 1, n, 2)


def test_checkpoint_is_safetensors_and_reproduces_the_onnx_graph():
    from safetensors.torch import load_file

    folder = tiny_flow_folder()
    assert (folder / CHECKPOINT_FILE).read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    m = Manifest.load(folder)
    flow = Flow2D(FlowConfig(**m.build["flow"]))
    flow.load_state_dict(load_file(str(folder / CHECKPOINT_FILE)))
    flow.eval()
    x = np.load(folder / "heldout.npy")[:100]
    with torch.no_grad():
        lp_torch = flow.log_prob(torch.from_numpy(x)).numpy()
    lp_ort = ort_session(folder / "log_density.onnx").run(None, {"x": x})[0]
    assert np.abs(lp_torch - lp_ort).max() < 1e-4
    recorded = -np.mean(ort_session(folder / "log_density.onnx").run(None, {"x": np.load(folder / "heldout.npy")})[0])
    assert recorded == pytest.approx(m.metrics["heldout_nll_nats"], rel=1e-5)


def test_shipped_points_come_from_the_density():
    from genstudio.export.flow import densities

    folder = tiny_flow_folder()
    d = densities.get("8gaussians")
    assert np.isfinite(d.log_prob(np.load(folder / "train.npy").astype(np.float32))).all()
    assert np.load(folder / "heldout.npy").dtype == np.float32


def test_image_flow_pipeline_on_a_tiny_fake_dataset(tmp_path, monkeypatch, capsys):
    from genstudio.export.flow.build_image import ImageFlowBuild, bits_per_dim, build_image_flow
    from genstudio.export.flow.image_flow import ImageFlowConfig
    from genstudio.export.trainer import TrainerConfig

    torch.set_num_threads(1)
    data = make_fake_dataset(tmp_path / "fm", n_train=32, n_test=16)
    cfg = ImageFlowBuild(name="flow-image-tiny", flow=ImageFlowConfig(steps_per_scale=1, hidden=8),
                         trainer=TrainerConfig(steps=3, batch_size=8, warmup=1), data_dir=str(data),
                         n_train=32, n_test=16, eval_batch=8)
    seen = []
    folder = build_image_flow(cfg, tmp_path / "out", command="genstudio export flow-image (tiny)",
                              on_progress=seen.append)
    assert seen and seen[-1].step == seen[-1].total
    m = Manifest.load(folder)
    assert m.family == "flow" and m.extra["kind"] == "image" and m.extra["dim"] == 784
    assert 0 < m.metrics["test_bits_per_dim"] < 16
    assert m.metrics["parity"]["max_rel_diff_log_prob"] < 1e-4
    assert m.metrics["parity"]["max_abs_diff_samples"] < 1e-3
    images = ort_session(folder / "sample.onnx").run(None, {"z": np.zeros((3, 784), np.float32)})[0]
    assert images.shape == (3, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert bits_per_dim(np.array([0.0]), 784)[0] == pytest.approx(8.0)  # uniform on [0,1]^D: 8 bits a pixel
    assert json.loads((folder / "model.json").read_text())["build"]["command"].endswith("(tiny)")

    # the CLI on the result: samples as a PNG grid, and bits/dim recomputed by the engine
    from genstudio.cli import main

    monkeypatch.setenv("GENSTUDIO_MODELS", str(tmp_path / "out"))
    png = tmp_path / "samples.png"
    assert main(["generate", "flow", "--model", "flow-image-tiny", "--n", "4", "--out", str(png), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shape"] == [4, 1, 28, 28] and png.is_file()
    assert main(["evaluate", "flow", "--model", "flow-image-tiny", "--data", str(data), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["images"] == 16
    assert ev["test_bits_per_dim"] == pytest.approx(m.metrics["test_bits_per_dim"], rel=1e-5)
