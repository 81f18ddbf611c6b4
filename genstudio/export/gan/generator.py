"""A small style-based generator: a mapping MLP z -> w and a modulated synthesis network w -> image.

    g = Generator(GanConfig(channels=3, size=64))
    w = g.mapping(z)                         # z (N, z_dim) ~ N(0, I) -> w (N, w_dim)
    image = g.synthesis(w)                   # (N, C, size, size) in [0, 1]
    w_avg = g.mean_w(100_000)                # the mean latent that truncation pulls toward

StyleGAN2's design at toy scale (Karras et al. 2020, https://arxiv.org/abs/1912.04958): a learned 4x4
constant, two modulated 3x3 convs per resolution (one at 4x4), bilinear upsampling, and skip toRGB outputs
summed across resolutions. One w feeds every layer (no style mixing) and there are no noise inputs, so an
image is a pure function of w: what truncation, morphs and attribute directions need.

With `fourier` > 0 the last stage also reads that many sinusoids over the pixel grid whose frequencies and
phases follow w (FourierFeatures): a periodic backdrop is then a threshold of one of them, where upsampled 3x3
convolutions alone draw stripes and dot lattices as swirls.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import pairwise

import torch
import torch.nn as nn
import torch.nn.functional as F

from genstudio.export.gan.layers import SQRT2, EqualLinear, ModulatedConv2d


@dataclass
class GanConfig:
    channels: int = 3  # 3 (SynthFaces) or 1 (Fashion-MNIST)
    size: int = 64  # output side; the synthesis runs at 4 * 2^(stages-1) and centre-crops to this
    z_dim: int = 64  # the input noise z ~ N(0, I)
    w_dim: int = 64  # the intermediate latent W that truncation and attribute directions live in
    mapping_layers: int = 4  # depth of the mapping MLP
    mapping_lr_mul: float = 0.01  # the mapping learns 100x slower (StyleGAN's recipe)
    g_widths: tuple[int, ...] = (128, 128, 64, 32, 16)  # synthesis channels at 4, 8, 16, 32, 64
    d_widths: tuple[int, ...] = (16, 32, 64, 128, 128)  # discriminator channels at 64, 32, 16, 8, 4
    fourier: int = 0  # sinusoid channels, steered by w, that join the last stage's input (0: none)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["g_widths"], d["d_widths"] = list(self.g_widths), list(self.d_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GanConfig:
        d = dict(d)
        d["g_widths"], d["d_widths"] = tuple(d["g_widths"]), tuple(d["d_widths"])
        return cls(**d)

    @property
    def render_size(self) -> int:
        """The side the synthesis network renders at before the centre crop."""
        return 4 * 2 ** (len(self.g_widths) - 1)


class Mapping(nn.Module):
    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=cfg.mapping_lr_mul, act=True)
                                   for a, b in pairwise(dims)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)  # pixel norm: z on a sphere
        return self.net(z)  # (N, w_dim)


class FourierFeatures(nn.Module):
    """k sinusoids over the render grid, sin(2 pi (f . (x, y) + phase)), with each frequency f (cycles per pixel)
    and phase (turns) an affine function of w: (N, w_dim) -> (N, k, size, size).

    The frequencies start as fixed, varied ones (periods of 6 to 12 pixels at every orientation) that w does not
    move yet: their affine has zero weights and learns 100x slower (lr_mul), since a small change of frequency
    is a large change far from the centre. The phases follow w from the start, so samples already differ.
    StyleGAN3 feeds its synthesis Fourier features in the same way (Karras et al. 2021,
    https://arxiv.org/abs/2106.12423); here they join at full resolution, where the backdrops' periods are.
    """

    def __init__(self, k: int, w_dim: int, size: int) -> None:
        super().__init__()
        self.k, self.size = k, size
        self.freq = EqualLinear(w_dim, 2 * k, lr_mul=0.01)
        angle = torch.rand(k) * math.pi  # f and -f draw the same lines: half a turn of orientations covers all
        period = 6.0 + 6.0 * torch.rand(k)
        base = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1) / period[:, None]  # (k, 2)
        with torch.no_grad():
            self.freq.weight.zero_()
            self.freq.bias.copy_(base.reshape(-1) / self.freq.lr_mul)
        self.phase = EqualLinear(w_dim, k)
        centres = torch.arange(size, dtype=torch.float32) + 0.5 - size / 2  # pixel centres about the middle
        yy, xx = torch.meshgrid(centres, centres, indexing="ij")
        self.register_buffer("grid", torch.stack([xx.reshape(-1), yy.reshape(-1)]), persistent=False)  # (2, HW)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        with torch.autocast(w.device.type, enabled=False):  # in float32 under bf16 training: bf16's 8-bit
            w = w.float()                                    # mantissa would put ~5 degrees of jitter in a phase
            f = self.freq(w).view(-1, self.k, 2)  # (N, k, 2) cycles per pixel
            turns = f @ self.grid + self.phase(w)[:, :, None]  # (N, k, HW)
            return torch.sin(2 * math.pi * turns).view(-1, self.k, self.size, self.size)


class ToRGB(nn.Module):
    def __init__(self, c_in: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(c_in, channels, 1, w_dim, demodulate=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w)


class Synthesis(nn.Module):
    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = cfg.g_widths
        self.const = nn.Parameter(torch.randn(1, widths[0], 4, 4))
        self.convs = nn.ModuleList([ModulatedConv2d(widths[0], widths[0], 3, cfg.w_dim)])
        self.to_rgb = nn.ModuleList([ToRGB(widths[0], cfg.channels, cfg.w_dim)])
        for i, (c_in, c_out) in enumerate(pairwise(widths), start=1):
            extra = cfg.fourier if i == len(widths) - 1 else 0  # the last stage's first conv reads the sinusoids too
            self.convs.append(ModulatedConv2d(c_in + extra, c_out, 3, cfg.w_dim))
            self.convs.append(ModulatedConv2d(c_out, c_out, 3, cfg.w_dim))
            self.to_rgb.append(ToRGB(c_out, cfg.channels, cfg.w_dim))
        self.fourier = FourierFeatures(cfg.fourier, cfg.w_dim, cfg.render_size) if cfg.fourier else None

    def fourier_input(self, i: int, w: torch.Tensor) -> torch.Tensor | None:
        """The sinusoids (N, k, H, W) that stage i's first conv reads beside its upsampled input, or None."""
        return self.fourier(w) if self.fourier is not None and i == len(self.to_rgb) - 1 else None

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """w (N, w_dim) -> raw image (N, C, render, render), about [-1, 1]."""
        x = self.const.expand(w.shape[0], -1, -1, -1)  # (N, C0, 4, 4)
        x = F.leaky_relu(self.convs[0](x, w), 0.2) * SQRT2
        rgb = self.to_rgb[0](x, w)
        for i in range(1, len(self.to_rgb)):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)  # (N, C, 2H, 2W)
            if (extra := self.fourier_input(i, w)) is not None:
                x = torch.cat([x, extra], dim=1)  # (N, C + k, H, W)
            x = F.leaky_relu(self.convs[2 * i - 1](x, w), 0.2) * SQRT2
            x = F.leaky_relu(self.convs[2 * i](x, w), 0.2) * SQRT2
            rgb = F.interpolate(rgb, scale_factor=2.0, mode="bilinear", align_corners=False) + self.to_rgb[i](x, w)
        return rgb


