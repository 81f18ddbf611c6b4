"""Rational-quadratic spline coupling on 2-D points (neural spline flows), written with ONNX-friendly ops only.

One coordinate conditions a monotonic rational-quadratic spline on [-bound, bound] that moves the other;
outside the interval the map is the identity (linear tails with slope 1). Durkan et al. 2019,
https://arxiv.org/abs/1906.04032. Bins are found by counting knots below the point and read with
gather, so both directions export to plain ONNX (CumSum, GatherElements, Softplus, Sqrt).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

MIN_BIN = 1e-3  # smallest bin width and height, as a fraction of the interval
MIN_DERIVATIVE = 1e-3  # smallest slope at a knot


def _knots(raw: torch.Tensor, bound: float) -> torch.Tensor:
    """Unnormalised bin sizes (N, K) to knot positions (N, K+1) from -bound to bound."""
    k = raw.shape[-1]
    sizes = MIN_BIN + (1 - MIN_BIN * k) * torch.softmax(raw, -1)
    knots = F.pad(torch.cumsum(sizes, -1), (1, 0))  # (N, K+1) from 0 to 1
    return (2 * knots - 1) * bound


def _pick(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return torch.gather(t, 1, idx)[:, 0]  # (N,)


def rq_spline(x: torch.Tensor, raw_w: torch.Tensor, raw_h: torch.Tensor, raw_d: torch.Tensor, bound: float,
              inverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the spline (or its inverse) to x (N,); parameters (N, K), (N, K), (N, K-1).

    Returns (y, log|dy/dx|) for the direction applied; the identity with log-det 0 outside the interval.
    """
    xk = _knots(raw_w, bound)  # (N, K+1)
    yk = _knots(raw_h, bound)
    d = F.pad(MIN_DERIVATIVE + F.softplus(raw_d), (1, 1), value=1.0)  # (N, K+1); slope 1 at both ends
    inside = (x > -bound) & (x < bound)
    xc = x.clamp(-bound, bound)
    search = yk if inverse else xk
    idx = (xc[:, None] >= search[:, 1:-1]).to(torch.int64).sum(-1, keepdim=True)  # (N, 1) bin index
    x0, x1 = _pick(xk, idx), _pick(xk, idx + 1)
    y0, y1 = _pick(yk, idx), _pick(yk, idx + 1)
    d0, d1 = _pick(d, idx), _pick(d, idx + 1)
    w, h = x1 - x0, y1 - y0
    s = h / w
    if inverse:
        dy = xc - y0
        a = h * (s - d0) + dy * (d1 + d0 - 2 * s)
        b = h * d0 - dy * (d1 + d0 - 2 * s)
        c = -s * dy
        disc = (b * b - 4 * a * c).clamp_min(0.0)
        xi = (2 * c) / (-b - torch.sqrt(disc))
        out = xi * w + x0
    else:
        xi = (xc - x0) / w
        out = y0 + h * (s * xi * xi + d0 * xi * (1 - xi)) / (s + (d1 + d0 - 2 * s) * xi * (1 - xi))
    t = xi * (1 - xi)
    denom = s + (d1 + d0 - 2 * s) * t
    log_grad = (2 * torch.log(s) + torch.log(d1 * xi * xi + 2 * s * t + d0 * (1 - xi) ** 2)
                - 2 * torch.log(denom))  # log dy/dx at the point
    logdet = -log_grad if inverse else log_grad
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))


class SplineCoupling(nn.Module):
    """Keeps coordinate `keep`; the other goes through a spline whose knots an MLP reads from the kept one."""

    def __init__(self, keep: int, hidden: int, depth: int, bins: int, bound: float) -> None:
        super().__init__()
        self.keep = keep  # which coordinate conditions (0 or 1)
        self.bins = bins  # spline bins K
        self.bound = bound  # the spline acts on [-bound, bound]; identity outside
        layers: list[nn.Module] = [nn.Linear(1, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        last = nn.Linear(hidden, 3 * bins - 1)
        nn.init.zeros_(last.weight)  # starts as the identity: equal bins, slope 1 at every knot
        nn.init.zeros_(last.bias)
        with torch.no_grad():
            last.bias[2 * bins:] = math.log(math.expm1(1.0 - MIN_DERIVATIVE))  # softplus(b) + min = 1
        self.net = nn.Sequential(*layers, last)

    def _params(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.net(a)  # (N, 3K - 1)
        k = self.bins
        return p[:, :k], p[:, k:2 * k], p[:, 2 * k:]

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, self.keep:self.keep + 1], x[:, 1 - self.keep]  # (N, 1), (N,)

    def _join(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b[:, None]], 1) if self.keep == 0 else torch.cat([b[:, None], a], 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self._split(x)
        y, logdet = rq_spline(b, *self._params(a), self.bound)
        return self._join(a, y), logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a, b = self._split(y)
        x, _ = rq_spline(b, *self._params(a), self.bound, inverse=True)
        return self._join(a, x)
