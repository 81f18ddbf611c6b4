"""Net2Net widening of the diffusion UNet: the wider UNet computes the same, and a run resumes into it."""

from __future__ import annotations

import json

import pytest
import torch

from genstudio.export.diffusion.text_encoder import TextConfig
from genstudio.export.diffusion.unet import UNet, UNetConfig
from genstudio.export.diffusion.widen import factor_between, widen_unet


def _unet(scale_shift: bool = False, text_mask: bool = True, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    unet = UNet(UNetConfig(channels=3, size=8, widths=(8, 16, 32), attention=(1, 2), context_dim=12, head_dim=8,
                           groups=4, text_mask=text_mask, scale_shift=scale_shift)).eval()
    with torch.no_grad():
        for p in unet.parameters():  # the zero-initialised layers would hide a wrong copy behind them
            p.add_(0.3 * torch.randn_like(p))
    return unet


def _inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    context = torch.randn(3, 5, 12, generator=g)
    context[:, 3:] = 0.0  # padding: masked out of cross-attention and the pooled text
    return torch.randn(3, 3, 8, 8, generator=g), torch.tensor([3.0, 412.5, 999.0]), context


@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize("scale_shift", [False, True])
def test_the_wider_unet_computes_the_same(factor, scale_shift):
    unet = _unet(scale_shift)
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
    unet = _unet()
    state, cfg = widen_unet(unet.state_dict(), unet.cfg, 2, noise=0.05)
    conv = state["down.1.res.0.conv2.weight"]  # (32, 32, 3, 3): input channels 2c and 2c + 1 copy old channel c
    old = unet.state_dict()["down.1.res.0.conv2.weight"]
    assert not torch.equal(conv[:, 0], conv[:, 1])  # the noise tells the copies apart ...
    assert torch.allclose(conv[:, 0] + conv[:, 1], old.repeat_interleave(2, 0)[:, 0], atol=1e-6)  # ... summing to w
    q_old, q_new = unet.state_dict()["down.1.attn.0.self_attn.q.weight"], state["down.1.attn.0.self_attn.q.weight"]
    assert torch.allclose(q_new[:16].sum(1), q_new[16:].sum(1), atol=1e-5)  # head 2 copies head 1 (16 = old width)
    assert torch.allclose(q_new[:16, 0] + q_new[:16, 1], q_old[:, 0], atol=1e-6)
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


def test_a_run_resumes_into_a_wider_unet(tmp_path):
    from genstudio.export.diffusion import checkpoint as ckpt
    from genstudio.export.diffusion.tokenizer import encode
    from genstudio.export.diffusion.train import DiffusionRun, DiffusionTrainConfig, build_model
    from tests.test_diffusion_export import _tiny_data

    data = _tiny_data()
    text = TextConfig(vocab_size=data.tokenizer.get_vocab_size(), max_length=8, dim=16, layers=1, heads=2,
                      mask_padding=True)
    narrow = UNetConfig(channels=1, size=8, widths=(8, 16), attention=(1,), context_dim=16, head_dim=8, groups=4,
                        text_mask=True)
    run = DiffusionRun(DiffusionTrainConfig(steps=3, batch_size=8), build_model(text, narrow, 0), data).train()
    path = ckpt.save_checkpoint(tmp_path / "run.safetensors", run, {"unet": json.dumps(narrow.to_dict())})
    wide = UNetConfig(**{**narrow.to_dict(), "widths": (16, 32), "attention": (1,)})
    more = DiffusionRun(DiffusionTrainConfig(steps=5, batch_size=8), build_model(text, wide, 1), data)
    ckpt.restore_run(path, more)
    assert more.warm_start["widened"]["from_widths"] == [8, 16] and more.warm_start["widened"]["factor"] == 2
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([10.0, 700.0])
    ids = torch.from_numpy(encode(data.tokenizer, ["a photo of a bag", ""], 8))
    with torch.no_grad():
        for a, b in ((run.model, more.model), (run.ema, more.ema)):
            assert torch.allclose(a(ids, x, t), b(ids, x, t), atol=1e-4)
    more.train()
    assert more.step == 5 and len(more.losses) == 5
