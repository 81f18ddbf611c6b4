"""Model comparison on tiny real models: which models, shared-seed columns, the grid, the table, timings, the CLI."""

from __future__ import annotations

import functools
import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from session_dirs import session_dir

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

    root = session_dir("genstudio-compare-tiny-") / "models"
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

    grid = compare.comparison_grid(columns, pad=4)
    cell = 64  # at least 64 pixels: 28x28 and the diffusion's 8x8 are scaled up alike
    header = (10 + 4) * 3 + 6  # three label lines (family, name, time per sample) of the default 10 px font
    assert grid.dtype == np.uint8 and grid.shape[0] == header + 3 * cell + 4 * 4 and grid.shape[2] == 3
    assert grid.shape[1] >= 5 * cell + 6 * 4  # a column is at least a tile wide, wider for a long name
    tile_rows = grid[header + 4:header + 4 + cell].min(axis=(0, 2)) < 255  # columns with a non-white tile pixel
    starts = np.flatnonzero(tile_rows[1:] & ~tile_rows[:-1]) + 1
    assert len(starts) + int(tile_rows[0]) == 5  # one block of tiles per model
    assert (grid[:header] < 128).any()  # the labels were drawn
    assert (grid[:header, :4] == 255).all()  # left margin stays white


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


def test_prompt_adherence_averages_the_prompted_attributes():
    faces = {"prompt_adherence": {"accuracy": {"hair_colour": 0.4, "glasses": 0.6}, "all_correct": 0.0}}
    assert compare.normalise_metrics("diffusion", faces)["prompt_adherence"] == pytest.approx(0.5)
    classes = {"prompt_adherence": {"accuracy": {"class": 0.99}, "all_correct": 0.99}}
    assert compare.normalise_metrics("diffusion", classes)["prompt_adherence"] == pytest.approx(0.99)
    assert compare.normalise_metrics("diffusion", {"prompt_adherence": {"all_correct": 0.3}})["prompt_adherence"] == 0.3
    rows = [{"name": "d", "prompt_adherence": 0.5}]
    assert any(n.startswith("Prompt adherence: the evaluator's accuracy") for n in compare.table_notes(rows))


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


def test_cli_compare_writes_the_four_report_files(root, cli_registered, tmp_path, capsys):
    from genstudio.cli import main
    from genstudio.runtime.imaging import read_png_settings

    out = tmp_path / "cmp"
    assert main(["compare", "--dataset", "fashion-mnist", "--out", str(out), "--n", "2", "--no-timing",
                 "--threads", "1"]) == 0
    assert {p.name for p in out.iterdir()} == {"comparison.png", "comparison-chart.png", "comparison.md",
                                               "comparison.json"}
    data = json.loads((out / "comparison.json").read_text())
    assert [r["name"] for r in data["rows"]] == FMNIST and data["timings"] == {}
    assert data["command"].startswith("genstudio compare --dataset fashion-mnist")
    md = (out / "comparison.md").read_text()
    assert data["command"] in md and data["date"] in md and md.count("\n| ") == 1 + len(FMNIST)
    assert read_png_settings(out / "comparison.png")["models"] == FMNIST


