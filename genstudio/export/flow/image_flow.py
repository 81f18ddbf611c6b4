"""A multi-scale Glow-style image flow (squeeze, actnorm, 1x1 LU convolution, affine coupling, factor-out).

    model = ImageFlow(ImageFlowConfig())             # 1x28x28 Fashion-MNIST images in [0, 1]
    logp = model.log_prob(x)                          # x (N, 1, 28, 28) dequantised -> (N,) nats on [0,1]^D
    x = model.inverse(z)                              # z (N, 784) -> (N, 1, 28, 28)

Layout for 1x28x28 and two scales: logit -> squeeze 4x14x14 -> K steps -> factor out 2x14x14 (to z) ->
squeeze 8x7x7 -> K steps -> z. Every factored-out part has a standard normal prior (RealNVP's
multi-scale architecture). Dinh et al. 2016 https://arxiv.org/abs/1605.08803,
Kingma & Dhariwal 2018 https://arxiv.org/abs/1807.03039.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ImageFlowConfig:
    channels: int = 1  # image channels
    size: int = 28  # image height and width (divisible by 2 ** n_scales)
    n_scales: int = 2  # squeeze + steps (+ factor-out between scales)
    steps_per_scale: int = 4  # actnorm / 1x1 conv / coupling steps at each scale
    hidden: int = 64  # channels inside each coupling network
    alpha: float = 0.05  # logit margin: y = logit(alpha + (1 - 2 alpha) x), as in RealNVP
    init_seed: int = 0  # seeds the 1x1 convolutions' random rotations

    def to_dict(self) -> dict:
        return asdict(self)


def squeeze(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)  # (N, 4C, H/2, W/2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    x = x.reshape(n, c // 4, 2, 2, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(n, c // 4, h * 2, w * 2)  # (N, C/4, 2H, 2W)


class Logit(nn.Module):
    """[0, 1] pixels to the real line: y = logit(a + (1 - 2a) x), with its log-det."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(p) - torch.log1p(-p)
        ld = math.log(1 - 2 * self.alpha) - torch.log(p) - torch.log1p(-p)  # d y / d x per pixel
        return y, ld.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)


