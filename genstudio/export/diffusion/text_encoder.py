"""The text encoder: token and position embeddings, a few pre-norm transformer blocks, a final LayerNorm.

    enc = TextEncoder(TextConfig(vocab_size=146, max_length=40, dim=128))
    hidden = enc(input_ids)                      # int64 (B, T) -> float (B, T, dim)

Attention is bidirectional and unmasked: padding (id 0) is a token like any other, so an all-padding
prompt (the unconditional input) still gives well-defined hidden states, and the graph has one input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TextConfig:
    vocab_size: int = 146  # [PAD], [UNK] and the dataset's words (set from the tokenizer)
    max_length: int = 40  # every prompt is padded to this many tokens
    dim: int = 128  # hidden size; the UNet's cross-attention reads vectors of this size
    layers: int = 2  # transformer blocks
    heads: int = 4  # attention heads (dim / heads per head)
    mlp_ratio: int = 4  # feed-forward width / dim

    def to_dict(self) -> dict:
        return asdict(self)


class Attention(nn.Module):
    """Multi-head attention of x (B, N, dim) over context (B, M, context_dim); self-attention without context."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(context_dim or dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        ctx = x if context is None else context
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)  # (B, h, N, d/h)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)  # 2 x (B, h, M, d/h)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, d/h)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.attn = Attention(cfg.dim, cfg.heads)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.mlp_ratio * cfg.dim), nn.GELU(),
                                 nn.Linear(cfg.mlp_ratio * cfg.dim, cfg.dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
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
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
