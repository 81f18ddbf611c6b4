"""`genstudio generate gan` on the tiny model (--json, --npy, --out, --truncation) and `export gan`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genstudio.cli import main
from genstudio.runtime.imaging import read_png_settings
from genstudio.runtime.manifest import Manifest

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_models(monkeypatch):
    from gan_tiny import tiny_gan_root

    monkeypatch.setenv("GENSTUDIO_MODELS", str(tiny_gan_root()))


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_generate_json_npy_png(tiny_models, tmp_path, capsys):
    npy, png = tmp_path / "s.npy", tmp_path / "s.png"
    out = run_json(capsys, ["generate", "gan", "--model", "gan-fashion-mnist", "--n", "6", "--seed", "2",
                            "--truncation", "0.5", "--npy", str(npy), "--out", str(png), "--json", "--threads", "1"])
    assert out["n"] == 6 and out["truncation"] == 0.5 and out["shape"] == [6, 1, 28, 28]
    assert out["written"] == {"out": str(png), "npy": str(npy)}
    images = np.load(npy)
    assert images.shape == (6, 28, 28, 1) and images.dtype == np.uint8
    assert read_png_settings(png)["truncation"] == 0.5
    again = tmp_path / "again.npy"
    run_json(capsys, ["generate", "gan", "--n", "6", "--seed", "2", "--truncation", "0.5", "--npy", str(again), "--json"])
    assert np.array_equal(np.load(again), images)  # the default model, the same seed, the same images


def test_generate_truncation_zero_is_one_image(tiny_models, tmp_path, capsys):
    npy = tmp_path / "mean.npy"
    run_json(capsys, ["generate", "gan", "--n", "4", "--truncation", "0", "--npy", str(npy), "--json"])
    images = np.load(npy).astype(int)
    assert np.abs(images - images[:1]).max() <= 1


def test_generate_human_line_and_errors(tiny_models, capsys):
    assert main(["generate", "gan", "--n", "2"]) == 0
    assert "gan-fashion-mnist: 2 samples" in capsys.readouterr().out
    assert main(["generate", "gan", "--n", "0"]) == 2
    assert main(["generate", "gan", "--model", "no-such-model"]) == 2


def test_generate_bad_input_and_unwritable_paths_are_one_line(tiny_models, tmp_path, capsys):
    from cli_errors import assert_one_line_errors

    assert_one_line_errors(main, "gan", [(["--seed", "-1"], "--seed must be 0 or more"),
                                          (["--truncation", "nan"], "--truncation must be a number")], tmp_path, capsys)


def test_generate_with_a_broken_model_folder_is_one_line(tmp_path, capsys, monkeypatch):
    import shutil

    from gan_tiny import TINY_GAN, tiny_gan_root

    for broken, text in (("w_avg.npy", b"not an npy"), ("synthesis.onnx", b"not onnx")):
        root = tmp_path / broken
        shutil.copytree(tiny_gan_root(), root)
        (root / TINY_GAN / broken).write_bytes(text)
        monkeypatch.setenv("GENSTUDIO_MODELS", str(root))
        assert main(["generate", "gan", "--model", TINY_GAN, "--n", "2"]) == 2, broken
        err = capsys.readouterr().err
        assert f"{TINY_GAN} cannot be used" in err and "Traceback" not in err, broken


def test_export_from_checkpoint_records_command(tmp_path, capsys):
    from gan_tiny import tiny_gan_folder
    from vae_tiny import tiny_data

    ckpt = tiny_gan_folder() / "gan.safetensors"
    out = tmp_path / "models"
    assert main(["export", "gan", "--dataset", "fashion-mnist", "--from-checkpoint", str(ckpt), "--fid-samples", "0",
                 "--data", str(tiny_data()), "--out", str(out), "--docs", str(tmp_path / "docs"), "--threads", "1"]) == 0
    m = Manifest.load(out / "gan-fashion-mnist")
    assert m.build["command"].startswith("genstudio export gan --dataset fashion-mnist --steps 4 --batch 8")
    assert "--from-checkpoint" in m.build["command"] and m.metrics["train_steps"] == 4
    assert (tmp_path / "docs" / "gan-curves-fashion-mnist.png").is_file()
    assert "parity" in capsys.readouterr().out


def test_export_names_a_bf16_precision_in_its_command_only():
    from genstudio.cli import build_parser
    from genstudio.cli.gan import _command

    parser, _ = build_parser()
    for extra, named in (([], False), (["--precision", "bfloat16"], True)):
        args = parser.parse_args(["export", "gan", "--dataset", "synthfaces", *extra])
        command = _command(args, 10, 16, (8, 8), (8, 8))
        assert ("--precision bfloat16" in command) == named and "float32" not in command
    with pytest.raises(SystemExit):
        parser.parse_args(["export", "gan", "--dataset", "synthfaces", "--precision", "float16"])


def narrow_run(folder) -> str:
    """A one-step Fashion-MNIST run of the CLI's design (z 8, w 8, g 8,8,4,4, d 4,4,8,8): a checkpoint to widen."""
    import torch

    from genstudio.export.gan.checkpoint import save_checkpoint
    from genstudio.export.gan.generator import GanConfig
    from genstudio.export.gan.train import GanTrainConfig, GanTrainer, build_models

    narrow = GanConfig(channels=1, size=28, z_dim=8, w_dim=8, g_widths=(8, 8, 4, 4), d_widths=(4, 4, 8, 8))
    trainer = GanTrainer(GanTrainConfig(steps=1, batch_size=8), *build_models(narrow, 0), torch.rand(8, 1, 28, 28))
    return str(save_checkpoint(folder / "gan.safetensors", trainer.run(), narrow,
                               stages='["genstudio export gan --dataset fashion-mnist --steps 1 (narrow)"]'))


