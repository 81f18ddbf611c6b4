"""A class-conditional gated PixelCNN with a 256-way softmax per pixel (van den Oord et al. 2016).

    model = PixelCNN(PixelCnnConfig())              # 1x28x28 8-bit greyscale, 10 classes + a null class
    logits = model(x, cls)                          # x (N, 1, H, 28) in [0, 1], cls (N,) int64 -> (N, 256, H, 28)
    loss = model.loss(u8, cls)                      # u8: pixel values 0..255 as int64 (N, 1, 28, 28); nats/dim

Two stacks avoid the blind spot of the original PixelCNN (https://arxiv.org/abs/1606.05328, section 2.2):
the vertical stack sees whole rows above (a (k//2 + 1) x k kernel over zero-padded rows, its first layer
masked so the current row is excluded), the horizontal stack sees the pixels to the left in the current row
(a 1 x (k//2 + 1) kernel, its first layer masked so the current pixel is excluded), and the vertical stack
feeds the horizontal one through a 1x1 convolution. A pixel's logits therefore see a full rectangle of
`receptive_rows` rows above it, widening by k//2 columns each side per layer, plus the pixels to its left:
no blind spot. Every layer is gated, tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h), with h a learned
embedding of the class (index 10 = no class: the unconditional model, trained on a share of examples whose
label is dropped); both stacks carry residual connections after the first layer.

The logits of row r depend only on rows <= r, so a crop of the first r + 1 rows (or a window of the last
`receptive_rows` rows above r) gives the same logits for row r: what the engine's sampler exploits.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

LEVELS = 256  # output classes per pixel: every 8-bit grey level


@dataclass
class PixelCnnConfig:
    channels: int = 1  # image channels (greyscale)
    size: int = 28  # image width (height may vary: the graph is causal over rows)
    dim: int = 32  # channels of both stacks
    layers: int = 12  # gated layers, the first one masked ("A"), the rest "B"
    first_kernel: int = 7  # kernel size k of the first (masked) layer
    kernel: int = 3  # kernel size k of the other layers
    head: int = 64  # channels of the 1x1 output head before the logits
    n_classes: int = 10  # conditioning classes; the extra index n_classes means "no class"
    levels: int = LEVELS  # grey levels the softmax is over (256: the 8-bit pixels themselves)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def null_class(self) -> int:
        return self.n_classes

    @property
    def receptive_rows(self) -> int:
        """Rows above the current one that can reach its logits (the first layer's k//2, then k//2 each)."""
        return self.first_kernel // 2 + (self.layers - 1) * (self.kernel // 2)


class MaskedConv2d(nn.Conv2d):
    """A convolution whose weight is multiplied by a fixed 0/1 mask (a buffer, exported as a constant)."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], mask: torch.Tensor) -> None:
        super().__init__(cin, cout, kernel)
        self.register_buffer("mask", mask.reshape(1, 1, *kernel).expand_as(self.weight).clone())
        self.baked = False  # True once the mask is multiplied into the weight (for export)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight if self.baked else self.weight * self.mask, self.bias)

    @torch.no_grad()
    def bake(self) -> None:
        """Zero the masked weights in place, so the exported graph holds one plain convolution."""
        self.weight.mul_(self.mask)
        self.baked = True


def stack_masks(k: int, first: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of the vertical (k//2 + 1, k) and horizontal (1, k//2 + 1) kernels. The kernels' last row / last
    column sit on the current row / column; the first layer masks them out (it must not see the pixel it
    predicts), later layers keep them (their inputs at the current position are already causal)."""
    v = torch.ones(k // 2 + 1, k)
    h = torch.ones(1, k // 2 + 1)
    if first:
        v[-1] = 0.0
        h[0, -1] = 0.0
    return v, h


class GatedLayer(nn.Module):
    """One gated layer with a vertical and a horizontal stack; (v, h) -> (v', h')."""

    def __init__(self, cin: int, dim: int, k: int, first: bool, n_embed: int) -> None:
        super().__init__()
        self.k, self.first = k, first
        v_mask, h_mask = stack_masks(k, first)
        self.v_conv = MaskedConv2d(cin, 2 * dim, (k // 2 + 1, k), v_mask)  # rows above (and this row if not first)
        self.h_conv = MaskedConv2d(cin, 2 * dim, (1, k // 2 + 1), h_mask)  # pixels to the left (and this one)
        self.v_to_h = nn.Conv2d(2 * dim, 2 * dim, 1)
        self.h_out = nn.Conv2d(dim, dim, 1)
        self.embed = nn.Embedding(n_embed, 4 * dim)  # class -> biases of both stacks' gates
        nn.init.zeros_(self.embed.weight)

    @staticmethod
    def gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, v: torch.Tensor, h: torch.Tensor, cls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.k // 2
        bias_v, bias_h = self.embed(cls)[:, :, None, None].chunk(2, dim=1)  # (N, 2*dim, 1, 1) each
        v_pre = self.v_conv(F.pad(v, (p, p, p, 0)))  # (N, 2*dim, H, W): rows r-p..r
        h_pre = self.h_conv(F.pad(h, (p, 0, 0, 0))) + self.v_to_h(v_pre)  # columns c-p..c of row r
        v_new = self.gate(v_pre + bias_v)  # (N, dim, H, W)
        h_new = self.h_out(self.gate(h_pre + bias_h))
        if not self.first:  # residual connections (the first layer's input is the image itself)
            v_new = v_new + v
            h_new = h_new + h
        return v_new, h_new


class PixelCNN(nn.Module):
    def __init__(self, cfg: PixelCnnConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(
            [GatedLayer(cfg.channels, cfg.dim, cfg.first_kernel, True, cfg.n_classes + 1)]
            + [GatedLayer(cfg.dim, cfg.dim, cfg.kernel, False, cfg.n_classes + 1) for _ in range(cfg.layers - 1)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(cfg.dim, cfg.head, 1), nn.ReLU(),
                                  nn.Conv2d(cfg.head, cfg.levels, 1))

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """x (N, C, H, W) pixel values / 255 in [0, 1], cls (N,) int64 in 0..n_classes -> (N, levels, H, W)."""
        v = h = x * 2.0 - 1.0
        for layer in self.layers:
            v, h = layer(v, h, cls)
        return self.head(h)  # (N, levels, H, W)

    def nll(self, u8: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """-log p(image | class) per image in nats: (N,). u8: int64 pixel values (N, C, H, W)."""
        logits = self(u8.float() / 255.0, cls)
        ce = F.cross_entropy(logits, u8[:, 0], reduction="none")  # (N, H, W) for C = 1
        return ce.flatten(1).sum(1)

    def loss(self, u8: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per dimension (nats) over the batch."""
        return self.nll(u8, cls).mean() / u8[0].numel()


class LogitsGraph(nn.Module):
    """What logits.onnx computes: x (N, 1, H, 28) in [0, 1] and class (N,) int64 -> logits (N, 256, H, 28).
    Holds a copy of the model with the masks multiplied into the weights (the same function)."""

    def __init__(self, model: PixelCNN) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        for m in self.model.modules():
            if isinstance(m, MaskedConv2d):
                m.bake()

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        return self.model(x, cls)


def parameter_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
