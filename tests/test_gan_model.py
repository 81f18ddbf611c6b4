"""The GAN's PyTorch side: shapes of mapping, synthesis and discriminator, the trainer's callbacks and curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genstudio.export.gan.checkpoint import load_generator, save_checkpoint
from genstudio.export.gan.curves import plot_curves
from genstudio.export.gan.discriminator import Discriminator
from genstudio.export.gan.generator import GanConfig, Generator, SynthesisGraph, upsample_matrix
from genstudio.export.gan.train import GanTrainConfig, GanTrainer, build_models

FACES = GanConfig(z_dim=8, w_dim=8, mapping_layers=2, g_widths=(8, 8, 4, 4, 4), d_widths=(4, 4, 4, 8, 8))
MNIST = GanConfig(channels=1, size=28, z_dim=8, w_dim=8, mapping_layers=2, g_widths=(8, 8, 4, 4),
                  d_widths=(4, 4, 8, 8))
FOURIER = GanConfig(z_dim=8, w_dim=8, mapping_layers=2, g_widths=(8, 8, 4, 4, 4), d_widths=(4, 4, 4, 8, 8),
                    fourier=3)


@pytest.mark.parametrize("cfg", [FACES, MNIST], ids=["64x64x3", "28x28x1"])
def test_shapes(cfg):
    torch.manual_seed(0)
    g, d = Generator(cfg), Discriminator(cfg)
    torch.set_grad_enabled(False)
    z = torch.randn(5, cfg.z_dim)
    w = g.mapping(z)
    assert w.shape == (5, cfg.w_dim)
    img = g.synthesis(w)
    assert img.shape == (5, cfg.channels, cfg.size, cfg.size)
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    assert g(z).shape == img.shape  # the raw output the discriminator sees
    assert d(g(z)).shape == (5,)
    assert g.mean_w(2000).shape == (cfg.w_dim,)
    torch.set_grad_enabled(True)


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_upsample_matrix_is_bilinear_upsampling(n):
    x = torch.randn(2, 3, n, n)
    u = upsample_matrix(n)
    want = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    assert torch.allclose(u.t() @ (x @ u), want, atol=1e-6)


@pytest.mark.parametrize("cfg", [FACES, MNIST, FOURIER], ids=["64x64x3", "28x28x1", "fourier"])
def test_the_exported_synthesis_is_the_same_function(cfg):
    """SynthesisGraph rearranges the modulated layers for inference; every weight, bias and style must still count."""
    torch.manual_seed(0)
    g = Generator(cfg).eval()
    with torch.no_grad():
        for p in g.parameters():  # away from the initial values (zero biases, unit styles) that could hide a slip
            p.add_(torch.randn_like(p) * 0.2)
        w = torch.randn(6, cfg.w_dim)
        graph = SynthesisGraph(g)
        want, got = g.raw(w), graph.raw(w)  # before the clamp, so no pixel hides at -1 or 1
        assert got.shape == want.shape == (6, cfg.channels, cfg.size, cfg.size)
        assert 0.05 < float(want.std())
        assert torch.allclose(got, want, atol=1e-5 * float(want.abs().max()))
        assert torch.allclose(graph(w), g.synthesis(w), atol=1e-5)


def test_the_exported_synthesis_refuses_a_generator_it_would_not_reproduce():
    g = Generator(FACES)
    g.synthesis_net.to_rgb[0].conv.demodulate = True
    with pytest.raises(ValueError, match="demodulation"):
        SynthesisGraph(g)


def test_fourier_features_are_sinusoids_whose_frequency_and_phase_follow_w():
    from genstudio.export.gan.generator import FourierFeatures

    torch.manual_seed(0)
    ff = FourierFeatures(2, 8, 64)
    with torch.no_grad():
        ff.freq.bias.copy_(torch.tensor([1 / 8, 0.0, 0.0, 1 / 16]) / ff.freq.lr_mul)  # period 8 across, 16 down
        w = torch.randn(3, 8)
        x = ff(w)  # (3, 2, 64, 64)
        assert x.shape == (3, 2, 64, 64) and float(x.abs().max()) <= 1.0
        assert torch.allclose(x[:, 0, :, 8:], x[:, 0, :, :-8], atol=1e-5)  # one period along x...
        assert torch.allclose(x[:, 0, 1:], x[:, 0, :-1], atol=1e-5)  # ...constant along y
        assert torch.allclose(x[:, 1, 16:], x[:, 1, :-16], atol=1e-5)
        assert float((x[0] - x[1]).abs().max()) > 0.1  # each w its own phase
        assert torch.allclose(ff(w[:1].expand(2, -1))[1], x[0], atol=1e-6)
        ff.freq.weight.normal_()  # once the affine has learnt, w moves the frequency too
        y = ff(w)
        assert not torch.allclose(y[:, 0, :, 8:], y[:, 0, :, :-8], atol=1e-3)


def test_config_round_trip():
    assert GanConfig.from_dict(FACES.to_dict()) == FACES
    assert GanConfig.from_dict(FOURIER.to_dict()) == FOURIER
    older = FACES.to_dict()
    del older["fourier"]  # checkpoints written before the option
    assert GanConfig.from_dict(older) == FACES
    assert FACES.render_size == 64 and MNIST.render_size == 32


def test_trainer_callbacks_ema_and_checkpoint(tmp_path):
    g, d = build_models(MNIST, 0)
    images = torch.rand(32, 1, 28, 28) * 2 - 1
    trainer = GanTrainer(GanTrainConfig(steps=3, batch_size=8, r1_every=2), g, d, images)
    seen = []
    trainer.add_callback("on_batch_end", lambda t: seen.append(t.step))
    with pytest.raises(ValueError):
        trainer.add_callback("on_epoch_end", lambda t: None)
    trainer.run()
    assert seen == [1, 2, 3]
    assert all(len(trainer.curves[k]) == 3 for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    assert trainer.r1_steps == [0, 2] and len(trainer.curves["r1"]) == 2
    ema = dict(trainer.g_ema.named_parameters())
    assert any(not torch.equal(p, ema[k]) for k, p in trainer.g.named_parameters())  # EMA lags the live weights
    path = save_checkpoint(tmp_path / "gan.safetensors", trainer, MNIST)
    loaded, meta = load_generator(path)
    assert meta["step"] == "3" and loaded.cfg == MNIST
    z = torch.randn(2, MNIST.z_dim)
    assert torch.equal(loaded.synthesis(loaded.mapping(z)), trainer.g_ema.synthesis(trainer.g_ema.mapping(z)))
    png = plot_curves(trainer.curves, trainer.r1_steps, tmp_path / "curves.png", title="test")
    assert png.stat().st_size > 0


def test_trainer_stop():
    g, d = build_models(MNIST, 0)
    trainer = GanTrainer(GanTrainConfig(steps=10, batch_size=4), g, d, torch.rand(8, 1, 28, 28))
    trainer.add_callback("on_batch_end", lambda t: t.stop() if t.step == 2 else None)
    assert trainer.run().step == 2


def test_diff_augment_is_differentiable_and_does_what_it_says():
    from genstudio.export.gan.train import diff_augment

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, "color,translation,cutout", gen)
    y.square().sum().backward()
    assert y.shape == x.shape and x.grad.abs().sum() > 0  # gradients reach the generator through it
    dot = torch.zeros(1, 1, 16, 16)
    dot[0, 0, 8, 8] = 1.0
    moved = [tuple((diff_augment(dot, "translation", gen)[0, 0] == 1).nonzero()[0].tolist()) for _ in range(20)]
    assert all(abs(r - 8) <= 2 and abs(c - 8) <= 2 for r, c in moved) and len(set(moved)) > 1  # up to 1/8 side
    holes = diff_augment(torch.ones(8, 1, 16, 16), "cutout", gen)
    assert ((holes == 0).flatten(1).sum(1) > 0).all()  # every image loses a patch, at most half the side square
    assert ((holes == 0).flatten(1).sum(1) <= 8 * 8).all()
    assert torch.equal(diff_augment(x, "", gen), x)
    with pytest.raises(ValueError, match="unknown augmentation"):
        diff_augment(x, "rotate", gen)


def test_trainer_with_augmentation_runs_and_records_it(tmp_path):
    g, d = build_models(FACES, 0)
    images = torch.rand(8, 3, 64, 64) * 2 - 1
    trainer = GanTrainer(GanTrainConfig(steps=2, batch_size=4, r1_every=1, augment="translation,cutout"), g, d, images)
    trainer.run()
    assert trainer.step == 2 and len(trainer.curves["r1"]) == 2
    path = save_checkpoint(tmp_path / "gan.safetensors", trainer, FACES)
    _, meta = load_generator(path)
    assert '"augment": "translation,cutout"' in meta["train"]


def test_trainer_in_bf16_runs_g_and_d_under_autocast_and_keeps_float32_weights(tmp_path, monkeypatch):
    g, d = build_models(FACES, 0)
    dtypes = []
    forward = d.forward

    def logged(x):
        out = forward(x)
        dtypes.append(out.dtype)
        return out

    monkeypatch.setattr(d, "forward", logged)
    images = torch.rand(8, 3, 64, 64) * 2 - 1
    trainer = GanTrainer(GanTrainConfig(steps=2, batch_size=4, r1_every=1, precision="bfloat16"), g, d, images)
    trainer.run()
    assert torch.bfloat16 in dtypes and torch.float32 in dtypes  # the passes in bf16, R1's in float32
    assert all(np.isfinite(trainer.curves[k]).all() for k in ("d_loss", "g_loss", "r1"))
    assert all(p.dtype == torch.float32 for p in [*g.parameters(), *d.parameters(), *trainer.g_ema.parameters()])
    path = save_checkpoint(tmp_path / "gan.safetensors", trainer, FACES)
    assert '"precision": "bfloat16"' in load_generator(path)[1]["train"]
    with pytest.raises(ValueError, match="precision"):
        GanTrainer(GanTrainConfig(precision="int4"), g, d, images)


def test_a_widened_run_starts_out_computing_what_the_narrow_one_did_and_its_new_channels_learn(tmp_path):
    from dataclasses import replace

    from genstudio.export.gan.checkpoint import restore_trainer

    images = torch.rand(8, 3, 64, 64) * 2 - 1
    g, d = build_models(FACES, 0)
    with torch.no_grad():  # every weight, bias and style away from its initial value
        for p in [*g.parameters(), *d.parameters()]:
            p.add_(torch.randn_like(p) * 0.3)
    narrow = GanTrainer(GanTrainConfig(steps=1, batch_size=4), g, d, images)
    path = save_checkpoint(tmp_path / "gan.safetensors", narrow, FACES)
    wide_cfg = replace(FACES, g_widths=(8, 12, 8, 4, 8), d_widths=(8, 4, 6, 8, 8))
    wg, wd = build_models(wide_cfg, 1)
    wide = GanTrainer(GanTrainConfig(steps=2, batch_size=4), wg, wd, images)
    restore_trainer(path, wide, widen=True)

    z = torch.randn(6, FACES.z_dim)
    with torch.no_grad():
        for old, new in ((g, wide.g), (narrow.g_ema, wide.g_ema)):
            assert torch.allclose(new(z), old(z), atol=1e-5)
        assert torch.allclose(wide.d(images), d(images), atol=1e-5)
    assert sum(p.numel() for p in wide.g.parameters()) > sum(p.numel() for p in g.parameters())
    rgb = wide.g.synthesis_net.to_rgb[-1].conv.weight.detach()  # a view: it follows the training
    assert float(rgb[:, 4:].abs().max()) == 0.0  # the new 64x64 channels do not draw yet...
    wide.run()
    assert wide.step == 2 and float(rgb[:, 4:].abs().max()) > 0.0  # ...until training moves them


def test_widening_refuses_what_would_change_the_function():
    from dataclasses import replace

    from genstudio.export.gan.checkpoint import widen_state

    g, d = build_models(FACES, 0)
    narrower = build_models(replace(FACES, g_widths=(8, 8, 4, 4, 2), d_widths=(4, 4, 4, 8, 4)), 0)
    with pytest.raises(ValueError, match="only wider"):
        widen_state(g.state_dict(), narrower[0])
    with pytest.raises(ValueError, match="last width"):
        widen_state(d.state_dict(), build_models(replace(FACES, d_widths=(4, 4, 4, 8, 16)), 0)[1])
    with pytest.raises(ValueError, match="not the same design"):
        widen_state({}, g)
    with pytest.raises(ValueError, match="z and w dimensions"):
        widen_state(g.state_dict(), build_models(replace(FACES, z_dim=16), 0)[0])
