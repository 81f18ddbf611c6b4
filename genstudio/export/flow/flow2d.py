"""A normalizing flow on 2-D points with exact likelihood: RealNVP, Glow-style or neural-spline stacks of layers.

    model = Flow2D(FlowConfig(arch="glow"))
    model.standardize.fit(train)                    # fixed data scaling, part of the flow
    nll = -model.log_prob(x).mean()                 # x (N, 2) -> (N,)
    x, layers = model.sample_layers(z)              # z (N, 2) -> x (N, 2), layers (L+1, N, 2)

log p(x) = log N(f(x); 0, I) + sum_l log|det J_l|, with f the layers applied data side to base side.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from genstudio.export.flow.layers2d import ActNorm, AffineCoupling, LUMix2d, Standardize
from genstudio.export.flow.spline2d import SplineCoupling

ARCHS = ("realnvp", "glow", "spline")
DEFAULT_BLOCKS = {"realnvp": 12, "glow": 8, "spline": 4}  # 13, 25 and 5 layers with the fixed scaling


@dataclass
class FlowConfig:
    arch: str = "realnvp"  # "realnvp": affine couplings; "glow": actnorm + 2x2 LU mix + coupling; "spline": RQ splines
    n_blocks: int = 0  # couplings (realnvp) or actnorm/mix/coupling steps (glow); 0: DEFAULT_BLOCKS[arch]
    hidden: int = 32  # width of each coupling's conditioner MLP (64 roughly triples the grid time)
    depth: int = 2  # hidden layers in each conditioner MLP
    scale_clamp: float = 4.0  # soft bound on each affine coupling's log-scale; keeps early training stable
    bins: int = 8  # spline couplings: rational-quadratic bins
    bound: float = 4.0  # spline couplings act on [-bound, bound] of the standardised data; identity outside
    init_seed: int = 0  # seeds the Glow mixing matrices' random rotations

    def to_dict(self) -> dict:
        return asdict(self)


class Flow2D(nn.Module):
    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        if config.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, not {config.arch!r}")
        self.config = config
        if config.n_blocks <= 0:
            config.n_blocks = DEFAULT_BLOCKS[config.arch]
        gen = torch.Generator().manual_seed(config.init_seed)
        layers: list[nn.Module] = [Standardize()]  # data side first
        for i in range(config.n_blocks):
            if config.arch == "spline":
                layers.append(SplineCoupling(i % 2, config.hidden, config.depth, config.bins, config.bound))
                continue
            coupling = AffineCoupling(i % 2, config.hidden, config.depth, config.scale_clamp)
            if config.arch == "glow":
                layers += [ActNorm(), LUMix2d(gen), coupling]
            else:
                layers.append(coupling)
        self.layers = nn.ModuleList(layers)

    @property
    def standardize(self) -> Standardize:
        return self.layers[0]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data to base: z (N, 2) and the summed log|det| (N,)."""
        logdet = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, logdet = self(x)  # (N, 2), (N,)
        log_base = -0.5 * (z**2).sum(1) - math.log(2 * math.pi)
        return log_base + logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def sample_layers(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Base to data, keeping every intermediate: x (N, 2), layers (L+1, N, 2) from z to x."""
        states = [z]
        for layer in reversed(self.layers):
            z = layer.inverse(z)
            states.append(z)
        return z, torch.stack(states)  # (L+1, N, 2)

    def layer_names(self) -> list[str]:
        """What each step of the base-to-data trajectory applies, in that order."""
        return [type(layer).__name__ for layer in reversed(self.layers)]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.inverse(torch.randn(n, 2, generator=generator))
