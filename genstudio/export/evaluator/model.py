"""EvalNet: a small CNN with a 128-d feature layer and one classification head per label column.

    net = EvalNet(EvalNetConfig(channels=1, size=28, heads={"class": 10}))
    features, logits = net(x)      # x (N, C, H, W) in [0, 1] -> (N, 128), {head: (N, classes)}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn


@dataclass
class EvalNetConfig:
    channels: int = 1  # input channels: 1 (Fashion-MNIST) or 3 (SynthFaces)
    size: int = 28  # input side in pixels (28 or 64)
    widths: tuple[int, ...] = (24, 48, 96)  # channels of each conv stage; each stage halves the side
    stem: int = 0  # channels of a full-resolution conv (BN, ReLU) before the first stage (0: none)
    feature_dim: int = 128  # the penultimate layer: what FID is computed on
    heads: dict[str, int] = field(default_factory=lambda: {"class": 10})  # head name -> classes
    dropout: float = 0.2  # before the heads, while training

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


class EvalNet(nn.Module):
    def __init__(self, cfg: EvalNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c, side = cfg.channels, cfg.size
        if cfg.stem:  # fine detail (glasses frames, a mouth's curve) seen before the first stride
            layers += [nn.Conv2d(c, cfg.stem, 3, padding=1), nn.BatchNorm2d(cfg.stem), nn.ReLU()]
            c = cfg.stem
        for w in cfg.widths:  # conv stride 2 (halves the side), BN, ReLU, conv, BN, ReLU
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
                       nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            c, side = w, (side + 1) // 2
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(2)  # (N, c, 2, 2): keeps a little layout
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(c * 4, cfg.feature_dim), nn.ReLU())
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.feature_dim, sum(cfg.heads.values()))  # every head in one matmul
        # (start, end) of each head's logits in the head's output; names may be keywords ("class")
        ends = [sum(list(cfg.heads.values())[:i + 1]) for i in range(len(cfg.heads))]
        self.slices = {name: (end - k, end) for (name, k), end in zip(cfg.heads.items(), ends, strict=True)}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        f = self.features(self.pool(self.body(x * 2.0 - 1.0)))  # (N, feature_dim)
        logits = self.head(self.drop(f))  # (N, sum of classes)
        return f, {name: logits[:, a:b] for name, (a, b) in self.slices.items()}


class EvalGraph(nn.Module):
    """What the ONNX graph computes: x -> (features, logits_<head> for each head, in config order)."""

    def __init__(self, net: EvalNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f, logits = self.net(x)
        return (f, *[logits[k] for k in self.net.cfg.heads])
