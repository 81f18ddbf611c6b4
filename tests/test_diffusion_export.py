"""The diffusion export: tokenizer, noise schedule, UNet, training data, the exported folder, CLI and resume."""

from __future__ import annotations

import argparse
import functools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from session_dirs import session_dir

torch = pytest.importorskip("torch")
from genstudio.export.diffusion.text_encoder import TextConfig  # noqa: E402
from genstudio.export.diffusion.tokenizer import (  # noqa: E402
    build_tokenizer,
    dataset_vocabulary,
    encode,
    fashion_mnist_captions,
    longest_caption,
)
from genstudio.export.diffusion.train import (  # noqa: E402
    DiffusionModel,
    DiffusionTrainConfig,
    NoiseSchedule,
    TrainingData,
    make_batch,
)
from genstudio.export.diffusion.unet import UNet, UNetConfig  # noqa: E402

TINY = ["--widths", "8,16", "--blocks", "1", "--attention", "1", "--text-dim", "16", "--text-layers", "1",
        "--batch", "8", "--train-images", "40", "--threads", "1"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on a busy 2-core machine two threads wait on each other at every small op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(argv: list[str]) -> int:
    """`genstudio export diffusion ...` through this module's own parser (as genstudio.cli.main runs it)."""
    from genstudio.cli import CommandGroups
    from genstudio.cli import diffusion as cli

    parser = argparse.ArgumentParser(prog="genstudio")
    root = parser.add_subparsers(dest="command")
    groups = CommandGroups(*(root.add_parser(k).add_subparsers(dest="family") for k in ("generate", "export",
                                                                                        "evaluate")), root=root)
    cli.register(groups)
    args = parser.parse_args(argv)
    return args.handler(args)


@functools.cache
def tiny_run() -> tuple[Path, Path, Path]:
    """(model folder, checkpoint, fake data): 6 steps with a checkpoint every 3, exported by the CLI."""
    from flow_tiny import make_fake_dataset

    torch.set_num_threads(1)
    work = session_dir("genstudio-diffusion-tiny-")
    data = make_fake_dataset(work / "data", n_train=40, n_test=10)
    ckpt = work / "run" / "diffusion.safetensors"
    assert run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--steps", "6", *TINY, "--data", str(data),
                    "--checkpoint-to", str(ckpt), "--checkpoint-every", "3", "--out", str(work / "models")]) == 0
    return work / "models" / "diffusion-fashion-mnist", ckpt, data


# ---- tokenizer -------------------------------------------------------------------------------------
def test_tokenizer_pads_and_drops_punctuation(tmp_path):
    from tokenizers import Tokenizer

    tok = build_tokenizer(dataset_vocabulary("fashion-mnist"))
    vocab = tok.get_vocab()
    assert vocab["[PAD]"] == 0 and vocab["[UNK]"] == 1
    ids = encode(tok, ["A photo of a T-shirt!", "", "a photo of a zebra"], max_length=16)
    assert ids.dtype == np.int64 and ids.shape == (3, 16)
    assert list(ids[0, :6]) == [vocab[w] for w in ("a", "photo", "of", "a", "t", "shirt")] and not ids[0, 6:].any()
    assert not ids[1].any()  # the empty prompt is all padding: the unconditional input
    assert ids[2, 4] == 1  # an unknown word
    assert encode(tok, ["a " * 40], max_length=16).shape == (1, 16)  # cut, never longer
    tok.save(str(tmp_path / "tokenizer.json"))
    again = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert again.encode("a photo of an ankle boot").ids == tok.encode("a photo of an ankle boot").ids
    assert again.padding is None and again.truncation is None


def test_vocabularies_cover_the_captions():
    from genstudio.export.data import synthfaces
    from genstudio.export.diffusion.build import DATASET_DEFAULTS, EXAMPLE_PROMPTS

    for dataset in ("fashion-mnist", "synthfaces"):
        tok = build_tokenizer(dataset_vocabulary(dataset))
        assert longest_caption(dataset, tok, n=2000) <= DATASET_DEFAULTS[dataset]["max_length"]
        assert not (encode(tok, EXAMPLE_PROMPTS[dataset], 64) == 1).any()
    tok = build_tokenizer(dataset_vocabulary("synthfaces"))
    rng = np.random.default_rng(0)
    captions = [synthfaces.caption(synthfaces.attributes(s), rng) for s in range(300)]
    assert not (encode(tok, captions, 64) == 1).any()
    assert not (encode(build_tokenizer(dataset_vocabulary("fashion-mnist")), fashion_mnist_captions(), 16) == 1).any()


# ---- schedule and networks --------------------------------------------------------------------------
def test_noise_schedule_uses_diffusers_formulas():
    s = NoiseSchedule()
    betas = s.betas()
    assert betas.dtype == torch.float32 and len(betas) == 1000
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    abar = s.alphas_cumprod()
    assert abar[0].item() == pytest.approx(1 - 1e-4) and 0 < abar[-1].item() < 1e-4
    assert torch.all(abar[1:] < abar[:-1])
    cos = NoiseSchedule(beta_schedule="squaredcos_cap_v2").alphas_cumprod()
    assert cos[499].item() == pytest.approx(np.cos((0.5 + 0.008) / 1.008 * np.pi / 2) ** 2, rel=1e-3)
    cfg = s.scheduler_config()
    assert cfg == {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02,
                   "prediction_type": "epsilon", "clip_sample": True, "clip_sample_range": 1.0}


@pytest.mark.parametrize("channels,size,widths,attention", [(1, 16, (8, 16, 16), (1, 2)), (3, 24, (8, 16, 16), (2,)),
                                                            (3, 8, (8, 16), ())])
