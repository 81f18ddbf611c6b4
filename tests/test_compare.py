"""Model comparison on tiny real models: which models, shared-seed columns, the grid, the table, timings, the CLI."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from genstudio.engines import compare
from genstudio.runtime.jobs import drive
from genstudio.runtime.registry import Registry
from genstudio.runtime.sessions import SessionConfig, SessionPool

pytestmark = pytest.mark.slow

FMNIST = ["vae-fashion-mnist", "flow-fashion-mnist", "gan-fashion-mnist", "diffusion-tiny", "pixelcnn-fashion-mnist"]


def write_image_flow(folder: Path) -> Path:
    """An image flow folder with no extra.dataset (like the shipped one): x = sigmoid(z), log p = -sum(x^2)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from genstudio.runtime.manifest import Manifest, ModelFile

    folder.mkdir(parents=True)
    shape = numpy_helper.from_array(np.array([-1, 1, 28, 28], np.int64), "shape")
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 784])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 28, 28])
    lp = helper.make_tensor_value_info("log_prob", TensorProto.FLOAT, ["batch"])
    graphs = {
        "sample.onnx": helper.make_graph([helper.make_node("Sigmoid", ["z"], ["s"]),
                                          helper.make_node("Reshape", ["s", "shape"], ["x"])],
                                         "sample", [z], [x], initializer=[shape]),
        "log_density.onnx": helper.make_graph([helper.make_node("Mul", ["x", "x"], ["xx"]),
                                               helper.make_node("ReduceSum", ["xx", "axes"], ["s"], keepdims=0),
                                               helper.make_node("Neg", ["s"], ["log_prob"])],
                                              "log_density", [x], [lp],
                                              initializer=[numpy_helper.from_array(np.array([1, 2, 3]), "axes")]),
    }
    for name, g in graphs.items():
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], producer_name="genstudio-tests")
        m.ir_version = 8
        onnx.save_model(m, str(folder / name))
    Manifest(family="flow", name="flow-fashion-mnist", version="1", title="Tiny image flow",
             files=[ModelFile("log_density.onnx", "log_density"), ModelFile("sample.onnx", "sample")],
             defaults={"temperature": 0.7}, license="MIT", data_source="none",
             build={"seconds": {"train": 120.0}},
             metrics={"test_bits_per_dim": 3.9, "parameters": 10},
             extra={"kind": "image", "dim": 784, "image_shape": [1, 28, 28], "value_range": [0.0, 1.0]}).save(folder)
    return folder


@functools.cache
def compare_root() -> Path:
    """eval + vae (vae_tiny), gan, pixelcnn, diffusion-tiny, a fake image flow, a 2-D flow and a SynthFaces VAE."""
    from diffusion_tiny import TINY, tiny_diffusion_root
    from flow_tiny import tiny_flow_folder
    from gan_tiny import tiny_gan_folder
    from pixelcnn_tiny import tiny_pixelcnn_folder
    from vae_tiny import tiny_vae_root

    root = Path(tempfile.mkdtemp(prefix="genstudio-compare-tiny-")) / "models"
    shutil.copytree(tiny_vae_root(), root)
    for src in (tiny_gan_folder(), tiny_pixelcnn_folder(), tiny_diffusion_root() / TINY, tiny_flow_folder()):
        shutil.copytree(src, root / src.name)
    write_image_flow(root / "flow-fashion-mnist")
    faces = root / "vae-synthfaces"
    shutil.copytree(root / "vae-fashion-mnist", faces)
    data = json.loads((faces / "model.json").read_text())
    data["name"], data["extra"]["dataset"] = "vae-synthfaces", "synthfaces"
    (faces / "model.json").write_text(json.dumps(data))
    return root


@pytest.fixture
def root(monkeypatch) -> Path:
    r = compare_root()
    monkeypatch.setenv("GENSTUDIO_MODELS", str(r))
    return r


@pytest.fixture
def pool() -> SessionPool:
    return SessionPool(SessionConfig(provider="cpu", threads=1))