def test_resume_and_widen_are_checked_before_training_and_recorded_in_the_command(tmp_path):
    from gan_tiny import tiny_gan_folder

    from genstudio.cli import CliError, build_parser
    from genstudio.cli.gan import _command, cmd_export

    ckpt = narrow_run(tmp_path / "narrow")
    parser, _ = build_parser()
    base = ["export", "gan", "--dataset", "fashion-mnist", "--z-dim", "8", "--w-dim", "8",
            "--checkpoint-to", str(tmp_path / "run.safetensors"), "--out", str(tmp_path / "out")]
    wider = ["--g-widths", "8,8,4,8", "--d-widths", "8,4,8,8"]
    for extra, message in (
            (["--widen", *wider], "--widen goes with --resume"),
            (["--resume", ckpt, "--widen", "--g-widths", "8,8,4,2", "--d-widths", "4,4,8,8"], "not a widening"),
            (["--resume", ckpt, "--widen", "--g-widths", "8,8,4", "--d-widths", "4,8,8"], "not a widening"),
            (["--resume", ckpt, "--widen", "--g-widths", "8,8,4,8", "--d-widths", "8,4,8,16"], "last width"),
            (["--resume", ckpt, "--widen", *wider, "--w-dim", "16"], "keeps them"),
            (["--resume", ckpt, *wider], "add --widen"),
            (["--resume", ckpt, "--lr", "-0.001"], "--lr must be a positive number"),
            (["--resume", ckpt, "--fourier", "-1"], "--fourier must be 0 or more"),
            (["--resume", ckpt, "--widen", *wider, "--fourier", "2"], "keeps it"),
            (["--resume", str(tiny_gan_folder() / "gan.safetensors"), "--widen", *wider], "2 layers")):
        with pytest.raises(CliError, match=message):
            cmd_export(parser.parse_args([*base, *extra]))
    args = parser.parse_args([*base, "--resume", ckpt, "--widen", *wider])
    assert _command(args, 6, 8, (8, 8, 4, 8), (8, 4, 8, 8)).endswith("--widen")


def test_export_continues_a_narrow_run_in_wider_networks(tmp_path, capsys):
    from vae_tiny import tiny_data

    ckpt = narrow_run(tmp_path / "narrow")
    out = tmp_path / "models"
    assert main(["export", "gan", "--dataset", "fashion-mnist", "--steps", "6", "--batch", "8", "--z-dim", "8",
                 "--w-dim", "8", "--g-widths", "8,8,4,8", "--d-widths", "8,4,8,8", "--r1-every", "2",
                 "--train-images", "64", "--fid-samples", "0", "--data", str(tiny_data()), "--threads", "1",
                 "--out", str(out), "--docs", str(tmp_path / "docs"),
                 "--checkpoint-to", str(tmp_path / "run" / "gan.safetensors"), "--resume", ckpt, "--widen",
                 "--lr", "0.001"]) == 0
    m = Manifest.load(out / "gan-fashion-mnist")
    assert m.metrics["train_steps"] == 6 and m.build["gan"]["g_widths"] == [8, 8, 4, 8]
    assert m.build["train"]["g_lr"] == m.build["train"]["d_lr"] == 0.001  # the stage's own learning rate
    stages = m.build["from_checkpoint"]["stages"]
    assert stages[0].endswith("(narrow)") and {"--widen", "--lr"} <= set(stages[1].split())
    assert "parity" in capsys.readouterr().out


def test_export_trains_and_exports_fourier_features(tmp_path, capsys):
    from vae_tiny import tiny_data

    out = tmp_path / "models"
    assert main(["export", "gan", "--dataset", "fashion-mnist", "--steps", "3", "--batch", "8", "--z-dim", "8",
                 "--w-dim", "8", "--g-widths", "8,8,4,4", "--d-widths", "4,4,8,8", "--fourier", "2",
                 "--train-images", "64", "--fid-samples", "0", "--data", str(tiny_data()), "--threads", "1",
                 "--out", str(out), "--docs", str(tmp_path / "docs")]) == 0
    m = Manifest.load(out / "gan-fashion-mnist")
    assert m.build["gan"]["fourier"] == 2 and "--fourier 2" in m.build["command"]
    assert m.metrics["parity"]["max_abs_diff_image"] < 1e-4  # the sinusoids export (Sin) and match PyTorch
    assert "parity" in capsys.readouterr().out