def test_unet_shapes_and_fractional_timesteps(channels, size, widths, attention):
    torch.manual_seed(0)
    unet = UNet(UNetConfig(channels=channels, size=size, widths=widths, blocks=2, attention=attention,
                           context_dim=16, head_dim=8, groups=4))
    for p in unet.parameters():  # leave the zero init, so the output depends on every input
        p.data.add_(0.05 * torch.randn_like(p))
    x = torch.randn(3, channels, size, size)
    ctx = torch.randn(3, 5, 16)
    with torch.no_grad():
        a = unet(x, torch.tensor([0.0, 10.0, 999.0]), ctx)
        b = unet(x, torch.tensor([0.0, 10.5, 999.0]), ctx)
        c = unet(x, torch.tensor([0.0, 10.0, 999.0]), ctx + 1)
    assert a.shape == x.shape
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])  # a fractional timestep is its own input
    assert not torch.allclose(a, c)  # the text matters (through the middle block at least)


def test_unet_rejects_a_size_that_does_not_halve():
    with pytest.raises(ValueError, match="halve"):
        UNet(UNetConfig(size=30, widths=(8, 16, 32)))


# ---- data and batches -------------------------------------------------------------------------------
def test_synthfaces_trains_on_the_train_split_with_fresh_captions():
    from genstudio.export.data import synthfaces
    from genstudio.export.diffusion.data import training_set

    images, captions = training_set("synthfaces", size=32, n=24)
    assert images.shape == (24, 3, 32, 32) and images.dtype == np.uint8
    faces, attrs = synthfaces.sample(24, seed=0, split="train")
    assert not any(synthfaces.is_held_out(a) for a in attrs)
    from PIL import Image

    first = np.asarray(Image.fromarray(faces[0]).resize((32, 32), Image.Resampling.BOX)).transpose(2, 0, 1)
    assert np.array_equal(images[0], first)  # the same faces, shrunk with a box filter
    idx = np.arange(24)
    one, two = captions(idx, np.random.default_rng(1)), captions(idx, np.random.default_rng(2))
    assert one != two and one == captions(idx, np.random.default_rng(1))
    assert all(attrs[i]["gender"] in ("woman", "man", "person") for i in idx)
    images48, _ = training_set("synthfaces", size=48, n=4)
    assert images48.shape == (4, 3, 48, 48)


def _tiny_data(n: int = 16) -> TrainingData:
    tok = build_tokenizer(dataset_vocabulary("fashion-mnist"))
    names = fashion_mnist_captions()
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8)
    return TrainingData(images, lambda idx, rng: [names[i % 10] for i in idx], tok, 8)


def test_batches_depend_only_on_seed_and_step():
    data = _tiny_data()
    cfg = DiffusionTrainConfig(batch_size=400, caption_dropout=0.25, seed=3)
    abar = cfg.schedule.alphas_cumprod()
    a, b, c = make_batch(data, cfg, 5, abar), make_batch(data, cfg, 5, abar), make_batch(data, cfg, 6, abar)
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["noise"], c["noise"])
    dropped = float((a["input_ids"] == 0).all(dim=1).float().mean())
    assert 0.15 < dropped < 0.35  # caption dropout: the empty prompt stands in for about a quarter
    assert a["t"].min() >= 0 and a["t"].max() <= 999 and a["x_t"].shape == (400, 1, 8, 8)


def test_model_joins_text_encoder_and_unet():
    with pytest.raises(ValueError, match="reads"):
        DiffusionModel(TextConfig(dim=16), UNetConfig(context_dim=32))


# ---- padding masks -------------------------------------------------------------------------------------
def _masked_pair(seed: int = 0, scale_shift: bool = False):
    from genstudio.export.diffusion.text_encoder import TextEncoder

    torch.manual_seed(seed)
    te = TextEncoder(TextConfig(vocab_size=20, max_length=10, dim=16, layers=2, heads=2, mask_padding=True)).eval()
    unet = UNet(UNetConfig(channels=1, size=8, widths=(8, 16), attention=(1,), context_dim=16, text_mask=True,
                           scale_shift=scale_shift)).eval()
    for p in unet.parameters():  # the zero-initialised outputs would hide any dependence on the text
        torch.nn.init.normal_(p, std=0.2)
    return te, unet


def test_masked_text_encoder_zeroes_padding_and_ignores_it():
    te, _ = _masked_pair()
    ids = torch.tensor([[5, 6, 7] + [0] * 7, [0] * 10])
    with torch.no_grad():
        hidden = te(ids)
        assert (hidden[0, 3:] == 0).all() and (hidden[0, :3].abs().amax(dim=1) > 0).all()
        assert (hidden[1, 1:] == 0).all() and hidden[1, 0].abs().max() > 0  # the empty prompt keeps position 0
        te.tokens.weight[0].normal_()  # what padding embeds can no longer reach the words
        assert torch.allclose(te(ids)[0, :3], hidden[0, :3], atol=1e-6)


def test_masked_unet_reads_only_the_words_and_the_pooled_text():
    te, unet = _masked_pair()
    ids = torch.tensor([[5, 6, 7] + [0] * 7])
    x, t = torch.randn(1, 1, 8, 8), torch.tensor([300.0])
    with torch.no_grad():
        hidden = te(ids)
        eps = unet(x, t, hidden)
        longer = torch.cat([hidden, torch.zeros(1, 6, 16)], dim=1)  # more padding changes nothing
        assert torch.allclose(unet(x, t, longer), eps, atol=1e-5)
        other = te(torch.tensor([[5, 9, 7] + [0] * 7]))
        assert not torch.allclose(unet(x, t, other), eps, atol=1e-4)  # a different word does


@pytest.mark.parametrize("scale_shift", [False, True])
def test_masked_graphs_export_with_parity(tmp_path, scale_shift):
    from genstudio.export.diffusion.onnx_export import check_parity, export_graphs

    te, unet = _masked_pair(scale_shift=scale_shift)
    export_graphs(te, unet, tmp_path)
    ids = np.array([[5, 6, 7] + [0] * 7, [4] * 10, [0] * 10], np.int64)
    parity = check_parity(te, unet, tmp_path, ids)
    assert parity["max_abs_diff_text_encoder_hidden"] < 1e-4 and parity["max_abs_diff_unet_noise_pred"] < 1e-4