def test_models_for_picks_the_dataset_in_family_order(root):
    reg = Registry()
    assert [e.name for e in compare.models_for(reg, "fashion-mnist")] == FMNIST
    assert [e.name for e in compare.models_for(reg, "synthfaces")] == ["vae-synthfaces"]
    flow2d = reg.get("flow-8gaussians-glow")
    assert flow2d.ready and compare.dataset_of(flow2d) is None  # 2-D density flows are no image model
    assert compare.dataset_of(reg.get("flow-fashion-mnist")) == "fashion-mnist"  # named, not in extra


def test_columns_share_seed_and_condition_and_make_a_grid(root, pool):
    entries = compare.models_for(Registry(), "fashion-mnist")
    cond = compare.shared_condition(entries, 3, "fashion-mnist")
    assert cond.class_ids.tolist() == [0, 1, 2]
    assert cond.captions == ["a photo of a top", "a photo of a trouser", "a photo of a pullover"]
    columns = [drive(compare.sample_column(e, pool, 3, seed=5, condition=cond)) for e in entries]
    for e, c in zip(entries, columns, strict=True):
        assert c.name == e.name and c.images.shape[0] == 3 and c.images.ndim == 4
        assert c.images.min() >= 0.0 and c.images.max() <= 1.0 and c.seconds_per_sample > 0
    by = {c.name: c for c in columns}
    assert by["pixelcnn-fashion-mnist"].settings["class_ids"] == [0, 1, 2]
    assert by["diffusion-tiny"].settings["prompts"] == cond.captions
    again = drive(compare.sample_column(entries[2], pool, 3, seed=5, condition=cond))
    assert np.array_equal(again.images, by["gan-fashion-mnist"].images)  # same seed, same samples

    grid = compare.comparison_grid(columns, pad=4, header=34)
    cell = 64  # at least 64 pixels: 28x28 and the diffusion's 8x8 are scaled up alike
    assert grid.dtype == np.uint8 and grid.shape[0] == 34 + 3 * cell + 4 * 4 and grid.shape[2] == 3
    assert grid.shape[1] >= 5 * cell + 6 * 4  # a column is at least a tile wide, wider for a long name
    tile_rows = grid[34 + 4:34 + 4 + cell].min(axis=(0, 2)) < 255  # columns holding some non-white tile pixel
    starts = np.flatnonzero(tile_rows[1:] & ~tile_rows[:-1]) + 1
    assert len(starts) + int(tile_rows[0]) == 5  # one block of tiles per model
    assert (grid[:34] < 128).any()  # the labels were drawn
    assert (grid[:34, :4] == 255).all()  # left margin stays white


def test_table_rows_use_manifest_numbers_and_none_for_missing(root):
    rows = {r["name"]: r for r in compare.table_rows(compare.models_for(Registry(), "fashion-mnist"))}
    assert list(rows) == FMNIST
    vae, flow, gan, diff, pcnn = (rows[n] for n in FMNIST)
    assert vae["bits_per_dim_kind"].startswith("upper bound") and vae["bits_per_dim"] > 0
    assert vae["fid"] is not None and vae["fid_of"] == "prior samples" and vae["precision"] is not None
    assert vae["seconds_per_sample_b1"] is not None and vae["timing_source"] == "manifest"
    assert flow["bits_per_dim"] == 3.9 and flow["bits_per_dim_kind"].startswith("exact")
    assert flow["fid"] is None and flow["precision"] is None and flow["class_accuracy"] is None
    assert flow["train_seconds"] == 120.0 and flow["parameters"] == 10 and flow["timing_source"] is None
    assert gan["fid"] is not None and gan["bits_per_dim"] is None and gan["parameters_note"] == "generator only"
    assert pcnn["bits_per_dim_kind"].startswith("exact") and pcnn["class_accuracy"] is not None
    assert diff["fid"] is None and diff["bits_per_dim"] is None and diff["train_seconds"] is None
    assert all(r["size_bytes"] > 0 and r["size_mb"] is not None for r in rows.values())


