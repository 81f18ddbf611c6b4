"""The text encoder: token and position embeddings, a few pre-norm transformer blocks, a final LayerNorm.

    enc = TextEncoder(TextConfig(vocab_size=146, max_length=40, dim=128))
    hidden = enc(input_ids)                      # int64 (B, T) -> float (B, T, dim)

Attention is bidirectional. With `mask_padding`, padding (id 0) is masked out of attention and comes out
as exact zero vectors, which is how the UNet tells words from padding with no second graph input; the
first position always counts, so an all-padding prompt (the unconditional input) still gives one
well-defined state. Without it (the first models), padding is a token like any other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from genstudio.export.diffusion.tokenizer import PAD_ID

MASKED = -1e4  # the attention bias of an ignored key: exp(-1e4) is 0 in float32


@dataclass
class TextConfig:
    vocab_size: int = 146  # [PAD], [UNK] and the dataset's words (set from the tokenizer)
    max_length: int = 40  # every prompt is padded to this many tokens
    dim: int = 128  # hidden size; the UNet's cross-attention reads vectors of this size
    layers: int = 2  # transformer blocks
    heads: int = 4  # attention heads (dim / heads per head)
    mlp_ratio: int = 4  # feed-forward width / dim
    mask_padding: bool = False  # attend to words only; padding positions output zero vectors

    def to_dict(self) -> dict:
        return asdict(self)


def key_bias(keep: torch.Tensor) -> torch.Tensor:
    """(B, M) float, 1 keep / 0 ignore -> the additive attention bias (B, 1, 1, M)."""
    return ((1.0 - keep) * MASKED)[:, None, None, :]


def pooled_text(context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean of the word vectors of (B, T, dim) text states whose padding is zero vectors (mask_padding),
    and the (B, T) float mask of the positions it averaged: what the UNet's pooled path reads."""
    keep = (context.abs().amax(dim=2) > 0).float()  # (B, T): the words (and position 0)
    pooled = (context * keep[:, :, None]).sum(1) / keep.sum(1, keepdim=True).clamp(min=1.0)  # (B, dim)
    return pooled, keep


class Attention(nn.Module):
    """Multi-head attention of x (B, N, dim) over context (B, M, context_dim); self-attention without context."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(context_dim or dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        """bias: None, or an additive (B, 1, 1, M) float mask over the keys (0 keep, -1e4 ignore)."""
        b, n, d = x.shape
        h = self.heads
        ctx = x if context is None else context
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)  # (B, h, N, d/h)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)  # 2 x (B, h, M, d/h)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, h, N, d/h)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.attn = Attention(cfg.dim, cfg.heads)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.mlp_ratio * cfg.dim), nn.GELU(),
                                 nn.Linear(cfg.mlp_ratio * cfg.dim, cfg.dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), bias=bias)
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.positions = nn.Parameter(torch.randn(cfg.max_length, cfg.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.dim)
        nn.init.normal_(self.tokens.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.tokens(input_ids) + self.positions[: input_ids.shape[1]]  # (B, T, dim)
        if not self.cfg.mask_padding:
            for block in self.blocks:
                x = block(x)
            return self.norm(x)
        keep = input_ids != PAD_ID
        keep = torch.cat([torch.ones_like(keep[:, :1]), keep[:, 1:]], dim=1).float()  # (B, T); position 0 counts
        bias = key_bias(keep)
        for block in self.blocks:
            x = block(x, bias)
        return self.norm(x) * keep[:, :, None]  # padding -> exact zeros