def test_the_graphs_are_exported_arranged_for_onnx_runtime(tmp_path):
    """for_inference copies compute the same function, leave the trained modules alone, and export with their
    biases inside Gemms and every GELU fused (no Erf left after ONNX Runtime's optimisation)."""
    import onnx
    import onnxruntime as ort

    from genstudio.export.diffusion.onnx_export import export_graphs, for_inference

    te, unet = _masked_pair()
    ids = torch.tensor([[5, 6, 7] + [0] * 7, [4] * 10])
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3.0, 700.5])
    with torch.no_grad():
        hidden = te(ids)
        arranged_te, arranged_unet = for_inference(te), for_inference(unet)
        assert torch.allclose(arranged_te(ids), hidden, atol=1e-5)
        assert torch.allclose(arranged_unet(x, t, hidden), unet(x, t, hidden), atol=1e-5)
    assert type(unet.time_mlp[0]) is torch.nn.Linear and type(te.blocks[0].mlp[1]) is torch.nn.GELU  # untouched
    export_graphs(te, unet, tmp_path)
    for graph, module in (("text_encoder", te), ("unet", unet)):
        exported = [n.op_type for n in onnx.load(str(tmp_path / graph / "model.onnx")).graph.node]
        linears = sum(type(m) is torch.nn.Linear for m in module.modules())
        assert exported.count("Gemm") == linears, graph  # every linear layer (its bias inside), whatever its input

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.optimized_model_filepath = str(tmp_path / f"{graph}.optimized.onnx")
        ort.InferenceSession(str(tmp_path / graph / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        ops = [n.op_type for n in onnx.load(str(tmp_path / f"{graph}.optimized.onnx")).graph.node]
        assert "Erf" not in ops, graph


def test_for_inference_replaces_a_shared_layer_once_and_leaves_subclasses():
    from genstudio.export.diffusion.onnx_export import for_inference

    shared = torch.nn.Linear(4, 4)
    mha = torch.nn.MultiheadAttention(4, 1, batch_first=True)  # its out_proj is a Linear subclass it reads directly
    model = torch.nn.ModuleDict({"a": torch.nn.Sequential(shared), "b": torch.nn.Sequential(shared), "mha": mha})
    arranged = for_inference(model)
    assert arranged["a"][0] is arranged["b"][0]
    x = torch.randn(2, 3, 4)
    with torch.no_grad():
        assert torch.allclose(arranged["a"](x), shared(x), atol=1e-6)
        assert torch.allclose(arranged["mha"](x, x, x)[0], mha(x, x, x)[0], atol=1e-6)


def test_scale_shift_blocks_scale_the_normalised_features():
    from genstudio.export.diffusion.unet import ResBlock

    torch.manual_seed(0)
    block = ResBlock(8, 8, 12, groups=4, dropout=0.0, scale_shift=True).eval()
    assert block.time.out_features == 16  # a scale and a shift per channel
    torch.nn.init.normal_(block.conv2.weight, std=0.2)
    x, temb = torch.randn(2, 8, 4, 4), torch.randn(2, 12)
    torch.nn.init.zeros_(block.time.weight)
    with torch.no_grad():
        block.time.bias.copy_(torch.cat([torch.full((8,), -1.0), torch.zeros(8)]))  # scale 1 + (-1) = 0, no shift
        assert torch.allclose(block(x, temb), x + block.conv2.bias[None, :, None, None])  # the features are gone
        block.time.bias.zero_()  # scale 1, shift 0: the plain block without the embedding
        plain = ResBlock(8, 8, 12, groups=4, dropout=0.0).eval()
        plain.load_state_dict({k: v for k, v in block.state_dict().items() if not k.startswith("time.")}, strict=False)
        torch.nn.init.zeros_(plain.time.weight)
        torch.nn.init.zeros_(plain.time.bias)
        assert torch.allclose(block(x, temb), plain(x, temb), atol=1e-6)


def test_an_unmasked_run_resumes_into_the_masked_architecture(tmp_path):
    from genstudio.export.diffusion import checkpoint as ckpt
    from genstudio.export.diffusion.tokenizer import build_tokenizer
    from genstudio.export.diffusion.train import DiffusionRun, build_model

    tok = build_tokenizer(["a", "photo"])
    data = TrainingData(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), lambda idx, rng: ["a photo"] * len(idx), tok, 4)
    text, unet = TextConfig(vocab_size=4, max_length=4, dim=16, layers=1, heads=2), \
        UNetConfig(channels=1, size=8, widths=(8, 16), attention=(1,), context_dim=16)
    old = DiffusionRun(DiffusionTrainConfig(steps=2, batch_size=2), build_model(text, unet, 0), data).train()
    path = ckpt.save_checkpoint(tmp_path / "old.safetensors", old, {})
    text.mask_padding = unet.text_mask = True
    new = DiffusionRun(DiffusionTrainConfig(steps=3, batch_size=2), build_model(text, unet, 1), data)
    ckpt.restore_run(path, new)
    assert new.step == 2
    assert torch.equal(new.model.unet.conv_in.weight, old.model.unet.conv_in.weight)
    assert (new.model.unet.text_mlp[2].weight == 0).all()  # the new pooled path starts at its zero init
    unet.attention = (0,)  # anything else that does not fit is refused
    with pytest.raises(ValueError, match="does not fit"):
        ckpt.restore_run(path, DiffusionRun(DiffusionTrainConfig(steps=3, batch_size=2),
                                            build_model(text, unet, 1), data))


# ---- the text encoder's attribute objective ----------------------------------------------------------
def test_named_captions_say_what_the_caption_names():
    from genstudio.export.data import synthfaces
    from genstudio.export.diffusion.data import named_captions, training_set

    _, captions = training_set("synthfaces", size=32, n=40)
    named = named_captions("synthfaces", n=40)
    idx = np.arange(40)
    texts, targets = named.draw(idx, np.random.default_rng(5))
    assert texts == captions(idx, np.random.default_rng(5))  # the same captions for the same rng
    assert targets.shape == (40, len(synthfaces.ATTRIBUTES)) and named.keys == tuple(synthfaces.ATTRIBUTES)
    _, attrs = synthfaces.sample(40, seed=0, split="train")
    col = {k: i for i, k in enumerate(named.keys)}
    for text, row, a in zip(texts, targets, attrs, strict=True):
        assert row[col["gender"]] == synthfaces.ATTRIBUTES["gender"].index(a["gender"])  # the subject, always
        for key, value in zip(named.keys, row, strict=True):
            if value >= 0:  # a named attribute carries the face's own value
                assert synthfaces.ATTRIBUTES[key][value] == a[key]
        glasses = row[col["glasses"]]
        assert (glasses >= 0) == any(w in text for w in ("glasses", "spectacles", "sunglasses"))
        assert (row[col["background_colour"]] >= 0) == (a["background_colour"] in text.split()
                                                        and ("background" in text or "backdrop" in text))
    assert (targets >= 0).sum(axis=0)[col["hair_colour"]] > 5  # and some captions leave things out
    assert (targets < 0).any(axis=0)[col["expression"]]
    fm = named_captions("fashion-mnist", n=20)
    texts, targets = fm.draw(np.arange(20), np.random.default_rng(0))
    assert fm.sizes == (10,) and [fashion_mnist_captions()[c] for c in targets[:, 0]] == texts


def test_attribute_heads_ignore_unnamed_attributes():
    from genstudio.export.diffusion.train import AttributeHeads

    heads = AttributeHeads(4, (3, 2))
    logits = [torch.tensor([[5.0, 0, 0], [0, 5.0, 0]]), torch.tensor([[0.0, 9.0], [9.0, 0.0]])]
    named = torch.tensor([[0, -1], [1, -1]])  # the second attribute is never named: it costs nothing
    assert float(heads.loss(logits, named)) < 0.02
    assert float(heads.loss(logits, torch.tensor([[0, 0], [1, 1]]))) > 4.0
    assert heads.accuracy(logits, named) == [1.0, None]


def _named_tiny_data() -> TrainingData:
    """Fashion-MNIST-style captions of 16 random 8x8 images, with their class as the named attribute."""
    from genstudio.export.diffusion.data import NamedCaptions

    tok = build_tokenizer(dataset_vocabulary("fashion-mnist"))
    names = fashion_mnist_captions()
    labels = np.arange(16) % 10
    named = NamedCaptions(lambda idx, rng: ([names[labels[i]] for i in idx], labels[idx][:, None]), ("class",), (10,))
    images = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return TrainingData(images, lambda idx, rng: [names[labels[i]] for i in idx], tok, 8, named)


def test_text_pretraining_teaches_the_encoder_and_a_resume_keeps_it(tmp_path):
    from genstudio.export.diffusion import checkpoint as ckpt
    from genstudio.export.diffusion.train import DiffusionRun, build_model

    data = _named_tiny_data()
    text = TextConfig(vocab_size=data.tokenizer.get_vocab_size(), max_length=8, dim=16, layers=1, heads=2,
                      mask_padding=True)
    unet = UNetConfig(channels=1, size=8, widths=(8, 16), attention=(1,), context_dim=16, text_mask=True)
    cfg = DiffusionTrainConfig(steps=3, batch_size=8, text_aux=0.1, text_pretrain=150)
    run = DiffusionRun(cfg, build_model(text, unet, 0), data).train()
    assert run.pretrain["steps"] == 150 and run.pretrain["accuracy_last_20"]["class"] > 0.9
    assert len(run.aux_losses) == 3 and len(run.losses) == 3  # then one attribute loss per diffusion step
    path = ckpt.save_checkpoint(tmp_path / "run.safetensors", run, {})
    more = DiffusionRun(DiffusionTrainConfig(steps=5, batch_size=8, text_aux=0.1, text_pretrain=150),
                        build_model(text, unet, 1), data)
    ckpt.restore_run(path, more)
    assert torch.equal(more.heads.linear.weight, run.heads.linear.weight) and more.pretrain == run.pretrain
    more.train()
    assert more.pretrain["at_step"] == 0 and len(more.aux_losses) == 5  # no second pretraining
    ckpt.save_ema_only(ckpt.save_checkpoint(tmp_path / "more.safetensors", more, {}), tmp_path / "ema.safetensors")
    from safetensors.torch import load_file

    assert not any(k.startswith(("heads.", "model.")) for k in load_file(str(tmp_path / "ema.safetensors")))
    warm = DiffusionRun(DiffusionTrainConfig(steps=7, batch_size=8, text_aux=0.1, text_pretrain=150),
                        build_model(text, unet, 2), data)
    encoder = {k: v.clone() for k, v in more.ema.text_encoder.state_dict().items()}
    ckpt.restore_run(tmp_path / "ema.safetensors", warm)  # a shipped file: raw weights from the EMA, new heads
    for module in (warm.model, warm.ema):
        assert all(torch.equal(v, more.ema.state_dict()[k]) for k, v in module.state_dict().items())
    assert all(torch.equal(v, encoder[k]) for k, v in warm.model.text_encoder.state_dict().items())  # frozen
    heads = warm.warm_start["heads"]
    assert warm.warm_start["at_step"] == 5 and heads["frozen_text_encoder"] and heads["steps"] == 300
    assert heads["accuracy_last_20"]["class"] > 0.9 and warm.pretrain == run.pretrain
    warm.train()
    assert warm.step == 7 and len(warm.aux_losses) == 7 and len(warm.losses) == 7
    again = DiffusionRun(DiffusionTrainConfig(steps=7, batch_size=8, text_aux=0.1), build_model(text, unet, 3), data)
    ckpt.restore_run(ckpt.save_checkpoint(tmp_path / "warm.safetensors", warm, {}), again)
    assert again.warm_start == warm.warm_start  # a later stage keeps the record
    with pytest.raises(ValueError, match="name"):  # the objective needs captions that say what they name
        DiffusionRun(cfg, build_model(text, unet, 0), _tiny_data())


def test_min_snr_weighting_spares_only_the_nearly_clean_timesteps():
    from genstudio.export.diffusion.train import DiffusionRun, build_model, min_snr_weights, noise_loss

    ac = NoiseSchedule().alphas_cumprod()
    t = torch.tensor([0, 50, 100, 200, 500, 999])
    w = min_snr_weights(ac, t, 5.0)
    snr = ac[t] / (1 - ac[t])
    assert torch.allclose(w, torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert w[0] < 0.01 and w[2] < 1 and torch.all(w[3:] == 1)  # only t under about 130 count less
    pred = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    batch = {"noise": torch.zeros_like(pred), "t": t}
    assert noise_loss(pred, batch, ac, 0.0) == pytest.approx(float(pred.pow(2).mean()))  # 0: the plain MSE
    per_sample = pred.pow(2).flatten(1).mean(1)
    assert noise_loss(pred, batch, ac, 5.0) == pytest.approx(float((per_sample * w).mean()))
    data = _named_tiny_data()
    text = TextConfig(vocab_size=data.tokenizer.get_vocab_size(), max_length=8, dim=16, layers=1, heads=2)
    unet = UNetConfig(channels=1, size=8, widths=(8, 16), attention=(1,), context_dim=16)
    for aux in (0.0, 0.1):  # both losses (noise only, and with the text encoder's attribute loss) are weighted
        plain, weighted = (DiffusionRun(DiffusionTrainConfig(steps=2, batch_size=8, text_aux=aux, min_snr=g),
                                        build_model(text, unet, 0), data).train() for g in (0.0, 5.0))
        assert weighted.losses[0] < plain.losses[0]  # same weights, same batch: the weighted loss is smaller


def test_region_weights_favour_the_pixels_of_the_small_attributes(monkeypatch, tmp_path):
    from genstudio.export.data import image_sets, synthfaces
    from genstudio.export.diffusion.data import attribute_regions, training_set
    from genstudio.export.diffusion.train import make_batch, noise_loss

    seeds = synthfaces.face_seeds(6, 0, "train")
    drawn = []
    real_render = synthfaces.render

    def render(seed, overrides=None):
        image, attrs = real_render(seed, overrides)
        drawn.append(attrs)
        return image, attrs

    monkeypatch.setattr(synthfaces, "render", render)
    masks = synthfaces.attribute_regions(seeds, ("expression",))
    monkeypatch.undo()
    assert drawn and not any(synthfaces.is_held_out(a) for a in drawn)  # no held-out face drawn, even as a mask
    assert masks.shape == (6, 64, 64) and 0.01 < masks.mean() < 0.2  # the mouth, brows and lids: a small part
    face, attrs = synthfaces.render(seeds[0])
    other = next(v for v in synthfaces.ATTRIBUTES["expression"] if v != attrs["expression"]
                 and not synthfaces.is_held_out({**attrs, "expression": v}))
    changed = np.abs(synthfaces.render(seeds[0], {**attrs, "expression": other})[0].astype(int) - face).max(2) > 8
    assert changed.any() and not (changed & (masks[0] == 0)).any()  # every changed pixel lies in the region
    with pytest.raises(ValueError, match="attribute"):
        synthfaces.attribute_regions(seeds, ("smell",))

    monkeypatch.setenv("GENSTUDIO_HOME", str(tmp_path))  # a fresh cache: the maps are computed, then read back
    maps = attribute_regions("synthfaces", 48, n=6)
    assert maps.shape == (6, 1, 48, 48) and maps.min() >= 0 and maps.max() <= 1 and maps.max() > 0.99
    assert np.array_equal(attribute_regions("synthfaces", 48, n=6), maps)
    with pytest.raises(ValueError, match="regions"):
        attribute_regions("fashion-mnist", 32)

    images, captions = training_set("synthfaces", size=48, n=6)
    assert np.array_equal(synthfaces.render(seeds[0])[0], image_sets.synthfaces_cached(6, "train", 0)[0][0])
    tok = build_tokenizer(dataset_vocabulary("synthfaces"))
    data = TrainingData(torch.from_numpy(images), captions, tok, 40, regions=torch.from_numpy(maps).half())
    ac = NoiseSchedule().alphas_cumprod()
    batch = make_batch(data, DiffusionTrainConfig(batch_size=4, region_weight=4.0), 0, ac)
    w = batch["weight"]
    assert w.shape == (4, 1, 48, 48) and torch.allclose(w.mean(dim=(1, 2, 3)), torch.ones(4))
    assert float(w.max()) > 3 * float(w.min())  # region pixels weigh 1 + 4 times the rest, before normalising
    assert "weight" not in make_batch(data, DiffusionTrainConfig(batch_size=4), 0, ac)
    pred = batch["noise"] + (w > 1).float()  # wrong only inside the regions: the weighted loss is larger
    assert noise_loss(pred, batch, ac, 0.0) > noise_loss(pred, {**batch, "weight": torch.ones_like(w)}, ac, 0.0)
    with pytest.raises(ValueError, match="regions"):
        make_batch(replace(data, regions=None), DiffusionTrainConfig(batch_size=4, region_weight=4.0), 0, ac)


@pytest.mark.slow
def test_a_progressive_synthfaces_run_weights_regions_at_both_sizes_in_bf16(tmp_path):
    from genstudio.export.diffusion.build import checkpoint_info
    from genstudio.runtime.manifest import Manifest

    out, ckpt = tmp_path / "models", tmp_path / "run" / "diffusion.safetensors"
    tiny = ["--widths", "8,16", "--blocks", "1", "--attention", "1", "--text-dim", "16", "--text-layers", "1",
            "--batch", "4", "--train-images", "8", "--threads", "1"]
    assert run_cli(["export", "diffusion", "--dataset", "synthfaces", "--steps", "4", *tiny, "--size", "16",
                    "--first-size", "8", "--grow-at", "2", "--text-aux", "0.1", "--text-pretrain", "2",
                    "--region-weight", "4", "--precision", "bfloat16", "--checkpoint-to", str(ckpt),
                    "--out", str(out)]) == 0
    info = checkpoint_info(ckpt)
    assert info["step"] == 4 and info["data"]["size"] == 16
    assert info["train"]["region_weight"] == 4 and info["train"]["precision"] == "bfloat16"
    m = Manifest.load(out / "diffusion-synthfaces")
    assert "--region-weight 4 --precision bfloat16" in m.build["command"] and "would draw" in m.metrics["method"]
    assert np.isfinite(m.metrics["train_last_100_steps"]) and np.isfinite(m.metrics["text_aux_last_100_steps"])
    again = tmp_path / "again"
    assert run_cli(["export", "diffusion", "--dataset", "synthfaces", "--from-checkpoint", str(ckpt),
                    "--out", str(again)]) == 0
    assert "--region-weight 4 --precision bfloat16" in Manifest.load(again / "diffusion-synthfaces").build["command"]


@pytest.mark.slow
def test_cli_records_min_snr_and_scale_shift_and_rejects_a_negative_gamma(tmp_path):
    from genstudio.cli import CliError
    from genstudio.runtime.manifest import Manifest

    with pytest.raises(CliError, match="--min-snr"):
        run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--min-snr", "-1"])
    with pytest.raises(CliError, match="--region-weight"):
        run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--region-weight", "2"])
    with pytest.raises(CliError, match="--region-weight"):
        run_cli(["export", "diffusion", "--dataset", "synthfaces", "--region-weight", "inf"])
    _, _, data = tiny_run()
    assert run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--steps", "2", *TINY, "--data", str(data),
                    "--min-snr", "5", "--scale-shift", "--out", str(tmp_path)]) == 0
    m = Manifest.load(tmp_path / "diffusion-fashion-mnist")
    words = m.build["command"].split()
    assert "--scale-shift" in words and words[words.index("--min-snr") + 1] == "5"
    assert "Min-SNR-5" in m.metrics["method"]
    from genstudio.export.diffusion.build import checkpoint_info

    assert checkpoint_info(tmp_path / "diffusion-fashion-mnist" / "diffusion.safetensors")["unet"]["scale_shift"]


