"""Equalized-learning-rate layers shared by the generator and the discriminator (Karras et al. 2018, ProGAN).

Weights are stored as N(0, 1) / lr_mul and scaled by lr_mul / sqrt(fan_in) at run time, so Adam's step size is
the same for every layer whatever its fan-in (https://arxiv.org/abs/1710.10196, section 4.1).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


class EqualLinear(nn.Module):
    def __init__(self, d_in: int, d_out: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
                 act: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((d_out,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(d_in), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.act else x


class EqualConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, *, act: bool = True, down: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale, self.pad, self.act, self.down = 1.0 / math.sqrt(c_in * k * k), k // 2, act, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)
        if self.down:
            x = F.avg_pool2d(x, 2)  # (N, C, H/2, W/2)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.act else x


class ModulatedConv2d(nn.Module):
    """A conv whose input channels are scaled by a style from w, with weight demodulation (StyleGAN2,
    https://arxiv.org/abs/1912.04958, section 2.2), written batch-free so one graph serves any batch:
    x * s -> conv -> * d, with d = 1 / sqrt(sum over (in, k, k) of (weight * s)^2) per example and output."""

    def __init__(self, c_in: int, c_out: int, k: int, w_dim: int, *, demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)  # styles start at 1: an unmodulated conv
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale, self.pad, self.demodulate = 1.0 / math.sqrt(c_in * k * k), k // 2, demodulate

    def modulation(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(styles s (N, C_in), the scaled weight (C_out, C_in, k, k), demodulation d (N, C_out) or None)."""
        s = self.affine(w)
        weight = self.weight * self.scale
        if not self.demodulate:
            return s, weight, None
        return s, weight, torch.rsqrt(s.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + 1e-8)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s, weight, d = self.modulation(w)
        x = F.conv2d(x * s[:, :, None, None], weight, padding=self.pad)  # (N, C_out, H, W)
        if d is not None:
            x = x * d[:, :, None, None]
        return x + self.bias[None, :, None, None]