def test_cli_evaluate_all_is_a_subcommand(cli_registered):
    from genstudio.cli import build_parser
    from genstudio.cli.compare import EVALUATED_FAMILIES, cmd_evaluate_all

    assert set(EVALUATED_FAMILIES) == set(compare.FAMILIES)  # --family offers every family the table shows
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

    dates = {n: json.loads((models / n / "model.json").read_text())["metrics"]["evaluate"]["date"]
             for n in ("vae-fashion-mnist", "flow-fashion-mnist")}
    rc = main(["evaluate", "all", "--dataset", "fashion-mnist", "--n", "20", "--data", str(tiny_data()),
               "--family", "gan", "--json", "--threads", "1"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and set(out["models"]) == {"gan-fashion-mnist"}
    assert out["command"].endswith("--family gan")
    assert dates == {n: json.loads((models / n / "model.json").read_text())["metrics"]["evaluate"]["date"]
                     for n in dates}
    assert main(["evaluate", "all", "--dataset", "synthfaces", "--family", "flow"]) == 2
    assert "no flow models for synthfaces" in capsys.readouterr().err


# -- the comparison as one job, the chart, the report ---------------------------------------------------------------
def _entries(*names: str) -> list:
    reg = Registry()
    return [reg.get(n) for n in names]


def _fake_columns(n: int = 2) -> list[compare.Column]:
    rng = np.random.default_rng(0)
    return [compare.Column("gan-a", "gan", rng.random((n, 1, 28, 28), dtype=np.float32), 0.002,
                           {"seed": 7, "truncation": 1.0}),
            compare.Column("a-much-longer-diffusion-name", "diffusion", rng.random((n, 3, 8, 8), dtype=np.float32),
                           1.5, {"seeds": "7..8", "prompts": ["a top", "a bag"], "steps": None, "guidance": 3.0})]


def _table_lines(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("|")]


def test_compare_job_previews_grow_and_record_providers(root, pool):
    entries = compare.models_for(Registry(), "fashion-mnist")
    items = []
    state = drive(compare.compare_job(entries, pool, "fashion-mnist", n=2, seed=3, timing=False), items.append)
    assert [c.name for c in state.columns] == FMNIST and state.failed == {}
    assert state.timings == {} and state.timing is False  # no timing asked: nothing measured
    assert state.providers == ["CPUExecutionProvider"] and (state.n, state.seed) == (2, 3)
    assert state.condition.class_ids.tolist() == [0, 1]  # the shared condition of the dataset
    assert all(c.images.shape[0] == 2 for c in state.columns)
    assert items and all(isinstance(p.preview, compare.CompareState) for p in items)
    counts = [len(p.preview.columns) for p in items]
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == len(FMNIST)
    assert set(counts) == set(range(len(FMNIST) + 1))  # one more column after each model
    assert all(p.total == len(FMNIST) for p in items) and items[-1].step == len(FMNIST)
    assert [p.step for p in items] == sorted(p.step for p in items)
    assert items[0].preview.columns is not state.columns and len(items[0].preview.columns) == 0  # a snapshot
    assert all(p.preview.timings == {} for p in items)
    sampled = [p.message for p in items if p.message.endswith(": sampled")]
    assert sampled == [f"{n}: sampled" for n in FMNIST]


def test_compare_job_keeps_going_past_a_failing_model(root, pool, monkeypatch):
    real = compare.open_engine
    calls: dict[str, int] = {}

    def flaky(entry, p):
        calls[entry.name] = calls.get(entry.name, 0) + 1
        if entry.family == "gan":
            raise RuntimeError("broken graph")
        if entry.family == "flow" and calls[entry.name] > 1:  # samples fine, then fails to open for the timing
            raise OSError("disk gone")
        return real(entry, p)

    monkeypatch.setattr(compare, "open_engine", flaky)
    entries = _entries("vae-fashion-mnist", "gan-fashion-mnist", "flow-fashion-mnist")
    items = []
    state = drive(compare.compare_job(entries, pool, "fashion-mnist", n=2, timing=True, max_seconds=5.0),
                  items.append)
    assert [c.name for c in state.columns] == ["vae-fashion-mnist", "flow-fashion-mnist"]
    assert state.failed == {"gan-fashion-mnist": "RuntimeError: broken graph",
                            "flow-fashion-mnist": "timing: OSError: disk gone"}
    assert list(state.timings) == ["vae-fashion-mnist"]  # the failed model is not timed at all
    vae = state.timings["vae-fashion-mnist"]["batches"]
    assert vae["1"]["seconds_per_sample"] > 0 and vae["64"]["seconds_per_sample"] > 0
    assert calls["gan-fashion-mnist"] == 1  # never opened again for timing
    assert any(p.message == "gan-fashion-mnist: failed (RuntimeError: broken graph)" for p in items)
    assert items[-1].step == items[-1].total == 6  # sampling + timing per model
    assert items[-1].preview.failed == state.failed and set(items[-1].preview.timings) == {"vae-fashion-mnist"}
    rows = {r["name"]: r for r in compare.table_rows(entries, state.timings)}
    assert rows["vae-fashion-mnist"]["timing_source"] == "measured" and rows["vae-fashion-mnist"]["ms_per_sample_b1"]
    assert rows["gan-fashion-mnist"]["timing_source"] != "measured"


def test_report_does_not_say_no_samples_for_a_model_whose_timing_failed():
    cols = _fake_columns()
    state = compare.CompareState("fashion-mnist", 2, 7, compare.Condition(), columns=cols,
                                 failed={"gan-a": "timing: OSError: disk gone"})
    md = compare.report_markdown(state, [{"family": "gan", "name": "gan-a"}], "genstudio compare", "today")
    assert "- gan-a: no samples" not in md


def test_compare_job_without_timing_measures_nothing(root, pool, monkeypatch):
    def no_timing(*a, **k):
        raise AssertionError("measure_timings must not run with timing=False")

    monkeypatch.setattr(compare, "measure_timings", no_timing)
    state = drive(compare.compare_job(_entries("gan-fashion-mnist"), pool, "fashion-mnist", n=1, timing=False))
    assert state.timings == {} and [c.name for c in state.columns] == ["gan-fashion-mnist"]


def test_compare_command_round_trips_through_the_parser(cli_registered):
    from genstudio.cli import build_parser

    cmd = compare.compare_command("fashion-mnist", Path("/tmp/my out"), 8, 0)
    assert cmd == "genstudio compare --dataset fashion-mnist --out '/tmp/my out' --n 8 --seed 0"
    assert compare.compare_command("synthfaces", "o", 2, 5, timing=False, max_seconds=5).endswith(
        "--seed 5 --no-timing")  # no timing: the time limit does not matter
    assert compare.compare_command("synthfaces", "o", 2, 5, max_seconds=2.5).endswith("--max-seconds 2.5")
    assert "--max-seconds" not in compare.compare_command("synthfaces", "o", 2, 5, max_seconds=60.0)
    parser, _ = build_parser()
    words = shlex.split(compare.compare_command("synthfaces", "/tmp/my out", 3, 9, max_seconds=2.5))
    assert words[0] == "genstudio"
    args = parser.parse_args(words[1:])
    assert (args.dataset, args.out, args.n, args.seed) == ("synthfaces", Path("/tmp/my out"), 3, 9)
    assert args.no_timing is False and args.max_seconds == 2.5
    args = parser.parse_args(shlex.split(compare.compare_command("fashion-mnist", "o", 1, 0, timing=False))[1:])
    assert args.no_timing is True


def test_duration_text_and_column_label():
    assert compare.duration_text(0.00021) == "0.21 ms / sample"
    assert compare.duration_text(0.999) == "999.00 ms / sample"
    assert compare.duration_text(1.0) == "1.00 s / sample"
    assert compare.duration_text(2.031) == "2.03 s / sample"
    col = _fake_columns()[0]
    assert col.label.split("\n") == ["GAN", "gan-a", "2.00 ms / sample"]
    assert compare.Column("x", "autoregressive", col.images, 2.5).label == "PixelCNN\nx\n2.50 s / sample"


def test_comparison_grid_draws_three_label_lines_at_the_font_size():
    cols = _fake_columns(n=2)
    pad, cell = 4, 64
    small = compare.comparison_grid(cols)
    big = compare.comparison_grid(cols, font_size=20)
    for grid, size in ((small, 10), (big, 20)):
        line = size + 4
        header = line * 3 + 6  # family, name, time per sample
        assert grid.dtype == np.uint8 and grid.shape == (header + 2 * cell + 3 * pad, grid.shape[1], 3)
        for k in range(3):  # every label line has ink in its band
            assert (grid[3 + line * k:3 + line * (k + 1)] < 128).any(), (size, k)
        assert (grid[header:header + pad] == 255).all()  # the labels stay above the tiles
    assert big.shape[1] > small.shape[1]  # the long name's column widens with the font
    fixed = compare.comparison_grid(cols, header=100, cell=32, pad=2)
    assert fixed.shape[0] == 100 + 2 * 32 + 3 * 2
    with pytest.raises(ValueError):
        compare.comparison_grid([])


def test_chart_image_draws_bars_and_missing_values():
    rows = [{"family": "vae", "name": "vae-a", "fid": 30.0, "precision": 0.6, "recall": None, "bits_per_dim": 4.1,
             "ms_per_sample_b1": 0.2, "ms_per_sample_b64": None},
            {"family": "autoregressive", "name": "pixelcnn-a", "fid": None, "bits_per_dim": 3.5,
             "ms_per_sample_b1": 2000.0, "ms_per_sample_b64": 0.0},  # 0 on a log scale: not measured
            {"family": "flow", "name": "flow-a"}]  # nothing measured at all
    img = compare.chart_image(rows)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    colors = {tuple(c) for c in img.reshape(-1, 3)}
    assert tuple(compare.FAMILY_COLORS["vae"]) in colors and tuple(compare.FAMILY_COLORS["autoregressive"]) in colors
    assert tuple(compare.FAMILY_COLORS["flow"]) not in colors  # no bar for a model with no numbers
    assert compare.chart_image(rows[:1]).shape[0] < img.shape[0]  # a bar row per model
    assert compare.chart_image(rows, scale=1).shape[1] < img.shape[1]
    with pytest.raises(ValueError):
        compare.chart_image([])


def test_report_markdown_holds_command_table_settings_and_failures():
    state = compare.CompareState("fashion-mnist", 2, 7, compare.Condition(label="sample k: class k % 10"),
                                 columns=_fake_columns(), failed={"vae-x": "RuntimeError: boom"},
                                 timing=False, providers=["CPUExecutionProvider"])
    rows = [{"family": "gan", "name": "gan-a", "fid": 12.3456, "precision": 0.5},
            {"family": "diffusion", "name": "a-much-longer-diffusion-name"}, {"family": "vae", "name": "vae-x"}]
    cmd = "genstudio compare --dataset fashion-mnist --out x --n 2 --seed 7 --no-timing"
    md = compare.report_markdown(state, rows, cmd, "2024-01-02T03:04:05+00:00")
    lines = md.splitlines()
    assert lines[0] == "# Model comparison: fashion-mnist"
    assert f"Made by `{cmd}` on 2024-01-02T03:04:05+00:00." in lines
    assert _table_lines(md) == _table_lines(compare.markdown_table(rows)) and len(_table_lines(md)) == 5
    assert "| gan | gan-a | 12.346 | 0.500 |" in md
    assert "![samples](comparison.png)" in lines and "![chart](comparison-chart.png)" in lines
    assert any(line.startswith("Samples: 2 per model, seed 7") and "sample k: class k % 10" in line
               and line.endswith("ONNX Runtime provider: CPUExecutionProvider.") for line in lines)
    assert "- gan-a: seed 7, truncation 1.0" in lines
    assert "- a-much-longer-diffusion-name: seeds 7..8, guidance 3.0" in lines  # no prompts, no None
    assert "- vae-x: no samples (RuntimeError: boom)" in lines
    state.providers, state.columns[0].settings = [], {}
    md = compare.report_markdown(state, rows, cmd, "d")
    assert "ONNX Runtime provider: unknown." in md and "- gan-a: defaults" in md.splitlines()


def test_write_report_writes_the_four_files(root, pool, tmp_path):
    from PIL import Image

    from genstudio.runtime.imaging import read_png_settings

    entries = _entries("vae-fashion-mnist", "gan-fashion-mnist")
    state = drive(compare.compare_job(entries, pool, "fashion-mnist", n=2, seed=4, timing=False))
    rows = compare.table_rows(entries, state.timings)
    out = tmp_path / "report"
    summary = compare.write_report(out, state, rows)
    assert sorted(p.name for p in out.iterdir()) == sorted(compare.REPORT_FILES.values())
    assert sorted(p.name for p in out.iterdir()) == ["comparison-chart.png", "comparison.json", "comparison.md",
                                                     "comparison.png"]
    command = compare.compare_command("fashion-mnist", out, 2, 4, timing=False)
    assert summary["command"] == command and command.endswith("--no-timing")
    assert json.loads((out / "comparison.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["files"] == {k: str(out / v) for k, v in compare.REPORT_FILES.items()}
    assert [c["name"] for c in summary["columns"]] == ["vae-fashion-mnist", "gan-fashion-mnist"]
    assert summary["providers"] == ["CPUExecutionProvider"] and summary["timings"] == {}
    md = (out / "comparison.md").read_text()
    assert f"Made by `{command}` on {summary['date']}." in md
    assert _table_lines(md) == _table_lines(compare.markdown_table(rows)) and len(_table_lines(md)) == 4
    for name in ("comparison.png", "comparison-chart.png"):
        stamp = read_png_settings(out / name)
        assert stamp == {"command": command, "date": summary["date"],
                         "models": ["vae-fashion-mnist", "gan-fashion-mnist"], "seed": 4}
    grid = np.asarray(Image.open(out / "comparison.png").convert("RGB"))
    np.testing.assert_array_equal(grid, compare.comparison_grid(state.columns))
    chart = np.asarray(Image.open(out / "comparison-chart.png").convert("RGB"))
    np.testing.assert_array_equal(chart, compare.chart_image(rows))
    again = compare.write_report(out, state, rows, command="genstudio compare --custom", date="then")
    assert again["command"] == "genstudio compare --custom" and "on then." in (out / "comparison.md").read_text()
    assert not list(out.glob("*.part"))

    empty = compare.CompareState("fashion-mnist", 2, 4, compare.Condition(), failed={"x": "boom"})
    with pytest.raises(ValueError, match="nothing to report"):
        compare.write_report(tmp_path / "none", empty, rows)
    assert not (tmp_path / "none").exists()


def test_exported_report_matches_genstudio_compare(root, pool, cli_registered, tmp_path, capsys):
    """What the studio's Export writes (compare_job + write_report) is what `genstudio compare` writes."""
    from PIL import Image

    from genstudio.cli import main

    cli_out, tab_out = tmp_path / "cli", tmp_path / "tab"
    assert main(["compare", "--dataset", "fashion-mnist", "--out", str(cli_out), "--n", "2", "--seed", "3",
                 "--no-timing", "--threads", "1"]) == 0
    entries = compare.models_for(Registry(), "fashion-mnist")
    state = drive(compare.compare_job(entries, pool, "fashion-mnist", n=2, seed=3, timing=False))
    summary = compare.write_report(tab_out, state, compare.table_rows(entries, state.timings))
    cli_md, tab_md = (cli_out / "comparison.md").read_text(), (tab_out / "comparison.md").read_text()
    assert _table_lines(cli_md) == _table_lines(tab_md) and len(_table_lines(tab_md)) == 2 + len(FMNIST)

    def body(md: str) -> list[str]:  # all but the "Made by `command` on date" line
        return [line for line in md.splitlines() if not line.startswith("Made by")]

    assert body(cli_md) == body(tab_md)  # notes, settings and providers too
    cli_json = json.loads((cli_out / "comparison.json").read_text())
    assert cli_json["rows"] == json.loads(json.dumps(summary["rows"]))
    assert summary["command"] == cli_json["command"].replace(str(cli_out), str(tab_out))
    cli_chart = np.asarray(Image.open(cli_out / "comparison-chart.png").convert("RGB"))
    np.testing.assert_array_equal(cli_chart, compare.chart_image(summary["rows"]))


def test_evaluate_dataset_is_short_for_evaluate_all(monkeypatch):
    from genstudio.cli import compare as cli_compare
    from genstudio.cli import main

    seen = []
    monkeypatch.setattr(cli_compare, "cmd_evaluate_all", lambda args: seen.append((args.family, args.dataset)) or 0)
    assert main(["evaluate", "--dataset", "synthfaces", "--n", "10"]) == 0
    assert main(["evaluate", "--dataset=fashion-mnist"]) == 0
    assert seen == [("all", "synthfaces"), ("all", "fashion-mnist")]


def test_a_diffusion_row_shows_the_numbers_of_its_default_unet(tmp_path):
    from conftest import make_model_folder

    from genstudio.runtime.manifest import Manifest, ModelFile

    folder = make_model_folder(tmp_path / "diffusion-faces", name="diffusion-faces", family="diffusion")
    m = Manifest.load(folder)
    m.defaults = {"unet": "int8"}
    m.metrics = {"fid": 290.0, "prompt_adherence": {"accuracy": {"glasses": 0.4}},
                 "int8": {"fid": 206.0, "prompt_adherence": {"accuracy": {"glasses": 0.5}}}}
    m.save(folder)
    row_of = lambda: compare.table_rows([Registry([(tmp_path, "shipped")]).get("diffusion-faces")])[0]  # noqa: E731
    assert row_of()["fid"] == 290.0  # no int8 graph in the folder: the engine samples with float32
    shutil.copy(folder / "model.onnx", folder / "unet.int8.onnx")
    m.files = [*m.files, ModelFile("unet.int8.onnx", "unet_int8")]
    m.save(folder)
    row = row_of()
    assert row["fid"] == 206.0 and row["prompt_adherence"] == 0.5 and row["quality_of"] == "int8"
    assert any(n.startswith("Quality of diffusion-faces: its default int8 UNet") for n in compare.table_notes([row]))
    m.metrics["fid"], m.metrics["precision_recall"] = 290.0, {"precision": 0.9}
    m.save(folder)
    assert row_of()["precision"] is None  # never a float32 number beside int8 ones
    m.defaults = {"unet": "float32"}
    m.save(folder)
    row = row_of()
    assert row["fid"] == 290.0 and row["prompt_adherence"] == 0.4 and "quality_of" not in row