# ---- the exported folder ----------------------------------------------------------------------------
@pytest.mark.slow
def test_folder_layout_manifest_and_parity():
    from tokenizers import Tokenizer

    from genstudio.runtime.manifest import Manifest
    from genstudio.runtime.registry import check_folder

    folder, _, _ = tiny_run()
    entry = check_folder(folder, "shipped", deep=True)
    assert entry.ready, entry.error
    m = Manifest.load(folder)
    assert m.family == "diffusion" and m.name == "diffusion-fashion-mnist"
    assert {f.role: f.path for f in m.files} == {
        "text_encoder": "text_encoder/model.onnx", "unet": "unet/model.onnx", "tokenizer": "tokenizer/tokenizer.json",
        "scheduler": "scheduler/scheduler_config.json", "checkpoint": "diffusion.safetensors",
        "training_curves": "curves.json", "unet_int8": "unet/model.int8.onnx"}
    x = m.extra
    assert x["image_shape"] == [1, 32, 32] and x["value_range"] == [-1, 1] and x["prediction"] == "epsilon"
    assert x["max_length"] == 16 and x["text_dim"] == 16 and x["vocab_size"] == 18
    assert len(x["example_prompts"]) == 5 and len(x["classes"]) == 10
    assert x["longest_training_caption_tokens"] <= x["max_length"]
    assert m.defaults == {"steps": 25, "guidance": 4.0, "scheduler": "dpmpp_2m", "seed": 0, "batch": 1, "unet": "int8"}
    assert m.build["command"].startswith("genstudio export diffusion --dataset fashion-mnist --size 32 --steps 6 ")
    assert m.metrics["train_steps"] == 6 and m.metrics["train_last_100_steps"] > 0
    assert m.metrics["parity"]["max_abs_diff_text_encoder_hidden"] < 1e-4
    assert m.metrics["parity"]["max_abs_diff_unet_noise_pred"] < 1e-4
    p = m.metrics["parameters"]
    assert p["total"] == p["text_encoder"] + p["unet"] > 0
    assert len(json.loads((folder / "curves.json").read_text())["loss"]) == 6
    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert sched["beta_schedule"] == "linear" and sched["num_train_timesteps"] == 1000
    tok = Tokenizer.from_file(str(folder / "tokenizer" / "tokenizer.json"))
    assert tok.get_vocab_size() == x["vocab_size"]
    assert not list(folder.parent.glob(".*.tmp"))  # published, no staging folder left


