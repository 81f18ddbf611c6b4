"""The diffusion engine on tiny folders: prompts, seeds, batches, previews, stopping, guidance, measurement.

diffusion-oracle's UNet returns the exact epsilon of a clean image that depends only on the text, so every
scheduler must end on that image (and guidance on the guided mix of two of them); diffusion-tiny adds a
sample-dependent error, so there the seed matters.
"""

from __future__ import annotations

import numpy as np
import pytest

from genstudio.engines.diffusion import quality as Q
from genstudio.engines.diffusion.pipeline import DiffusionModel, DiffusionStep, ImageRequest, to_unit
from genstudio.engines.diffusion.schedulers import SCHEDULERS
from genstudio.runtime.jobs import Cancelled, drive

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def root():
    from diffusion_tiny import tiny_diffusion_root

    return tiny_diffusion_root()


@pytest.fixture(scope="module")
def pool():
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    return SessionPool(SessionConfig(provider="cpu", threads=1))


def open_model(root, pool, name):
    from genstudio.runtime.registry import Registry

    return DiffusionModel(Registry([(root, "shipped")]).get(name), pool)


@pytest.fixture(scope="module")
def tiny(root, pool):
    from diffusion_tiny import TINY

    return open_model(root, pool, TINY)


@pytest.fixture(scope="module")
def oracle(root, pool):
    from diffusion_tiny import ORACLE

    return open_model(root, pool, ORACLE)


