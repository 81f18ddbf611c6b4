"""The PixelCNN: masks and causality (PyTorch and the exported graph), the engine's sampler and likelihood, the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from genstudio.export.pixelcnn.model import MaskedConv2d, PixelCNN, PixelCnnConfig, stack_masks

pytestmark = pytest.mark.slow

SIZE = 28


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- the network in PyTorch ----------------------------------------------------------------------------------
def test_masks_hide_the_current_pixel_in_the_first_layer_only():
    v, h = stack_masks(7, first=True)
    assert v.shape == (4, 7) and h.shape == (1, 4)
    assert v[:-1].eq(1).all() and v[-1].eq(0).all()  # the kernel's last row is the current row
    assert h[0, :-1].eq(1).all() and h[0, -1] == 0  # the kernel's last column is the current pixel
    v, h = stack_masks(3, first=False)
    assert v.eq(1).all() and h.eq(1).all()
    model = PixelCNN(PixelCnnConfig(dim=4, layers=3, head=8))
    first = model.layers[0]
    assert isinstance(first.v_conv, MaskedConv2d) and first.v_conv.mask[:, :, -1].eq(0).all()
    assert first.h_conv.mask[:, :, :, -1].eq(0).all()
    assert all(layer.v_conv.mask.eq(1).all() for layer in model.layers[1:])


def _dependence(model: PixelCNN, r: int, c: int, cls: int = 3) -> np.ndarray:
    """|d logits[:, :, r, c] / d x| summed over levels: (28, 28), nonzero where the pixel reaches (r, c)."""
    x = torch.rand(1, 1, SIZE, SIZE, requires_grad=True)
    model(x, torch.tensor([cls]))[0, :, r, c].sum().backward()
    return x.grad[0, 0].abs().numpy()


@pytest.mark.parametrize("r,c", [(0, 0), (0, 5), (5, 0), (10, 10), (14, 27), (27, 27)])
def test_pytorch_logits_depend_only_on_earlier_pixels(r, c):
    torch.manual_seed(0)
    model = PixelCNN(PixelCnnConfig(dim=8, layers=4, head=8))
    for p in model.parameters():  # random, not the zero-initialised class embeddings, so every path is live
        torch.nn.init.normal_(p, std=0.3)
    g = _dependence(model, r, c)
    order = np.arange(SIZE * SIZE).reshape(SIZE, SIZE)
    assert not g[order >= r * SIZE + c].any()  # the pixel itself and everything after it: no influence
    if c > 0:
        assert g[r, c - 1] > 0  # the pixel to the left
    if r > 0:
        assert g[r - 1, c] > 0  # the pixel above
        assert g[r - 1, min(c + 3, SIZE - 1)] > 0  # above and to the right: no blind spot
    reach = model.cfg.receptive_rows
    assert not g[:max(0, r - reach)].any()  # nothing above the receptive window


def test_receptive_field_is_the_full_rectangle_above_and_the_pixels_to_the_left():
    """No blind spot: with first kernel 3 and L layers, pixel (r, c) sees exactly rows r-L..r-1 at columns
    c-L..c+L and row r at columns c-L..c-1."""
    torch.manual_seed(1)
    layers = 5
    model = PixelCNN(PixelCnnConfig(dim=8, layers=layers, kernel=3, first_kernel=3, head=8))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    assert model.cfg.receptive_rows == layers
    r, c = 20, 14
    expected = np.zeros((SIZE, SIZE), bool)
    expected[r - layers:r, c - layers:c + layers + 1] = True
    expected[r, c - layers:c] = True
    assert np.array_equal(_dependence(model, r, c) > 0, expected)


def test_loss_is_nats_per_dimension_and_starts_near_uniform():
    model = PixelCNN(PixelCnnConfig(dim=8, layers=2, head=8))
    u8 = torch.randint(0, 256, (4, 1, SIZE, SIZE))
    loss = model.loss(u8, torch.tensor([0, 1, 10, 9]))
    assert abs(float(loss.detach()) - np.log(256)) < 0.5
    assert model.nll(u8, torch.tensor([0, 1, 10, 9])).shape == (4,)


def test_batches_drop_labels_to_the_null_class():
    from genstudio.export.pixelcnn.train import batch_sampler

    images = np.zeros((50, SIZE, SIZE), np.uint8)
    labels = np.arange(50) % 10
    u8, cls = batch_sampler(images, labels, 4000, 0.25, 10)(0, torch.Generator().manual_seed(0))
    assert u8.shape == (4000, 1, SIZE, SIZE) and u8.dtype == torch.int64
    assert abs(float((cls == 10).float().mean()) - 0.25) < 0.03 and int(cls.max()) == 10


# -- the tiny exported model ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    from pixelcnn_tiny import TINY_PIXELCNN, tiny_pixelcnn_root

    from genstudio.engines.pixelcnn import PixelCnnModel
    from genstudio.runtime.registry import Registry
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    entry = Registry([(tiny_pixelcnn_root(), "shipped")]).get(TINY_PIXELCNN)
    return PixelCnnModel(entry, SessionPool(SessionConfig(provider="cpu", threads=1)))


def test_manifest_records_the_build(model):
    from pixelcnn_tiny import TINY_COMMAND

    m = model.entry.manifest
    assert m.family == "autoregressive" and model.entry.ready
    assert m.build["command"] == TINY_COMMAND and m.build["pixelcnn"]["layers"] == 3
    assert [i["name"] for i in m.io["logits"]["inputs"]] == ["x", "class"]
    assert m.io["logits"]["outputs"][0]["shape"] == ["batch", 256, "height", 28]
    assert model.levels == 256 and model.n_classes == 10 and model.null_class == 10
    assert model.receptive_rows == 3 + 2  # first kernel 7 -> 3 rows, then 1 a layer
    met = m.metrics
    assert met["parity"]["max_abs_diff_logits"] < 1e-4 and met["parity"]["max_abs_diff_window_vs_full"] < 1e-4
    assert 7.0 < met["test_bits_per_dim"] < 8.5  # six steps: close to uniform over 256 levels (8 bits)
    assert met["fid_n_samples"] == 10 and "fid_samples" in met and met["class_conditional"]["n_samples"] == 10
    assert met["sampling"]["session_runs_per_batch"] == 784


def _onnx_logits(model, x: np.ndarray, cls: np.ndarray) -> np.ndarray:
    return model.logits(x.astype(np.float32), cls.astype(np.int64))


def test_exported_graph_is_causal(model):
    """The logits of pixel i do not change when pixels >= i change, and do change with the pixel before i."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 1, SIZE, SIZE)).astype(np.float32) / 255.0
    for cls in (0, 10):
        c = np.array([cls])
        base = _onnx_logits(model, x, c)
        for i in (0, 1, 27, 28, 29, 300, 418, 783):
            r, col = divmod(i, SIZE)
            y = x.copy().reshape(-1)
            y[i:] = rng.integers(0, 256, SIZE * SIZE - i) / 255.0  # pixel i and everything after it
            changed = _onnx_logits(model, y.reshape(x.shape), c)
            assert np.abs(changed[0, :, r, col] - base[0, :, r, col]).max() < 1e-5, f"pixel {i} sees the future"
            if i > 0:  # the pixel to the left (or above, at the start of a row) does reach it
                j = i - 1 if col > 0 else i - SIZE
                z = x.copy().reshape(-1)
                z[j] = 1.0 - z[j]
                before = _onnx_logits(model, z.reshape(x.shape), c)
                assert np.abs(before[0, :, r, col] - base[0, :, r, col]).max() > 1e-6, f"pixel {i} ignores pixel {j}"