@pytest.mark.slow
def test_onnx_graphs_take_any_batch_and_match_the_checkpoint():
    from genstudio.export.diffusion.checkpoint import load_model
    from genstudio.export.onnx_io import ort_session

    folder, _, _ = tiny_run()
    text = ort_session(folder / "text_encoder" / "model.onnx", threads=1)
    unet = ort_session(folder / "unet" / "model.onnx", threads=1)
    assert [i.name for i in text.get_inputs()] == ["input_ids"] and text.get_outputs()[0].name == "hidden"
    assert [i.name for i in unet.get_inputs()] == ["sample", "timestep", "encoder_hidden_states"]
    assert unet.get_outputs()[0].name == "noise_pred"
    model, _ = load_model(folder / "diffusion.safetensors")  # the EMA weights are what ships
    rng = np.random.default_rng(0)
    for n in (1, 3):
        ids = rng.integers(0, 18, (n, 16)).astype(np.int64)
        hidden = text.run(None, {"input_ids": ids})[0]
        assert hidden.shape == (n, 16, 16) and hidden.dtype == np.float32
        sample = rng.standard_normal((n, 1, 32, 32)).astype(np.float32)
        t = np.full(n, 437.5, np.float32)
        eps = unet.run(None, {"sample": sample, "timestep": t, "encoder_hidden_states": hidden})[0]
        assert eps.shape == (n, 1, 32, 32) and eps.dtype == np.float32
        with torch.no_grad():
            ref = model.unet(torch.from_numpy(sample), torch.from_numpy(t), torch.from_numpy(hidden)).numpy()
        assert np.abs(ref - eps).max() < 1e-4


