"""The UNet: predicts the noise in a noisy image at a timestep, attending to the text encoder's hidden states.

    unet = UNet(UNetConfig(channels=3, size=32, widths=(16, 32, 64, 128), context_dim=128))
    eps = unet(sample, timestep, context)       # (B, C, H, W), float (B,) in 0..999, (B, T, dim) -> (B, C, H, W)

A DDPM / Stable Diffusion-style UNet (https://arxiv.org/abs/2006.11239, https://arxiv.org/abs/2112.10752):
a sinusoidal timestep embedding through an MLP; at each level `blocks` residual blocks (GroupNorm, SiLU,
3x3 conv, the time embedding added in between, or with `scale_shift` scaling and shifting the features) and,
at the levels in `attention`, a transformer block (self-attention, cross-attention to the text, feed-forward);
strided-conv downsampling, nearest + conv upsampling, skip connections from every down block to the matching
up block, and a middle block (residual, transformer, residual) at the lowest resolution.

With `text_mask` (a text encoder with mask_padding), the all-zero vectors of padding are masked out of
cross-attention, and the mean of the word vectors also enters through the time embedding: a global
path for global attributes (hair colour, expression), as Imagen and SDXL add pooled text to it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from genstudio.export.diffusion.text_encoder import Attention, key_bias, pooled_text


@dataclass
class UNetConfig:
    channels: int = 3  # image channels (1 greyscale, 3 RGB)
    size: int = 32  # image side; must divide by 2 ** (levels - 1)
    widths: tuple[int, ...] = (16, 32, 64, 128)  # channels per level, full resolution first
    blocks: int = 1  # residual blocks per level on the way down (one more on the way up)
    attention: tuple[int, ...] = (2, 3)  # levels (0 = full resolution) with self- and cross-attention
    context_dim: int = 128  # the text encoder's hidden size
    head_dim: int = 32  # channels per attention head
    groups: int = 8  # GroupNorm groups
    dropout: float = 0.0  # inside residual blocks
    text_mask: bool = False  # zero context vectors are padding: masked in cross-attention; pooled text joins temb
    scale_shift: bool = False  # the time (and pooled text) embedding scales and shifts the normalised features

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of float timesteps (B,) -> (B, dim); fractional timesteps are fine."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv, the embedding, GroupNorm, SiLU, conv, plus the input. The embedding is added to the
    features, or with `scale_shift` modulates the second GroupNorm's output, h * (1 + scale) + shift: the
    adaptive GroupNorm of Dhariwal & Nichol (https://arxiv.org/abs/2105.05233), a multiplicative path for
    the pooled text as for their class labels."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, groups: int, dropout: float,
                 scale_shift: bool = False) -> None:
        super().__init__()
        self.scale_shift = scale_shift
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, 2 * c_out if scale_shift else c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.scale_shift:
            scale, shift = self.time(F.silu(temb))[:, :, None, None].chunk(2, dim=1)  # (B, c_out, 1, 1) each
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + self.time(temb)[:, :, None, None])
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SpatialTransformer(nn.Module):
    """Self-attention over the pixels, cross-attention to the text, a GELU feed-forward; residual around all."""

    def __init__(self, c: int, context_dim: int, head_dim: int, groups: int) -> None:
        super().__init__()
        heads = max(1, c // head_dim)
        self.norm = nn.GroupNorm(groups, c)
        self.proj_in = nn.Linear(c, c)
        self.norm1, self.self_attn = nn.LayerNorm(c), Attention(c, heads)
        self.norm2, self.cross_attn = nn.LayerNorm(c), Attention(c, heads, context_dim)
        self.norm3 = nn.LayerNorm(c)
        self.ff = nn.Sequential(nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c))
        self.proj_out = nn.Linear(c, c)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))  # (B, H*W, C)
        y = y + self.self_attn(self.norm1(y))
        y = y + self.cross_attn(self.norm2(y), context, bias)
        y = y + self.ff(self.norm3(y))
        return x + self.proj_out(y).transpose(1, 2).reshape(b, c, h, w)


class Level(nn.Module):
    """Residual blocks, each followed by a transformer block where the level has attention."""

    def __init__(self, c_ins: list[int], c_out: int, cfg: UNetConfig, t_dim: int, attend: bool) -> None:
        super().__init__()
        self.res = nn.ModuleList(ResBlock(c, c_out, t_dim, cfg.groups, cfg.dropout, cfg.scale_shift) for c in c_ins)
        self.attn = nn.ModuleList(SpatialTransformer(c_out, cfg.context_dim, cfg.head_dim, cfg.groups)
                                  if attend else nn.Identity() for _ in c_ins)


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        if cfg.size % 2 ** (len(cfg.widths) - 1):
            raise ValueError(f"size {cfg.size} does not halve {len(cfg.widths) - 1} times")
        if any(w % cfg.groups for w in cfg.widths):
            raise ValueError(f"every width must divide into {cfg.groups} GroupNorm groups: {cfg.widths}")
        self.cfg = cfg
        w = cfg.widths
        t_dim = 4 * w[0]
        self.time_mlp = nn.Sequential(nn.Linear(w[0], t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        if cfg.text_mask:
            self.text_mlp = nn.Sequential(nn.Linear(cfg.context_dim, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
            nn.init.zeros_(self.text_mlp[2].weight)  # starts without the pooled path (a resumed run picks it up)
            nn.init.zeros_(self.text_mlp[2].bias)
        self.conv_in = nn.Conv2d(cfg.channels, w[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [w[0]]
        c = w[0]
        for i, width in enumerate(w):
            self.down.append(Level([c] + [width] * (cfg.blocks - 1), width, cfg, t_dim, i in cfg.attention))
            c = width
            skips += [width] * cfg.blocks
            if i < len(w) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid_res1 = ResBlock(c, c, t_dim, cfg.groups, cfg.dropout, cfg.scale_shift)
        self.mid_attn = SpatialTransformer(c, cfg.context_dim, cfg.head_dim, cfg.groups)
        self.mid_res2 = ResBlock(c, c, t_dim, cfg.groups, cfg.dropout, cfg.scale_shift)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(w))):
            c_ins = []
            for _ in range(cfg.blocks + 1):
                c_ins.append(c + skips.pop())
                c = w[i]
            self.up.append(Level(c_ins, w[i], cfg, t_dim, i in cfg.attention))
            if i > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.norm_out = nn.GroupNorm(cfg.groups, c)
        self.conv_out = nn.Conv2d(c, cfg.channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(timestep, self.cfg.widths[0]))  # (B, 4 * widths[0])
        bias = None
        if self.cfg.text_mask:
            pooled, keep = pooled_text(context)
            bias = key_bias(keep)
            temb = temb + self.text_mlp(pooled)
        h = self.conv_in(sample)
        hs = [h]
        for i, level in enumerate(self.down):
            for res, attn in zip(level.res, level.attn, strict=True):
                h = res(h, temb)
                h = attn(h, context, bias) if isinstance(attn, SpatialTransformer) else h
                hs.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)  # (B, C, H/2, W/2)
                hs.append(h)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h, temb), context, bias), temb)
        for i, level in enumerate(self.up):
            for res, attn in zip(level.res, level.attn, strict=True):
                h = res(torch.cat([h, hs.pop()], dim=1), temb)  # (B, C + C_skip, H, W) -> (B, C, H, W)
                h = attn(h, context, bias) if isinstance(attn, SpatialTransformer) else h
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))  # (B, C, 2H, 2W)
        return self.conv_out(F.silu(self.norm_out(h)))