def target(model: DiffusionModel, text: str) -> np.ndarray:
    """The oracle's clean image for a text, from the graphs' own weights: 0.9 tanh(W mean(states) + b)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model.entry.path("unet")))
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    hidden = model.encode_text([text])[0]  # (L, D)
    x0 = 0.9 * np.tanh(weights["to_image.weight"] @ hidden.mean(0) + weights["to_image.bias"])
    return x0.reshape(model.image_shape).astype(np.float32)


# -- prompts --------------------------------------------------------------------------------------------------
def test_vocabulary_and_prompt_check(tiny):
    vocab = tiny.vocabulary
    assert vocab == sorted(vocab) and "photo" in vocab and "[PAD]" not in vocab and "[UNK]" not in vocab
    check = tiny.check_prompt("A Photo of a Zebra, quux zebra.")
    assert check.words == ["a", "photo", "of", "a", "zebra", "quux", "zebra"]  # punctuation is dropped
    assert check.unknown == ["zebra", "quux"]  # reported once each, in order; they run as [UNK]
    assert check.n_tokens == 7 and check.max_length == 8 and not check.too_long and not check.ok
    long = tiny.check_prompt("a photo of a bag with a red cap and sunglasses")
    assert long.too_long and long.n_tokens == 11 and long.unknown == []
    assert tiny.check_prompt("").n_tokens == 0 and tiny.check_prompt("a bag").ok
    ids = tiny.token_ids("a bag")
    assert ids.dtype == np.int64 and ids.shape == (8,) and (ids[2:] == 0).all() and (ids[:2] > 1).all()
    assert (tiny.token_ids("") == 0).all()  # the empty prompt is all padding: the unconditional input


def test_bad_requests_fail_at_the_call(tiny):
    with pytest.raises(ValueError, match="reads at most 8"):
        tiny.sample(ImageRequest("a photo of a bag with a red cap and sunglasses"))
    with pytest.raises(ValueError, match="negative prompt has 9 tokens"):
        tiny.sample(ImageRequest("a bag", negative="a b c d e f g h i"))
    with pytest.raises(ValueError, match="ddpm, ddim, euler_a, dpmpp_2m"):
        tiny.sample(ImageRequest("a bag", scheduler="plms"))
    for bad in ({"batch": 0}, {"batch": 17}, {"steps": 0}, {"steps": 1001}, {"guidance": -1.0},
                {"guidance": float("nan")}, {"seed": -1}, {"preview": "latent"}):
        with pytest.raises(ValueError):
            tiny.sample(ImageRequest("a bag", **bad))
    with pytest.raises(ValueError, match="not a diffusion model"):
        from diffusion_tiny import TINY_EVAL

        from genstudio.runtime.registry import Registry

        DiffusionModel(Registry([(tiny.entry.folder.parent, "shipped")]).get(TINY_EVAL), tiny.pool)


def test_a_broken_tokenizer_or_scheduler_config_is_a_value_error(root, pool, tmp_path):
    import shutil

    from diffusion_tiny import TINY

    for broken, text, match in (("tokenizer/tokenizer.json", "{not json", "tokenizer cannot be read"),
                                ("scheduler/scheduler_config.json", '{"beta_end": [1]}', "scheduler config")):
        folder = tmp_path / broken.split("/")[0] / TINY
        shutil.copytree(root / TINY, folder)
        (folder / broken).write_text(text)
        model = open_model(folder.parent, pool, TINY)
        with pytest.raises(ValueError, match=match):  # what the tab and the CLI show as a message
            model.sample(ImageRequest("a bag"))


def test_defaults_come_from_the_manifest(tiny):
    r = tiny.resolve(ImageRequest("a bag"))
    assert (r.steps, r.guidance, r.scheduler) == (10, 3.0, "ddim")
    assert tiny.resolve(ImageRequest("a bag", steps=3, guidance=1.0, scheduler="euler_a")).steps == 3


# -- seeds and batches ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheduler", ["euler_a", "dpmpp_2m"])
def test_same_seed_same_images_and_batch_image_k_is_seed_plus_k(tiny, scheduler):
    req = ImageRequest("a photo of a bag", steps=4, scheduler=scheduler, seed=10, batch=3, preview="none")
    a, b = drive(tiny.sample(req)), drive(tiny.sample(req))
    assert a.images.shape == (3, 1, 8, 8) and a.images.dtype == np.float32
    assert 0.0 <= a.images.min() and a.images.max() <= 1.0
    assert np.array_equal(a.images, b.images)
    assert a.seeds == [10, 11, 12] and a.settings["seed"] == 10
    assert not np.allclose(a.images[0], a.images[1], atol=1e-3)  # each image has its own noise
    single = drive(tiny.sample(ImageRequest("a photo of a bag", steps=4, scheduler=scheduler, seed=11)))
    assert np.allclose(single.images[0], a.images[1], atol=1e-5)
    other = drive(tiny.sample(ImageRequest("a photo of a bag", steps=4, scheduler=scheduler, seed=99)))
    assert not np.allclose(other.images[0], a.images[0], atol=1e-3)


def test_batch_sizes_and_settings(tiny):
    for batch in (1, 2, 16):
        result = drive(tiny.sample(ImageRequest("a coat", steps=2, batch=batch, preview="none")))
        assert result.images.shape == (batch, 1, 8, 8)
    assert result.settings == {"family": "diffusion", "model": "diffusion-tiny", "version": "1", "prompt": "a coat",
                               "negative": "", "seed": 0, "steps": 2, "scheduler": "ddim", "guidance": 3.0,
                               "batch": 16, "unet": "float32"}
    assert result.seconds > 0 and result.unknown == []


# -- the job: previews, stopping ----------------------------------------------------------------------------
def test_every_step_yields_a_preview_and_the_filmstrip(tiny):
    job = tiny.sample(ImageRequest("a photo of a dress", steps=6, scheduler="ddpm", batch=2, preview="noisy", seed=1))
    items = []
    while True:
        try:
            items.append(next(job))
        except StopIteration as stop:
            result = stop.value
            break
    sched = tiny.make_scheduler("ddpm")
    sched.set_timesteps(6)
    assert [p.step for p in items] == list(range(1, 7)) and all(p.total == 6 for p in items)
    assert "steps/s" in items[0].message
    steps = [p.preview for p in items]
    assert all(isinstance(s, DiffusionStep) for s in steps)
    assert [s.index for s in steps] == list(range(6)) and [s.timestep for s in steps] == list(sched.timesteps)
    assert all(s.x0.shape == s.noisy.shape == (2, 1, 8, 8) for s in steps)
    assert all(0.0 <= s.x0.min() and s.x0.max() <= 1.0 and 0.0 <= s.noisy.min() and s.noisy.max() <= 1.0
               for s in steps)
    assert all(s.image is s.noisy for s in steps)
    assert np.all(np.diff([s.elapsed for s in steps]) >= 0)
    assert len(result.steps) == 6 and result.steps[0].dtype == np.uint8 and result.steps[0].shape == (2, 1, 8, 8)
    assert np.abs(result.steps[-1].astype(int) - np.rint(steps[-1].x0 * 255)).max() <= 1
    assert np.allclose(steps[-1].noisy, result.images)  # after the last step the sample is the image

    quiet_steps: list = []
    quiet = tiny.sample(ImageRequest("a photo of a dress", steps=3, preview="none"))
    result = drive(quiet, lambda p: quiet_steps.append(p.preview))
    assert len(quiet_steps) == 3 and all(s.x0 is None and s.noisy is None and s.image is None for s in quiet_steps)
    assert result.steps == []
    x0_only = drive(tiny.sample(ImageRequest("a photo of a dress", steps=2)), lambda p: quiet_steps.append(p.preview))
    assert quiet_steps[-1].x0 is not None and quiet_steps[-1].noisy is None and quiet_steps[-1].image is quiet_steps[-1].x0
    assert len(x0_only.steps) == 2


def test_closing_the_job_midway_keeps_the_last_preview(tiny):
    job = tiny.sample(ImageRequest("a photo of a sandal", steps=8, scheduler="euler_a", batch=2, seed=4))
    last = [next(job) for _ in range(3)][-1]
    kept = last.preview.x0.copy()
    job.close()
    with pytest.raises(StopIteration):
        next(job)
    assert last.preview.index == 2 and np.array_equal(last.preview.x0, kept)
    seen = []
    with pytest.raises(Cancelled) as stop:
        drive(tiny.sample(ImageRequest("a bag", steps=8)), seen.append, should_stop=lambda: len(seen) >= 2)
    assert stop.value.last.step == 2 and stop.value.last.preview.x0.shape == (1, 1, 8, 8)


# -- oracle: the pipeline lands on the prompt's image -------------------------------------------------------
@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_every_scheduler_lands_on_the_prompts_image(oracle, scheduler):
    x0 = target(oracle, "a photo of a bag")
    for steps, seed in ((1, 0), (7, 3)):
        result = drive(oracle.sample(ImageRequest("a photo of a bag", steps=steps, guidance=1.0, scheduler=scheduler,
                                                  seed=seed, batch=2, preview="none")))
        assert np.abs(result.images - to_unit(x0, (-1, 1))[None]).max() < 1e-3


@pytest.mark.parametrize("scheduler", ["ddim", "dpmpp_2m"])
def test_guidance_mixes_the_prompt_and_the_negative(oracle, scheduler):
    cond, neg = target(oracle, "a photo of a boot"), target(oracle, "sad woman")
    empty = target(oracle, "")
    for g, negative, want in ((2.5, "sad woman", neg + 2.5 * (cond - neg)), (1.0, "sad woman", cond),
                              (0.0, "sad woman", neg), (4.0, "", empty + 4.0 * (cond - empty))):
        result = drive(oracle.sample(ImageRequest("a photo of a boot", negative, steps=5, guidance=g,
                                                  scheduler=scheduler, preview="none")))
        assert np.abs(result.images[0] - to_unit(np.clip(want, -1, 1), (-1, 1))).max() < 1e-3, (g, negative)


def test_guidance_runs_one_unet_batch_of_2b_and_caches_the_text(tiny, monkeypatch):
    unet, text = tiny._session("unet"), tiny._session("text_encoder")
    calls: list[tuple[str, tuple]] = []
    for name, sess in (("unet", unet), ("text", text)):
        real = sess.run

        def spy(outputs, feeds, options=None, _real=real, _name=name):
            calls.append((_name, next(iter(feeds.values())).shape))
            return _real(outputs, feeds, options)

        monkeypatch.setattr(sess, "run", spy)
    drive(tiny.sample(ImageRequest("a photo of a coat", "a bag", steps=3, guidance=2.0, batch=3, preview="none")))
    assert [c for c in calls if c[0] == "unet"] == [("unet", (6, 1, 8, 8))] * 3
    calls.clear()
    drive(tiny.sample(ImageRequest("a photo of a coat", "a bag", steps=3, guidance=1.0, batch=3, preview="none")))
    assert calls == [("unet", (3, 1, 8, 8))] * 3  # no uncond half, and both texts came from the cache


def test_unknown_words_are_reported_in_the_result(tiny):
    result = drive(tiny.sample(ImageRequest("a zebra bag", "quux", steps=2, preview="none")))
    assert result.unknown == ["zebra", "quux"]


def test_sample_prompts_matches_single_requests(tiny):
    images = drive(tiny.sample_prompts(["a coat", "a bag", "a coat"], [5, 6, 7], steps=3, scheduler="euler_a"))
    assert images.shape == (3, 1, 8, 8)
    for k, (prompt, seed) in enumerate((("a coat", 5), ("a bag", 6), ("a coat", 7))):
        one = drive(tiny.sample(ImageRequest(prompt, steps=3, scheduler="euler_a", seed=seed, preview="none")))
        assert np.allclose(images[k], one.images[0], atol=1e-5)
    with pytest.raises(ValueError):
        tiny.sample_prompts(["a coat"], [1, 2])


# -- measurement ----------------------------------------------------------------------------------------------
def test_adherence_counts_each_prompted_attribute():
    heads = {"hair": ["red", "blue"], "glasses": ["none", "round"]}
    targets = [Q.PromptTarget("red hair", {"hair": "red"}),
               Q.PromptTarget("blue hair, round glasses", {"hair": "blue", "glasses": "round"})]
    preds = {"hair": np.array([0, 1, 1, 1]), "glasses": np.array([0, 0, 1, 0])}
    out = Q.adherence(targets, 2, preds, heads)
    assert out["accuracy"] == {"hair": 0.75, "glasses": 0.5}
    assert out["all_correct"] == 0.5 and out["chance"] == {"hair": 0.5, "glasses": 0.5}
    assert out["per_prompt"][1]["accuracy"] == {"hair": 1.0, "glasses": 0.5} and out["n_images"] == 4
    assert out["confusion"] == {"hair": {"blue": {"blue": 2}, "red": {"red": 1, "blue": 1}},
                                "glasses": {"round": {"round": 1, "none": 1}}}  # what each prompted value was read as
    with pytest.raises(ValueError, match="no head"):
        Q.adherence([Q.PromptTarget("x", {"hat": "cap"})], 1, preds, heads)
    with pytest.raises(ValueError, match="not one of"):
        Q.adherence([Q.PromptTarget("x", {"hair": "green"})], 1, preds, heads)


def test_measure_on_the_tiny_model(tiny, root):
    seen = []
    result = Q.measure(tiny, root, n=12, per_prompt=2, steps=2, scheduler="dpmpp_2m", guidance=2.0,
                       on_progress=seen.append)
    adh = result["prompt_adherence"]
    assert adh["n_prompts"] == 10 and adh["n_images"] == 20 and set(adh["accuracy"]) == {"class"}
    assert result["class_accuracy"] == adh["accuracy"]["class"] and 0.0 <= result["class_accuracy"] <= 1.0
    assert adh["per_prompt"][0] == {"prompt": "a photo of a top", "expected": {"class": "T-shirt/top"},
                                    "accuracy": {"class": adh["per_prompt"][0]["accuracy"]["class"]}}
    assert result["fid"] >= 0 and result["fid_n_samples"] == 12 and result["fid_name"] == "FID (tiny-eval features)"
    assert set(result["precision_recall"]) >= {"precision", "recall", "coverage"}
    assert result["quality_sampling"] == {"steps": 2, "scheduler": "dpmpp_2m", "guidance": 2.0, "negative": "",
                                          "seed": 0, "unet": "float32"}
    assert sum(result["fid_predicted_class_share"].values()) == pytest.approx(1.0, abs=1e-3)
    assert seen[-1].step == seen[-1].total == (2 + 1) * 2  # 20 + 12 images in batches of 16, 2 steps each
    assert Q.measure(tiny, root / "nowhere", n=12)["skipped"].startswith("no evaluator")
    with pytest.raises(ValueError, match="more than 5"):
        Q.measure(tiny, root, n=3)