@pytest.mark.slow
def test_the_int8_unet_ships_beside_the_float_one_and_runs_in_the_engine():
    from genstudio.engines.diffusion.pipeline import DiffusionModel, ImageRequest
    from genstudio.export.diffusion.quantize import record_unet_inputs
    from genstudio.runtime.jobs import drive
    from genstudio.runtime.manifest import Manifest
    from genstudio.runtime.registry import check_folder
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    folder, _, _ = tiny_run()
    int8 = Manifest.load(folder).build["int8"]
    assert int8["op_types"] == ["Conv"] and int8["calibration_feeds"] > 0
    assert int8["command"].startswith("genstudio export diffusion --dataset fashion-mnist")
    assert 0 < int8["against_float"]["relative_rms_error"] < 0.2
    model = DiffusionModel(check_folder(folder, "shipped"), SessionPool(SessionConfig(provider="cpu", threads=1)))
    assert model.unet_precisions == ["float32", "int8"] and model.default_unet == "int8"  # the build picks it
    request = ImageRequest("a photo of a coat", steps=3, seed=2, batch=2, preview="none", unet="float32")
    exact = drive(model.sample(request))
    quantized = drive(model.sample(ImageRequest(**{**request.__dict__, "unet": "int8"})))
    assert quantized.settings["unet"] == "int8" and exact.settings["unet"] == "float32"
    assert 0 < np.abs(quantized.images - exact.images).max() < 0.5  # close, not identical
    with pytest.raises(ValueError, match="no bfloat16 UNet|has no"):
        model.resolve(ImageRequest("a photo of a coat", unet="bfloat16"))
    # quantizing again (`genstudio export diffusion-int8`) calibrates on every step's float inputs, although the
    # folder now runs int8 by default (which would send all but the nearly clean steps to the int8 graph)
    feeds = record_unet_inputs(folder, runs=2, steps=3, batch=1)
    assert len(feeds) == 6 and min(float(f["timestep"].min()) for f in feeds) > 100