def test_window_gives_the_same_logits_as_the_whole_image(model):
    x = np.random.default_rng(1).random((3, 1, SIZE, SIZE)).astype(np.float32)
    cls = np.array([0, 4, 10])
    full = _onnx_logits(model, x, cls)
    for r in (0, 3, 5, 6, 17, 27):
        s = model.window_start(r)
        part = _onnx_logits(model, np.ascontiguousarray(x[:, :, s:r + 1]), cls)
        assert part.shape == (3, 256, r + 1 - s, SIZE)
        assert np.abs(part[:, :, -1] - full[:, :, r]).max() < 1e-5


def test_likelihood_matches_pytorch(model):
    from genstudio.export.pixelcnn.train import load_checkpoint

    torch_model, meta = load_checkpoint(model.entry.path("checkpoint"))
    assert meta["step"] == 6 and meta["config"]["dim"] == 8
    u8 = np.random.default_rng(2).integers(0, 256, (5, SIZE, SIZE)).astype(np.uint8)
    cls = np.array([0, 1, 2, 10, 9])
    with torch.no_grad():
        nll = torch_model.nll(torch.from_numpy(u8[:, None].astype(np.int64)), torch.from_numpy(cls)).numpy()
    assert np.allclose(-model.log_likelihood(u8, cls), nll, rtol=1e-5, atol=1e-3)
    assert np.allclose(model.log_likelihood(u8), model.log_likelihood(u8.astype(np.float32) / 255.0), atol=1e-3)


def test_bits_per_dim_reproduces_the_recorded_number(model):
    from vae_tiny import tiny_data

    from genstudio.export.data import fashion_mnist
    from genstudio.runtime.jobs import drive

    test = fashion_mnist.load("test", tiny_data())
    seen = []
    result = drive(model.bits_per_dim(test.images, None, batch=16), seen.append)
    assert [p.step for p in seen] == [1, 2, 3] and result["n_images"] == 40
    assert result["bits_per_dim"] == pytest.approx(model.entry.manifest.metrics["test_bits_per_dim"], abs=1e-6)
    given = drive(model.bits_per_dim(test.images, test.labels))
    assert given["bits_per_dim"] == pytest.approx(model.entry.manifest.metrics["test_bits_per_dim_given_class"], abs=1e-6)