class ActNorm2d(nn.Module):
    """Per-channel affine y = (x + b) * exp(log_s); the first training batch sets zero mean, unit variance."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.uint8))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                self.bias.copy_(-x.mean((0, 2, 3), keepdim=True))
                self.log_scale.copy_(-x.std((0, 2, 3), keepdim=True).clamp_min(1e-3).log())
                self.initialized.fill_(1)
        hw = x.shape[2] * x.shape[3]
        return (x + self.bias) * torch.exp(self.log_scale), (self.log_scale.sum() * hw).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvConv1x1(nn.Module):
    """An invertible 1x1 convolution in LU form, W = P L (U + diag(s)); log|det| = H W sum log|s|."""

    def __init__(self, c: int, generator: torch.Generator) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(c, c, generator=generator))  # a random rotation
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(c, c), -1))
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(s.abs().log())
        self.w_inv: torch.Tensor | None = None  # set by freeze_inverse() before the sampling graph is exported

    def weight(self) -> torch.Tensor:
        eye = torch.eye(self.perm.shape[0], dtype=self.perm.dtype)
        lower = self.lower * self.lower_mask + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper  # (C, C)

    def freeze_inverse(self) -> None:
        w = self.weight().detach()
        self.w_inv = torch.linalg.inv(w.double()).to(w.dtype)  # inverted in float64, stored as the weights are

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight()
        hw = x.shape[2] * x.shape[3]
        return F.conv2d(x, w[:, :, None, None]), (self.log_s.sum() * hw).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        w_inv = self.w_inv if self.w_inv is not None else torch.linalg.inv(self.weight())
        return F.conv2d(y, w_inv[:, :, None, None])


class ConvCoupling(nn.Module):
    """Affine coupling over channels: the first half conditions, y_b = (x_b + t) * sigmoid(raw + 2) (Glow)."""

    def __init__(self, c: int, hidden: int) -> None:
        super().__init__()
        self.c_a = c // 2
        last = nn.Conv2d(hidden, 2 * (c - self.c_a), 3, padding=1)
        nn.init.zeros_(last.weight)  # starts near the identity
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Conv2d(self.c_a, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, hidden, 1), nn.ReLU(), last)

    def _params(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(a)
        shift, raw = h[:, 0::2], h[:, 1::2]
        return shift, torch.sigmoid(raw + 2.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x[:, :self.c_a], x[:, self.c_a:]
        shift, scale = self._params(a)
        return torch.cat([a, (b + shift) * scale], 1), torch.log(scale).flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a, b = y[:, :self.c_a], y[:, self.c_a:]
        shift, scale = self._params(a)
        return torch.cat([a, b / scale - shift], 1)


class ImageFlow(nn.Module):
    def __init__(self, config: ImageFlowConfig) -> None:
        super().__init__()
        self.config = config
        if config.size % (2 ** config.n_scales):
            raise ValueError(f"size {config.size} is not divisible by 2**{config.n_scales}")
        gen = torch.Generator().manual_seed(config.init_seed)
        self.logit = Logit(config.alpha)
        self.scales = nn.ModuleList()
        c = config.channels
        for k in range(config.n_scales):
            c *= 4  # after the squeeze
            steps = nn.ModuleList()
            for _ in range(config.steps_per_scale):
                steps.append(nn.ModuleList([ActNorm2d(c), InvConv1x1(c, gen), ConvCoupling(c, config.hidden)]))
            self.scales.append(steps)
            if k < config.n_scales - 1:
                c //= 2  # half the channels are factored out
        self.dim = config.channels * config.size**2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image (N, C, H, W) in [0, 1] to z (N, D) and the summed log|det| (N,)."""
        h, logdet = self.logit(x)
        zs = []
        for k, steps in enumerate(self.scales):
            h = squeeze(h)  # (N, 4C, H/2, W/2)
            for step in steps:
                for layer in step:
                    h, ld = layer(h)
                    logdet = logdet + ld
            if k < len(self.scales) - 1:
                half = h.shape[1] // 2
                zs.append(h[:, :half].flatten(1))  # factored out: (N, C/2 * H * W)
                h = h[:, half:]
        zs.append(h.flatten(1))
        return torch.cat(zs, 1), logdet  # (N, D), (N,)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, logdet = self(x)
        return -0.5 * (z**2).sum(1) - 0.5 * self.dim * math.log(2 * math.pi) + logdet

    def _shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of each scale's state after its squeeze."""
        c, s = self.config.channels, self.config.size
        out = []
        for k in range(self.config.n_scales):
            c, s = c * 4, s // 2
            out.append((c, s, s))
            if k < self.config.n_scales - 1:
                c //= 2
        return out

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, D) to images (N, C, H, W), roughly in [0, 1]."""
        shapes = self._shapes()
        sizes = [c // 2 * h * w for c, h, w in shapes[:-1]] + [math.prod(shapes[-1])]
        parts = list(torch.split(z, sizes, 1))
        c, hh, ww = shapes[-1]
        h = parts[-1].reshape(-1, c, hh, ww)
        for k in range(len(self.scales) - 1, -1, -1):
            if k < len(self.scales) - 1:
                c, hh, ww = shapes[k]
                h = torch.cat([parts[k].reshape(-1, c // 2, hh, ww), h], 1)
            for step in reversed(self.scales[k]):
                for layer in reversed(step):
                    h = layer.inverse(h)
            h = unsqueeze(h)
        return self.logit.inverse(h)

    def freeze_inverses(self) -> None:
        for m in self.modules():
            if isinstance(m, InvConv1x1):
                m.freeze_inverse()

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.inverse(temperature * torch.randn(n, self.dim, generator=generator))