def test_an_int8_request_runs_its_last_nearly_clean_steps_in_the_float_graph(monkeypatch):
    from genstudio.engines.diffusion import pipeline
    from genstudio.runtime.jobs import drive
    from genstudio.runtime.registry import check_folder
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    folder, _, _ = tiny_run()
    model = pipeline.DiffusionModel(check_folder(folder, "shipped"), SessionPool(SessionConfig(provider="cpu", threads=1)))
    calls = []
    unet = pipeline.DiffusionModel._unet
    monkeypatch.setattr(pipeline.DiffusionModel, "_unet",
                        lambda self, x, t, *a: calls.append((t, a[-1])) or unet(self, x, t, *a))
    for precision in ("int8", "float32"):
        drive(model.sample(pipeline.ImageRequest("a photo of a coat", steps=25, seed=0, preview="none", unet=precision)))
    int8, float32 = calls[:25], calls[25:]
    assert {role for t, role in int8 if t >= pipeline.INT8_FLOAT_BELOW_T} == {"unet_int8"}
    assert [role for t, role in int8 if t < pipeline.INT8_FLOAT_BELOW_T] == ["unet", "unet"]  # t = 79 and 39
    assert {role for _, role in float32} == {"unet"}


@pytest.mark.slow
def test_checkpoints_resume_and_record_every_stage():
    from genstudio.export.diffusion.build import checkpoint_info, diffusion_build, train_diffusion
    from genstudio.export.diffusion.checkpoint import load_losses, load_tensors

    folder, ckpt, data = tiny_run()
    info = checkpoint_info(ckpt)
    assert info["step"] == 6 and info["data"]["dataset"] == "fashion-mnist" and len(info["stages"]) == 1
    shipped = load_tensors(folder / "diffusion.safetensors", "ema")
    assert all(torch.equal(v, load_tensors(ckpt, "ema")[k]) for k, v in shipped.items())
    assert set(load_tensors(ckpt, "model")) == set(shipped)  # the training checkpoint has the raw weights too
    assert not load_tensors(folder / "diffusion.safetensors", "model")  # the shipped one only the EMA
    cfg = diffusion_build("fashion-mnist", widths=(8, 16), blocks=1, attention=(1,), text_dim=16, text_layers=1,
                          steps=9, batch=8, n_train=40, data_dir=str(data))
    cfg.caption_draws = 100
    resumed = ckpt.with_name("resumed.safetensors")
    run = train_diffusion(cfg, checkpoint_to=resumed, every=100, resume=ckpt, command="resume (test)")
    assert run.step == 9 and len(run.losses) == 9
    assert run.losses[:6] == pytest.approx(load_losses(ckpt))
    info = checkpoint_info(resumed)
    assert info["step"] == 9 and info["stages"][-1] == "resume (test)" and len(info["stages"]) == 2
    assert info["seconds"] >= checkpoint_info(ckpt)["seconds"]
    warm = train_diffusion(cfg, resume=folder / "diffusion.safetensors")  # a shipped model goes on from its EMA
    assert warm.step == 9 and warm.warm_start == {"raw_weights_from": "ema", "at_step": 6}