def test_samples_are_reproducible_by_seed_and_prefix_stable(model):
    a = model.sample(4, seed=5)
    assert a.shape == (4, 1, SIZE, SIZE) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.allclose(a * 255, np.rint(a * 255), atol=1e-4)  # 8-bit values
    assert np.array_equal(a, model.sample(4, seed=5))
    assert not np.array_equal(a, model.sample(4, seed=6))
    assert np.array_equal(a[:2], model.sample(2, seed=5))  # the first k of n are the samples of k
    assert model.sample(0).shape == (0, 1, SIZE, SIZE)


def test_sample_job_yields_rows_with_previews_and_stops(model):
    from genstudio.runtime.jobs import Cancelled, drive

    seen = []
    images = drive(model.sample_job(3, seed=0, class_id="all"), seen.append)
    assert [p.step for p in seen] == list(range(1, 29)) and seen[-1].total == 28
    assert seen[0].preview.shape == (3, 1, SIZE, SIZE) and not seen[0].preview[:, :, 1:].any()
    assert np.array_equal(seen[-1].preview, images)
    calls = []
    with pytest.raises(Cancelled):
        drive(model.sample_job(2, seed=0), calls.append, should_stop=lambda: len(calls) >= 2)
    assert len(calls) == 2
    with pytest.raises(ValueError):
        drive(model.sample_job(1, temperature=0.0))


def test_sampling_in_chunks_matches_one_batch(model):
    from dataclasses import replace

    small = replace(model, sample_batch=2, _cache={})
    assert np.array_equal(small.sample(3, seed=9, class_id="Bag"), model.sample(3, seed=9, class_id="Bag"))


def test_class_choices(model):
    assert model.class_ids(3, None).tolist() == [10, 10, 10]
    assert model.class_ids(12, "all").tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert model.class_ids(2, "Dress").tolist() == [3, 3]
    assert model.class_ids(1, "ankle boot").tolist() == [9]
    assert model.class_ids(1, "t-shirt/top").tolist() == [0]
    assert model.class_ids(2, "7").tolist() == [7, 7] and model.class_ids(2, 7).tolist() == [7, 7]
    assert model.class_ids(2, [1, 10]).tolist() == [1, 10]
    for bad in ("Hat", 10, -1, "12"):
        with pytest.raises(ValueError):
            model.class_ids(1, bad)
    with pytest.raises(ValueError):
        model.class_ids(3, [1, 2])


def test_checkpoint_round_trip_and_export_from_it(tmp_path):
    """--checkpoint-to writes the run; building from that checkpoint gives the same weights and graph."""
    from pixelcnn_tiny import tiny_config
    from vae_tiny import TINY_EVAL, tiny_vae_root

    from genstudio.export.pixelcnn.build import build_pixelcnn
    from genstudio.export.pixelcnn.train import load_checkpoint

    torch.set_num_threads(1)
    shutil.copytree(tiny_vae_root() / TINY_EVAL, tmp_path / "a" / TINY_EVAL)
    ck = tmp_path / "run" / "pixelcnn.safetensors"
    cfg = tiny_config(n_fid=0, n_class_samples=0, checkpoint_to=str(ck), checkpoint_every=2)
    cfg.trainer.steps = 4
    a = build_pixelcnn(cfg, tmp_path / "a", command="a")
    trained, meta = load_checkpoint(ck)
    assert meta["step"] == 4 and len(meta["losses"]) == 4 and meta["stages"] == ["a"]
    b = build_pixelcnn(tiny_config(n_fid=0, n_class_samples=0, checkpoint=str(ck)), tmp_path / "b", command="b")
    ma, mb = (json.loads((f / "model.json").read_text())["metrics"] for f in (a, b))
    assert mb["test_bits_per_dim"] == pytest.approx(ma["test_bits_per_dim"], abs=1e-9)
    assert mb["train_steps"] == 4 and mb["from_checkpoint"]["step"] == 4
    assert "fid_skipped" in mb  # no samples asked for


# -- the command line -----------------------------------------------------------------------------------------
@pytest.fixture
def cli(monkeypatch):
    import genstudio.cli as cli_module

    if "genstudio.cli.pixelcnn" not in cli_module.FAMILY_MODULES:
        monkeypatch.setattr(cli_module, "FAMILY_MODULES", [*cli_module.FAMILY_MODULES, "genstudio.cli.pixelcnn"])
    return cli_module.main