def test_measure_timings_measures_or_skips(root, pool):
    reg = Registry()
    t = drive(compare.measure_timings(reg.get("gan-fashion-mnist"), pool, (1, 4), max_seconds=30))
    assert t["batches"]["1"]["seconds_per_sample"] > 0 and t["batches"]["4"]["skipped"] is False
    slow = drive(compare.measure_timings(reg.get("pixelcnn-fashion-mnist"), pool, (1, 64), max_seconds=1e-6))
    assert all(b["skipped"] and b["seconds_per_sample"] is None for b in slow["batches"].values())
    rows = compare.table_rows([reg.get("gan-fashion-mnist"), reg.get("pixelcnn-fashion-mnist")],
                              {"gan-fashion-mnist": t, "pixelcnn-fashion-mnist": slow})
    assert rows[0]["timing_source"] == "measured" and rows[0]["ms_per_sample_b1"] > 0
    assert rows[1]["ms_per_sample_b64"] is None and rows[1]["timing_skipped"] == ["1", "64"]
    assert "not timed" in compare.markdown_table(rows)


def test_markdown_is_a_well_formed_table(root):
    rows = compare.table_rows(compare.models_for(Registry(), "fashion-mnist"))
    md = compare.markdown_table(rows)
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(rows)
    assert len({line.count("|") for line in table}) == 1  # every line has the same number of cells
    assert table[1].replace("|", "").replace("-", "") == ""
    assert "–" in md and "upper bound" in md and "None" not in md


@pytest.fixture
def cli_registered(monkeypatch):
    import genstudio.cli as cli

    if "genstudio.cli.compare" not in cli.FAMILY_MODULES:
        monkeypatch.setattr(cli, "FAMILY_MODULES", [*cli.FAMILY_MODULES, "genstudio.cli.compare"])


def test_cli_compare_writes_three_files(root, cli_registered, tmp_path, capsys):
    from genstudio.cli import main
    from genstudio.runtime.imaging import read_png_settings

    out = tmp_path / "cmp"
    assert main(["compare", "--dataset", "fashion-mnist", "--out", str(out), "--n", "2", "--no-timing",
                 "--threads", "1"]) == 0
    assert {p.name for p in out.iterdir()} == {"comparison.png", "comparison.md", "comparison.json"}
    data = json.loads((out / "comparison.json").read_text())
    assert [r["name"] for r in data["rows"]] == FMNIST and data["timings"] == {}
    assert data["command"].startswith("genstudio compare --dataset fashion-mnist")
    md = (out / "comparison.md").read_text()
    assert data["command"] in md and data["date"] in md and md.count("\n| ") == 1 + len(FMNIST)
    assert read_png_settings(out / "comparison.png")["models"] == FMNIST


def test_cli_evaluate_all_is_a_subcommand(cli_registered):
    from genstudio.cli import build_parser
    from genstudio.cli.compare import cmd_evaluate_all

    parser, _ = build_parser()
    args = parser.parse_args(["evaluate", "all", "--dataset", "synthfaces", "--json"])
    assert args.handler is cmd_evaluate_all and args.dataset == "synthfaces"
    args = parser.parse_args(["evaluate", "vae", "--n", "10"])  # the families' commands are untouched
    assert args.family == "vae"


def test_cli_evaluate_all_records_numbers(cli_registered, monkeypatch, tmp_path, capsys):
    from vae_tiny import tiny_data

    from genstudio.cli import main

    models = tmp_path / "models"
    shutil.copytree(compare_root(), models)
    shutil.rmtree(models / "diffusion-tiny")  # its adherence run is covered by test_diffusion_engine
    shutil.rmtree(models / "pixelcnn-fashion-mnist")  # its evaluate is covered by test_pixelcnn
    monkeypatch.setenv("GENSTUDIO_MODELS", str(models))
    rc = main(["evaluate", "all", "--dataset", "fashion-mnist", "--n", "20", "--data", str(tiny_data()),
               "--json", "--threads", "1"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    assert set(out["models"]) == {"vae-fashion-mnist", "flow-fashion-mnist", "gan-fashion-mnist"}
    for name in out["models"]:
        fresh = json.loads((models / name / "model.json").read_text())["metrics"]["evaluate"]
        assert fresh["command"].startswith("genstudio evaluate all --dataset fashion-mnist") and fresh["date"]
    monkeypatch.setenv("GENSTUDIO_MODELS", str(models))
    rows = {r["name"]: r for r in compare.table_rows(compare.models_for(Registry(), "fashion-mnist"))}
    assert rows["gan-fashion-mnist"]["evaluated_at"] is not None
    assert rows["flow-fashion-mnist"]["bits_per_dim"] != 3.9  # the recomputed number wins
