"""The discriminator: a strided conv stack with equalized learning rate and a minibatch-stddev feature.

    d = Discriminator(GanConfig(channels=3, size=64))
    logits = d(images)                       # images (N, C, size, size) in about [-1, 1] -> (N,)

Each stage is a 3x3 conv and a 3x3 conv with 2x average-pool downsampling, with a residual 1x1 skip
(StyleGAN2's resnet discriminator, https://arxiv.org/abs/1912.04958, figure 7c), down to 4x4; then the
standard deviation over a small group of images as one extra channel (ProGAN, section 3), a conv and
two linear layers to one logit.
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch
import torch.nn as nn
import torch.nn.functional as F

from genstudio.export.gan.generator import GanConfig
from genstudio.export.gan.layers import EqualConv2d, EqualLinear


class DBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = EqualConv2d(c_in, c_in, 3)
        self.conv2 = EqualConv2d(c_in, c_out, 3, down=True)
        self.skip = EqualConv2d(c_in, c_out, 1, act=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2.0)  # (N, C_out, H/2, W/2)


class Discriminator(nn.Module):
    def __init__(self, cfg: GanConfig, group: int = 4) -> None:
        super().__init__()
        self.cfg, self.group = cfg, group
        widths = cfg.d_widths
        self.from_rgb = EqualConv2d(cfg.channels, widths[0], 1)
        self.blocks = nn.Sequential(*[DBlock(a, b) for a, b in pairwise(widths)])
        self.final_conv = EqualConv2d(widths[-1] + 1, widths[-1], 3)
        side = cfg.render_size // 2 ** (len(widths) - 1)
        self.fc = EqualLinear(widths[-1] * side * side, widths[-1], act=True)
        self.out = EqualLinear(widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.cfg.render_size - self.cfg.size) // 2
        if pad:  # Fashion-MNIST's 28 back to the synthesis side, with the background value
            x = F.pad(x, (pad, pad, pad, pad), value=-1.0)
        h = self.blocks(self.from_rgb(x))  # (N, C, 4, 4)
        n, c, hh, ww = h.shape
        g = min(self.group, n)
        while n % g:
            g -= 1
        std = h.view(g, -1, c, hh, ww).var(dim=0, unbiased=False).add(1e-8).sqrt()  # (N/g, C, 4, 4)
        std = std.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1).repeat(g, 1, hh, ww)  # (N, 1, 4, 4)
        h = self.final_conv(torch.cat([h, std], dim=1))
        return self.out(self.fc(h.flatten(1))).squeeze(1)