@pytest.mark.slow
def test_a_stage_at_a_new_size_can_start_the_ema_again():
    from genstudio.export.diffusion.build import diffusion_build, train_diffusion
    from genstudio.export.diffusion.checkpoint import load_tensors, read_metadata

    _, ckpt, data = tiny_run()
    cfg = diffusion_build("fashion-mnist", size=16, widths=(8, 16), blocks=1, attention=(1,), text_dim=16,
                          text_layers=1, steps=7, batch=8, n_train=40, data_dir=str(data))
    cfg.caption_draws = 100
    resumed = ckpt.with_name("at16.safetensors")
    run = train_diffusion(cfg, checkpoint_to=resumed, every=100, resume=ckpt, reset_ema=True, command="at 16")
    assert run.step == 7 and run.ema_from == 6 and read_metadata(resumed)["ema_from"] == "6"
    raw, ema, old = (load_tensors(resumed, "model"), load_tensors(resumed, "ema"), load_tensors(ckpt, "ema"))
    gap = lambda a: sum(float((a[k] - raw[k]).abs().sum()) for k in raw)  # noqa: E731
    assert gap(ema) < 0.2 * gap(old)  # one step of a fresh EMA (decay 0.1) sits next to the raw weights
    again = train_diffusion(cfg, resume=resumed)  # a later stage keeps the reset's warm-up origin
    assert again.ema_from == 6


@pytest.mark.slow
def test_a_progressive_run_trains_small_first_then_grows(tmp_path):
    from genstudio.export.diffusion.build import checkpoint_info, diffusion_build, train_diffusion
    from genstudio.export.diffusion.checkpoint import read_metadata
    from genstudio.runtime.manifest import Manifest

    _, _, data = tiny_run()
    out, ckpt = tmp_path / "models", tmp_path / "run" / "diffusion.safetensors"
    assert run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--steps", "6", *TINY, "--data", str(data),
                    "--size", "32", "--first-size", "16", "--grow-at", "4", "--checkpoint-to", str(ckpt),
                    "--checkpoint-every", "2", "--out", str(out)]) == 0
    info = checkpoint_info(ckpt)
    assert info["step"] == 6 and info["data"]["size"] == 32 and info["data"]["first_size"] == 16
    assert read_metadata(ckpt)["ema_from"] == "4"  # the EMA started again where the images grew
    m = Manifest.load(out / "diffusion-fashion-mnist")
    assert m.extra["image_shape"] == [1, 32, 32] and "--first-size 16 --grow-at 4" in m.build["command"]

    def build(steps: int):
        cfg = diffusion_build("fashion-mnist", size=32, first_size=16, grow_at=4, widths=(8, 16), blocks=1,
                              attention=(1,), text_dim=16, text_layers=1, steps=steps, batch=8, n_train=40,
                              data_dir=str(data))
        cfg.caption_draws = 100
        return cfg

    early = tmp_path / "early.safetensors"  # stopped before the switch: still small, and says so
    small = train_diffusion(build(3), checkpoint_to=early)
    assert small.data.images.shape[-1] == 16 and checkpoint_info(early)["data"]["size"] == 16
    grown = train_diffusion(build(5), checkpoint_to=tmp_path / "grown.safetensors", resume=early)
    assert grown.step == 5 and grown.data.images.shape[-1] == 32 and grown.ema_from == 4


@pytest.mark.slow
def test_a_bf16_run_records_its_precision_in_the_checkpoint_and_the_command(tmp_path):
    from genstudio.cli.common import PRECISIONS as CLI_PRECISIONS
    from genstudio.export.diffusion.build import checkpoint_info
    from genstudio.export.trainer import PRECISIONS
    from genstudio.runtime.manifest import Manifest

    assert CLI_PRECISIONS == PRECISIONS
    _, _, data = tiny_run()
    out, ckpt = tmp_path / "models", tmp_path / "run" / "diffusion.safetensors"
    assert run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--steps", "4", *TINY, "--data", str(data),
                    "--precision", "bfloat16", "--checkpoint-to", str(ckpt), "--out", str(out)]) == 0
    info = checkpoint_info(ckpt)
    assert info["train"]["precision"] == "bfloat16" and info["step"] == 4
    m = Manifest.load(out / "diffusion-fashion-mnist")
    assert "--precision bfloat16" in m.build["command"] and np.isfinite(m.metrics["train_last_100_steps"])
    again = tmp_path / "again"  # exporting the checkpoint alone names the precision it was trained in
    assert run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--from-checkpoint", str(ckpt),
                    "--out", str(again)]) == 0
    assert "--precision bfloat16" in Manifest.load(again / "diffusion-fashion-mnist").build["command"]


@pytest.mark.slow
def test_cli_rejects_bad_arguments(tmp_path):
    from genstudio.cli import CliError

    with pytest.raises(CliError, match="--resume"):
        run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--resume", str(tmp_path / "none")])
    with pytest.raises(CliError, match="--grow-at"):
        run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--first-size", "16", "--grow-at", "0"])
    with pytest.raises(CliError, match="--first-size 32 must differ"):
        run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--first-size", "32", "--grow-at", "9"])
    with pytest.raises(CliError, match="--reset-ema goes with --resume"):
        run_cli(["export", "diffusion", "--dataset", "fashion-mnist", "--reset-ema"])
    with pytest.raises(CliError, match="halve"):
        run_cli(["export", "diffusion", "--dataset", "synthfaces", "--size", "30"])
    with pytest.raises(CliError, match="no checkpoint"):
        run_cli(["export", "diffusion", "--dataset", "synthfaces", "--from-checkpoint", str(tmp_path / "x")])
