"""Invertible layers on 2-D points: fixed standardisation, affine coupling (RealNVP), actnorm and 2x2 LU mixing (Glow).

Every layer maps the data side to the base side in `forward(x) -> (y, log|det dy/dx|)` and back in
`inverse(y) -> x`. Shapes: x, y (N, 2); log-det (N,). The inverses use only elementwise ops and small
matrix products, so both directions export to plain ONNX.

RealNVP: Dinh et al. 2016, https://arxiv.org/abs/1605.08803
Glow:    Kingma & Dhariwal 2018, https://arxiv.org/abs/1807.03039
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Standardize(nn.Module):
    """A fixed affine map y = (x - mean) / std, set once from the training data (not trained)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(2))
        self.register_buffer("log_std", torch.zeros(2))

    @torch.no_grad()
    def fit(self, data: torch.Tensor) -> None:
        self.mean.copy_(data.mean(0))
        self.log_std.copy_(data.std(0).clamp_min(1e-3).log())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = (x - self.mean) * torch.exp(-self.log_std)
        return y, (-self.log_std.sum()).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(self.log_std) + self.mean


class AffineCoupling(nn.Module):
    """Keeps coordinate `keep`, moves the other: y_b = x_b * exp(s(x_a)) + t(x_a)."""

    def __init__(self, keep: int, hidden: int, depth: int, scale_clamp: float) -> None:
        super().__init__()
        self.keep = keep  # 0: x is the conditioner input and y is moved; 1: the other way
        self.scale_clamp = scale_clamp  # soft bound on |s|: s = c * tanh(raw / c)
        layers: list[nn.Module] = [nn.Linear(1, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        last = nn.Linear(hidden, 2)
        nn.init.zeros_(last.weight)  # every coupling starts as the identity
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = x[:, self.keep:self.keep + 1]  # (N, 1) the coordinate that conditions
        b = x[:, 1 - self.keep:2 - self.keep]  # (N, 1) the coordinate that moves
        return a, b

    def _join(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], 1) if self.keep == 0 else torch.cat([b, a], 1)  # (N, 2)

    def _scale_shift(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        st = self.net(a)  # (N, 2)
        s = self.scale_clamp * torch.tanh(st[:, 0:1] / self.scale_clamp)
        return s, st[:, 1:2]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self._split(x)
        s, t = self._scale_shift(a)
        return self._join(a, b * torch.exp(s) + t), s[:, 0]

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a, b = self._split(y)
        s, t = self._scale_shift(a)
        return self._join(a, (b - t) * torch.exp(-s))


class ActNorm(nn.Module):
    """Per-coordinate affine y = (x + bias) * exp(log_scale); the first training batch sets unit variance."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(2))
        self.log_scale = nn.Parameter(torch.zeros(2))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.uint8))

    @torch.no_grad()
    def _init_from(self, x: torch.Tensor) -> None:
        self.bias.copy_(-x.mean(0))
        self.log_scale.copy_(-x.std(0).clamp_min(1e-3).log())
        self.initialized.fill_(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            self._init_from(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        return y, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class LUMix2d(nn.Module):
    """An invertible 2x2 matrix W = P L (U + diag(s)), learned through l, u and log|s| (Glow's LU form).

    P is a fixed permutation (identity or swap), L unit lower triangular, U strictly upper triangular;
    log|det W| = sum log|s|. It starts at a random rotation, so mixing begins at once.
    """

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        angle = torch.rand((), generator=generator) * torch.pi
        w0 = torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])])
        p, lower, upper = torch.linalg.lu(w0)  # w0 = p @ lower @ upper
        diag = torch.diagonal(upper)
        self.register_buffer("perm", p)  # (2, 2) fixed
        self.register_buffer("sign_s", torch.sign(diag))  # (2,) fixed signs of the diagonal
        self.l21 = nn.Parameter(lower[1, 0].clone())
        self.u12 = nn.Parameter(upper[0, 1].clone())
        self.log_s = nn.Parameter(diag.abs().log())

    def weight(self) -> torch.Tensor:
        s = self.sign_s * torch.exp(self.log_s)  # (2,)
        one, zero = torch.ones_like(self.l21), torch.zeros_like(self.l21)
        lower = torch.stack([torch.stack([one, zero]), torch.stack([self.l21, one])])
        upper = torch.stack([torch.stack([s[0], self.u12]), torch.stack([zero, s[1]])])
        return self.perm @ lower @ upper  # (2, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x @ self.weight().T, self.log_s.sum().expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        w = self.weight()
        a, b, c, d = w[0, 0], w[0, 1], w[1, 0], w[1, 1]
        inv = torch.stack([torch.stack([d, -b]), torch.stack([-c, a])]) / (a * d - b * c)  # adj(W) / det(W)
        return y @ inv.T