@pytest.fixture
def tiny_models(monkeypatch, tmp_path):
    """A private copy of the tiny root (evaluate --write edits model.json)."""
    from pixelcnn_tiny import tiny_pixelcnn_root

    root = tmp_path / "models"
    shutil.copytree(tiny_pixelcnn_root(), root)
    monkeypatch.setenv("GENSTUDIO_MODELS", str(root))
    return root


def run_json(main, capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_generate(cli, tiny_models, tmp_path, capsys):
    from genstudio.runtime.imaging import read_png_settings

    npy, png = tmp_path / "s.npy", tmp_path / "s.png"
    out = run_json(cli, capsys, ["generate", "pixelcnn", "--model", "pixelcnn-fashion-mnist", "--n", "3", "--seed", "4",
                                 "--npy", str(npy), "--out", str(png), "--json", "--threads", "1"])
    assert out["shape"] == [3, 1, 28, 28] and out["class"] == "none" and out["classes"] == [None] * 3
    assert out["session_runs"] == 784 and out["written"] == {"out": str(png), "npy": str(npy)}
    images = np.load(npy)
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.uint8
    assert read_png_settings(png)["seed"] == 4 and read_png_settings(png)["class"] == "none"
    again = tmp_path / "again.npy"
    run_json(cli, capsys, ["generate", "pixelcnn", "--n", "3", "--seed", "4", "--npy", str(again), "--json"])
    assert np.array_equal(np.load(again), images)  # the default model, the same seed, the same images
    out = run_json(cli, capsys, ["generate", "pixelcnn", "--n", "2", "--class", "all", "--json"])
    assert out["classes"] == ["T-shirt/top", "Trouser"]
    out = run_json(cli, capsys, ["generate", "pixelcnn", "--n", "1", "--class", "Ankle boot", "--temperature", "0.8",
                                 "--json"])
    assert out["classes"] == ["Ankle boot"] and out["temperature"] == 0.8
    assert cli(["generate", "pixelcnn", "--n", "1", "--class", "Hat"]) == 2
    assert cli(["generate", "pixelcnn", "--n", "1", "--temperature", "0"]) == 2
    assert cli(["generate", "pixelcnn", "--n", "1", "--seed", "-1"]) == 2


def test_cli_evaluate_and_write(cli, tiny_models, capsys):
    from vae_tiny import tiny_data

    out = run_json(cli, capsys, ["evaluate", "pixelcnn", "--data", str(tiny_data()), "--json", "--threads", "1",
                                 "--fid-samples", "10", "--write"])
    assert out["n_images"] == 40
    assert out["test_bits_per_dim"] == pytest.approx(out["recorded_test_bits_per_dim"], abs=1e-6)
    assert out["fid_n_samples"] == 10 and out["fid_samples"] >= 0
    written = json.loads((tiny_models / "pixelcnn-fashion-mnist" / "model.json").read_text())["metrics"]
    assert written["evaluate"]["test_bits_per_dim"] == pytest.approx(out["test_bits_per_dim"])
    assert written["evaluate"]["command"].startswith("genstudio evaluate pixelcnn")
    assert written["test_bits_per_dim"] == pytest.approx(out["recorded_test_bits_per_dim"])  # the build's stays


def test_cli_export_end_to_end(cli, tmp_path, capsys):
    from vae_tiny import tiny_data

    out_root = tmp_path / "out"
    ck = tmp_path / "run" / "pixelcnn.safetensors"
    argv = ["export", "pixelcnn", "--steps", "3", "--batch", "4", "--width", "4", "--layers", "2", "--train-images",
            "32", "--test-images", "8", "--fid-samples", "0", "--class-samples", "0", "--data", str(tiny_data()),
            "--out", str(out_root), "--threads", "1", "--checkpoint-to", str(ck)]
    assert cli(argv) == 0
    assert "bits/dim" in capsys.readouterr().out
    m = json.loads((out_root / "pixelcnn-fashion-mnist" / "model.json").read_text())
    assert m["build"]["command"].startswith("genstudio export pixelcnn --steps 3 --batch 4 --width 4 --layers 2 ")
    assert m["build"]["pixelcnn"]["dim"] == 4 and m["build"]["pixelcnn"]["head"] == 8 and ck.is_file()
    assert cli(["export", "pixelcnn", "--from-checkpoint", str(ck), "--test-images", "8", "--fid-samples", "0",
                "--class-samples", "0", "--data", str(tiny_data()), "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "pixelcnn-fashion-mnist" / "model.json").read_text())
    assert again["build"]["command"].startswith("genstudio export pixelcnn --steps 3 --batch 4 --width 4 --layers 2 ")
    assert again["metrics"]["test_bits_per_dim"] == pytest.approx(m["metrics"]["test_bits_per_dim"], abs=1e-9)
    assert cli(["export", "pixelcnn", "--from-checkpoint", str(tmp_path / "missing.safetensors")]) == 2