def output_crop(cfg: GanConfig, x: torch.Tensor) -> torch.Tensor:
    """The centre cfg.size square of a (N, C, render_size, render_size) image (itself where the sizes agree)."""
    crop = (cfg.render_size - cfg.size) // 2
    return x[:, :, crop:crop + cfg.size, crop:crop + cfg.size] if crop else x


def to_unit(raw: torch.Tensor) -> torch.Tensor:
    """A raw image in about [-1, 1] to the [0, 1] image the studio shows."""
    return (raw.clamp(-1.0, 1.0) + 1.0) * 0.5


class Generator(nn.Module):
    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mapping = Mapping(cfg)
        self.synthesis_net = Synthesis(cfg)

    def raw(self, w: torch.Tensor) -> torch.Tensor:
        """w -> image in about [-1, 1] at the output size (what the discriminator sees during training)."""
        return output_crop(self.cfg, self.synthesis_net(w))  # (N, C, size, size)

    def synthesis(self, w: torch.Tensor) -> torch.Tensor:
        """w (N, w_dim) -> image (N, C, size, size) in [0, 1]."""
        return to_unit(self.raw(w))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.raw(self.mapping(z))

    @torch.no_grad()
    def mean_w(self, n: int = 100_000, seed: int = 0) -> torch.Tensor:
        """The mean of mapping(z) over n draws of z ~ N(0, I): (w_dim,)."""
        gen = torch.Generator().manual_seed(seed)
        total = torch.zeros(self.cfg.w_dim, dtype=torch.float64)
        for i in range(0, n, 10_000):
            z = torch.randn(min(10_000, n - i), self.cfg.z_dim, generator=gen)
            total += self.mapping(z).double().sum(0)
        return (total / n).float()


class MappingGraph(nn.Module):
    """What mapping.onnx computes: z (N, z_dim) -> w (N, w_dim)."""

    def __init__(self, g: Generator) -> None:
        super().__init__()
        self.mapping = g.mapping

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mapping(z)


