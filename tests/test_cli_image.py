"""`genstudio generate image` and `genstudio evaluate diffusion` end to end on the tiny diffusion folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from genstudio import cli
from genstudio.cli import main
from genstudio.runtime.imaging import read_png_settings
from genstudio.runtime.manifest import Manifest

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def image_commands(monkeypatch):
    """The commands of genstudio.cli.image, whether or not FAMILY_MODULES lists the module yet."""
    if "genstudio.cli.image" not in cli.FAMILY_MODULES:
        monkeypatch.setattr(cli, "FAMILY_MODULES", [*cli.FAMILY_MODULES, "genstudio.cli.image"])


@pytest.fixture
def tiny_models(monkeypatch):
    from diffusion_tiny import tiny_diffusion_root

    monkeypatch.setenv("GENSTUDIO_MODELS", str(tiny_diffusion_root()))
    return tiny_diffusion_root()


@pytest.fixture
def own_models(tmp_path, monkeypatch):
    """A private copy of the tiny root, for commands that write model.json."""
    from diffusion_tiny import tiny_diffusion_root

    root = tmp_path / "models"
    shutil.copytree(tiny_diffusion_root(), root)
    monkeypatch.setenv("GENSTUDIO_MODELS", str(root))
    return root


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_generate_json_npy_png(tiny_models, tmp_path, capsys):
    npy, png = tmp_path / "g.npy", tmp_path / "g.png"
    argv = ["generate", "image", "--model", "diffusion-tiny", "--prompt", "a photo of a bag", "--negative", "a coat",
            "--steps", "3", "--guidance", "2.5", "--scheduler", "euler_a", "--seed", "7", "--batch", "3",
            "--npy", str(npy), "--out", str(png), "--json", "--threads", "1"]
    out = run_json(capsys, argv)
    assert out["shape"] == [3, 1, 8, 8] and out["seeds"] == [7, 8, 9] and out["unknown_words"] == []
    assert (out["steps"], out["scheduler"], out["guidance"], out["negative"]) == (3, "euler_a", 2.5, "a coat")
    assert out["written"] == {"out": str(png), "npy": str(npy)} and out["steps_per_second"] > 0
    images = np.load(npy)
    assert images.shape == (3, 8, 8, 1) and images.dtype == np.uint8
    settings = read_png_settings(png)
    assert settings["prompt"] == "a photo of a bag" and settings["seed"] == 7 and settings["model"] == "diffusion-tiny"
    assert settings["scheduler"] == "euler_a" and settings["steps"] == 3 and settings["guidance"] == 2.5
    again = tmp_path / "again.npy"
    run_json(capsys, [*argv[:-7], "--npy", str(again), "--json"])
    assert np.array_equal(np.load(again), images)  # the same seed, the same images


def test_generate_defaults_warnings_and_errors(tiny_models, tmp_path, capsys):
    assert main(["generate", "image", "--model", "diffusion-tiny", "--prompt", "a bag"]) == 0
    out = capsys.readouterr()
    assert "diffusion-tiny: 1 image(s) of 'a bag'" in out.out and "10 ddim steps, guidance 3" in out.out
    assert main(["generate", "image", "--model", "diffusion-tiny", "--prompt", "a zebra bag", "--negative", "quux",
                 "--steps", "2", "--json"]) == 0
    out = capsys.readouterr()
    summary, err = json.loads(out.out), out.err
    assert summary["unknown_words"] == ["zebra"] and summary["unknown_negative_words"] == ["quux"]
    assert "does not know these words of the prompt" in err and "zebra" in err and "quux" in err
    for bad, message in ((["--prompt", "a photo of a bag with a red cap and sunglasses"], "reads at most 8"),
                         (["--prompt", "a bag", "--scheduler", "plms"], "unknown scheduler"),
                         (["--prompt", "a bag", "--batch", "17"], "batch must be"),
                         (["--prompt", "a bag", "--model", "eval-fashion-mnist"], "not diffusion")):
        assert main(["generate", "image", *bad]) == 2
        assert message in capsys.readouterr().err


def test_generate_with_a_broken_tokenizer_says_so(own_models, capsys):
    (own_models / "diffusion-tiny" / "tokenizer" / "tokenizer.json").write_text("{not json")
    assert main(["generate", "image", "--model", "diffusion-tiny", "--prompt", "a bag"]) == 2
    assert "the tokenizer cannot be read" in capsys.readouterr().err


def test_generate_into_a_folder_that_cannot_be_written_says_so(tiny_models, tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    assert main(["generate", "image", "--model", "diffusion-tiny", "--prompt", "a bag", "--steps", "2",
                 "--out", str(blocker / "g.png")]) == 2
    assert "could not write the images" in capsys.readouterr().err


def test_evaluate_writes_metrics(own_models, capsys):
    folder = own_models / "diffusion-tiny"
    out = run_json(capsys, ["evaluate", "diffusion", "--model", "diffusion-tiny", "--n", "12", "--per-prompt", "1",
                            "--steps", "2", "--scheduler", "ddim", "--json", "--threads", "1"])
    assert out["model"] == "diffusion-tiny" and out["fid_n_samples"] == 12 and out["fid"] >= 0
    assert out["prompt_adherence"]["n_images"] == 10 and 0.0 <= out["class_accuracy"] <= 1.0
    assert out["quality_sampling"]["steps"] == 2 and out["quality_sampling"]["guidance"] == 3.0
    assert out["saved_to"] == str(folder / "model.json")
    metrics = Manifest.load(folder).metrics
    assert metrics["fid"] == out["fid"] and metrics["class_accuracy"] == out["class_accuracy"]
    assert metrics["evaluated_by"].startswith("genstudio evaluate diffusion --model diffusion-tiny --n 12")
    before = (folder / "model.json").read_text()
    assert main(["evaluate", "diffusion", "--model", "diffusion-tiny", "--n", "0", "--steps", "1", "--no-save"]) == 0
    assert "adherence class" in capsys.readouterr().out
    assert (folder / "model.json").read_text() == before
    assert main(["evaluate", "diffusion", "--n", "3"]) == 2


def test_evaluate_without_an_evaluator_says_so(own_models, capsys):
    shutil.rmtree(own_models / "eval-fashion-mnist")
    assert main(["evaluate", "diffusion", "--model", "diffusion-tiny", "--n", "8", "--steps", "1"]) == 2
    assert "no evaluator" in capsys.readouterr().err


def test_synthfaces_held_out_prompts():
    from genstudio.cli.image import synthfaces_fid_prompts, synthfaces_targets
    from genstudio.export.data.synthfaces_attributes import ATTRIBUTES, HELD_OUT, HELD_OUT_KEYS
    from genstudio.export.data.synthfaces_captions import tokenize, vocabulary

    targets = synthfaces_targets()
    words = set(vocabulary())
    assert len(targets) == len(HELD_OUT) == 16
    assert {tuple(e[k] for k in HELD_OUT_KEYS) for _, e in targets} == set(HELD_OUT)  # each combination once
    for prompt, expected in targets:
        assert set(tokenize(prompt)) <= words, prompt  # a trained model knows every word
        assert all(v in ATTRIBUTES[k] for k, v in expected.items())
        assert ("wearing" in prompt) and (("background" in prompt) == ("background" in expected))
    assert sum("headwear" in e for _, e in targets) == 8 and sum("background" in e for _, e in targets) == 6
    short = synthfaces_fid_prompts(6, lambda t: len(tokenize(t)) <= 12)
    assert len(short) == 6 and all(len(tokenize(t)) <= 12 for t in short)
    assert synthfaces_fid_prompts(6, lambda t: len(tokenize(t)) <= 12) == short  # fixed by the seed


def test_synthfaces_real_faces_carry_each_prompts_attributes():
    from genstudio.cli.image import synthfaces_real_faces, synthfaces_targets
    from genstudio.export.data import synthfaces

    targets = synthfaces_targets()[:3]
    faces, note = synthfaces_real_faces(targets, 2, 32)
    assert faces.shape == (6, 32, 32, 3) and faces.dtype == np.uint8 and "32x32" in note
    again, _ = synthfaces_real_faces(targets, 2, 32)
    assert np.array_equal(faces, again) and not np.array_equal(faces[0], faces[1])  # fixed faces, not one face
    full = synthfaces.render(0, targets[0][1])[0]  # the pinned attributes are what the face shows
    assert full.shape == (64, 64, 3)


def test_synthfaces_real_faces_have_hair_where_the_prompt_names_its_colour(monkeypatch):
    from genstudio.cli.image import synthfaces_real_faces
    from genstudio.export.data import synthfaces

    drawn = []
    render = synthfaces.render
    monkeypatch.setattr(synthfaces, "render", lambda s, o=None: drawn.append(render(s, o)[1]) or render(s, o))
    target = ("a man with black hair", {"gender": "man", "hair_colour": "black"})  # men are bald one time in 7
    faces, _ = synthfaces_real_faces([target], 24, 32)
    assert faces.shape == (24, 32, 32, 3) and len(drawn) == 24
    assert all(a["hair_style"] != "bald" and a["hair_colour"] == "black" for a in drawn)
    drawn.clear()
    synthfaces_real_faces([("a smiling man", {"gender": "man", "expression": "smiling"})], 24, 32)
    assert any(a["hair_style"] == "bald" for a in drawn)  # no hair colour named: any face will do


def test_real_images_give_the_evaluators_ceiling(own_models):
    from genstudio.engines.diffusion.pipeline import DiffusionModel
    from genstudio.engines.diffusion.quality import class_targets, measure
    from genstudio.engines.evaluate import Evaluator
    from genstudio.runtime.registry import Registry
    from genstudio.runtime.sessions import SessionPool

    registry = Registry([(own_models, "shipped")])
    pool = SessionPool()
    model = DiffusionModel(registry.get("diffusion-tiny"), pool)
    targets = class_targets(model, Evaluator.open(registry, "fashion-mnist", pool).heads)
    blank = np.zeros((len(targets), 28, 28), np.uint8)
    out = measure(model, own_models, targets=targets, n=0, per_prompt=1, steps=1, real_images=blank,
                  real_note="blank images")
    real = out["prompt_adherence"]["real_images"]
    assert real["method"] == "blank images" and 0.0 <= real["accuracy"]["class"] <= 0.2  # one class at most
    with pytest.raises(ValueError, match="real images"):
        measure(model, own_models, targets=targets, n=0, per_prompt=1, steps=1, real_images=blank[:3])
