"""Net2Net widening of the diffusion UNet: the wider UNet computes the same, and a run resumes into it."""

from __future__ import annotations

import json

import pytest
import torch

from genstudio.export.diffusion.text_encoder import TextConfig
from genstudio.export.diffusion.unet import UNet, UNetConfig
from genstudio.export.diffusion.widen import factor_between, widen_unet

VARIANTS = {  # UNetConfig fields beside the common ones
    "pooled text": {"attention": (1, 2), "text_mask": True},
    "adaptive GroupNorm": {"attention": (1, 2), "text_mask": True, "scale_shift": True},
    "two blocks, full-size attention, no masks": {"attention": (0, 2), "blocks": 2, "text_mask": False},
}


def _perturb(module: torch.nn.Module, seed: int) -> None:
    """Random weights everywhere: the zero-initialised layers would hide a wrong copy behind them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


def _unet(**fields) -> UNet:
    torch.manual_seed(0)
    unet = UNet(UNetConfig(channels=3, size=8, widths=(8, 16, 32), context_dim=12, head_dim=8, groups=4,
                           **fields)).eval()
    _perturb(unet, 0)
    return unet


def _inputs():
    g = torch.Generator().manual_seed(1)
    context = torch.randn(3, 5, 12, generator=g)
    context[:, 3:] = 0.0  # padding: masked out of cross-attention and the pooled text
    return torch.randn(3, 3, 8, 8, generator=g), torch.tensor([3.0, 412.5, 999.0]), context


@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_wider_unet_computes_the_same(factor, variant):
    unet = _unet(**VARIANTS[variant])
    state, cfg = widen_unet(unet.state_dict(), unet.cfg, factor)
    assert cfg.widths == tuple(factor * w for w in unet.cfg.widths)
    wider = UNet(cfg).eval()
    wider.load_state_dict(state)
    x, t, c = _inputs()
    with torch.no_grad():
        before, after = unet(x, t, c), wider(x, t, c)
    assert before.abs().max() > 0.1  # a test that compares zeros would pass anything
    assert torch.allclose(before, after, atol=1e-4 * float(before.abs().max()))
    assert sum(p.numel() for p in wider.parameters()) > 2 * sum(p.numel() for p in unet.parameters())


def test_copies_can_come_apart_but_heads_are_whole():
    unet = _unet(**VARIANTS["pooled text"])
    state, cfg = widen_unet(unet.state_dict(), unet.cfg, 2, noise=0.05)
    conv = state["down.1.res.0.conv2.weight"]  # (32, 32, 3, 3): input channels 2c and 2c + 1 copy old channel c
    old = unet.state_dict()["down.1.res.0.conv2.weight"]
    assert not torch.equal(conv[:, 0], conv[:, 1])  # the noise tells the copies apart ...
    assert torch.allclose(conv[:, 0] + conv[:, 1], old.repeat_interleave(2, 0)[:, 0], atol=1e-6)  # ... summing to w
    old_sd = unet.state_dict()
    q_old, q_new = old_sd["down.1.attn.0.self_attn.q.weight"], state["down.1.attn.0.self_attn.q.weight"]
    # (32, 32): output rows are 4 heads of 8, the 2 old heads twice over; input columns pair up as copies
    assert torch.allclose(q_new.view(32, 16, 2).sum(2), q_old.repeat(2, 1), atol=1e-5)
    kv_old, kv_new = old_sd["down.1.attn.0.self_attn.kv.weight"], state["down.1.attn.0.self_attn.kv.weight"]
    k_old, v_old = kv_old.view(2, 16, 16)  # keys, then values
    assert torch.allclose(kv_new.view(2, 32, 16, 2).sum(3), torch.stack([k_old.repeat(2, 1), v_old.repeat(2, 1)]),
                          atol=1e-5)
    same, _ = widen_unet(unet.state_dict(), unet.cfg, 2, noise=0.05)
    assert all(torch.equal(v, same[k]) for k, v in state.items())  # seeded


def test_only_a_common_factor_widens():
    cfg = UNetConfig(widths=(16, 32, 64, 128), attention=(1, 2, 3))
    assert factor_between(cfg, UNetConfig(widths=(32, 64, 128, 256), attention=(1, 2, 3))) == 2
    with pytest.raises(ValueError, match="same whole factor"):
        factor_between(cfg, UNetConfig(widths=(32, 64, 64, 128), attention=(1, 2, 3)))
    with pytest.raises(ValueError, match="only the widths"):
        factor_between(cfg, UNetConfig(widths=(32, 64, 128, 256), attention=(2, 3)))
    with pytest.raises(ValueError, match="whole heads"):  # 16 channels are half a head of 32
        widen_unet(UNet(UNetConfig(widths=(16, 32), attention=(0,))).state_dict(),
                   UNetConfig(widths=(16, 32), attention=(0,)), 2)
    with pytest.raises(ValueError, match="whole number"):
        widen_unet({}, cfg, 0)


def _tiny_data():
    from genstudio.export.diffusion.tokenizer import (
        build_tokenizer,
        dataset_vocabulary,
        fashion_mnist_captions,
    )
    from genstudio.export.diffusion.train import TrainingData

    names = fashion_mnist_captions()
    images = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return TrainingData(images, lambda idx, rng: [names[i % 10] for i in idx],
                        build_tokenizer(dataset_vocabulary("fashion-mnist")), 8)


def test_a_run_resumes_into_a_wider_unet(tmp_path):
    from genstudio.export.diffusion import checkpoint as ckpt
    from genstudio.export.diffusion.tokenizer import encode
    from genstudio.export.diffusion.train import DiffusionRun, DiffusionTrainConfig, build_model

    data = _tiny_data()
    text = TextConfig(vocab_size=data.tokenizer.get_vocab_size(), max_length=8, dim=16, layers=1, heads=2,
                      mask_padding=True)
    narrow = UNetConfig(channels=1, size=8, widths=(8, 16), attention=(1,), context_dim=16, head_dim=8, groups=4,
                        text_mask=True)
    wide = UNetConfig(**{**narrow.to_dict(), "widths": (16, 32), "attention": (1,)})
    run = DiffusionRun(DiffusionTrainConfig(steps=2, batch_size=8), build_model(text, narrow, 0), data).train()
    _perturb(run.model, 1)  # raw and EMA weights far apart, and no layer left near zero
    _perturb(run.ema, 2)
    meta = {"unet": json.dumps(narrow.to_dict())}
    full = ckpt.save_checkpoint(tmp_path / "run.safetensors", run, meta)
    shipped = ckpt.save_ema_only(full, tmp_path / "ema.safetensors")
    ids = torch.from_numpy(encode(data.tokenizer, ["a photo of a bag", ""], 8))
    x, t = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3)), torch.tensor([10.0, 700.0])

    def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
        with torch.no_grad():
            before, after = a(ids, x, t), b(ids, x, t)
        assert before.abs().max() > 0.1
        return torch.allclose(before, after, atol=1e-4 * float(before.abs().max()))

    more = DiffusionRun(DiffusionTrainConfig(steps=4, batch_size=8), build_model(text, wide, 5), data)
    ckpt.restore_run(full, more)
    assert same(run.model, more.model) and same(run.ema, more.ema) and not same(run.model, more.ema)
    assert more.warm_start == {"widened": {"from_widths": [8, 16], "to_widths": [16, 32], "factor": 2, "at_step": 2,
                                           "method": "Net2WiderNet (widen.widen_unet)"}}
    more.train()
    assert more.step == 4 and len(more.losses) == 4
    warm = DiffusionRun(DiffusionTrainConfig(steps=4, batch_size=8), build_model(text, wide, 6), data)
    ckpt.restore_run(shipped, warm)  # a shipped file: both widened from its EMA weights
    assert same(run.ema, warm.model) and same(run.ema, warm.ema)
    assert warm.warm_start["raw_weights_from"] == "ema" and warm.warm_start["widened"]["factor"] == 2
    again = DiffusionRun(DiffusionTrainConfig(steps=5, batch_size=8), build_model(text, wide, 7), data)
    ckpt.restore_run(ckpt.save_checkpoint(tmp_path / "wide.safetensors", more, {"unet": json.dumps(wide.to_dict())}),
                     again)
    assert again.warm_start == more.warm_start  # a later stage keeps the record