def upsample_matrix(n: int) -> torch.Tensor:
    """(n, 2n) U such that x @ U doubles x's last axis as F.interpolate(scale_factor=2, mode="bilinear",
    align_corners=False) does: output 2j is 0.25 x[j-1] + 0.75 x[j], output 2j+1 is 0.75 x[j] + 0.25 x[j+1],
    with the indices clamped at the edges."""
    u = torch.zeros(n, 2 * n)
    for j in range(n):
        u[max(j - 1, 0), 2 * j] += 0.25
        u[j, 2 * j] += 0.75
        u[j, 2 * j + 1] += 0.75
        u[min(j + 1, n - 1), 2 * j + 1] += 0.25
    return u


class SynthesisGraph(nn.Module):
    """What synthesis.onnx computes: w (N, w_dim) -> image (N, C, size, size) in [0, 1].

    The same function as Generator.synthesis (to float rounding), arranged for inference with fewer passes over
    the feature maps, which is where a small generator spends its time:

    - A modulated layer computes lrelu(conv(x * s) * d + b) * sqrt(2), with the demodulation d > 0 per example
      and channel. A leaky ReLU commutes with positive scales, so that is lrelu(conv(x * s) + b / d) * c with
      c = d * sqrt(2). The factor c is left on the feature map and folded into whatever reads it next: the next
      layer's input scale (c * s') and the toRGB's; bilinear upsampling is per channel, so c passes through it.
      A layer is then one multiply, the conv, one add and the activation, where it was three multiplies, an
      add, the conv and the activation.
    - The 2x bilinear upsampling is two small matrix products with a fixed (n, 2n) matrix, one per axis
      (`upsample_matrix`): ONNX Runtime's Resize was a sixth of the graph's time.
    """

    def __init__(self, g: Generator) -> None:
        super().__init__()
        syn = g.synthesis_net
        if not all(c.demodulate for c in syn.convs) or any(t.conv.demodulate for t in syn.to_rgb):
            raise ValueError("SynthesisGraph folds the demodulation of every conv and of no toRGB")
        self.g = g
        sizes = [4 * 2 ** i for i in range(len(g.cfg.g_widths) - 1)]
        for n in sizes:
            u = upsample_matrix(n).to(syn.const)  # the generator's device and dtype
            self.register_buffer(f"up_w{n}", u, persistent=False)  # (n, 2n): x @ u along the width
            self.register_buffer(f"up_h{n}", u.t().contiguous(), persistent=False)  # (2n, n): u.T @ x along the height

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        return getattr(self, f"up_h{n}") @ (x @ getattr(self, f"up_w{n}"))  # (N, C, 2H, 2W)

    @staticmethod
    def _layer(conv: ModulatedConv2d, x: torch.Tensor, carry: torch.Tensor | None, w: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """One modulated layer on a feature map whose true value is x * carry (per example and channel):
        returns (y, c) with lrelu(...) * sqrt(2) of the layer = y * c."""
        s, weight, d = conv.modulation(w)  # (N, C_in), (C_out, C_in, k, k), (N, C_out)
        scale = s if carry is None else s * carry
        y = F.conv2d(x * scale[:, :, None, None], weight, padding=conv.pad)  # (N, C_out, H, W)
        y = F.leaky_relu(y + (conv.bias[None] / d)[:, :, None, None], 0.2)
        return y, d * SQRT2

    @staticmethod
    def _rgb(to_rgb: ToRGB, x: torch.Tensor, carry: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        conv = to_rgb.conv
        s, weight, _ = conv.modulation(w)  # a toRGB does not demodulate
        y = F.conv2d(x * (s * carry)[:, :, None, None], weight, padding=conv.pad)
        return y + conv.bias[None, :, None, None]

    def raw(self, w: torch.Tensor) -> torch.Tensor:
        """w -> image in about [-1, 1] at the output size: Generator.raw, rearranged."""
        syn = self.g.synthesis_net
        x, c = self._layer(syn.convs[0], syn.const.expand(w.shape[0], -1, -1, -1), None, w)
        rgb = self._rgb(syn.to_rgb[0], x, c, w)
        for i in range(1, len(syn.to_rgb)):
            x = self._up(x)
            if (extra := syn.fourier_input(i, w)) is not None:  # the sinusoids carry no folded scale
                x = torch.cat([x, extra], dim=1)  # (N, C + k, H, W)
                c = torch.cat([c, c.new_ones(c.shape[0], extra.shape[1])], dim=1)
            x, c = self._layer(syn.convs[2 * i - 1], x, c, w)
            x, c = self._layer(syn.convs[2 * i], x, c, w)
            rgb = self._up(rgb) + self._rgb(syn.to_rgb[i], x, c, w)
        return output_crop(self.g.cfg, rgb)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return to_unit(self.raw(w))
