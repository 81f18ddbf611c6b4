"""Llama in one file, nanoGPT style: RMSNorm, RoPE, grouped-query attention, SwiGLU, tied embeddings, KV cache.

The same module runs eagerly (the reference for parity checks and the PyTorch benchmark) and exports to
ONNX. Under `fused_export(True)` attention and the residual-add + RMSNorm pairs go through autograd
functions whose ONNX symbolics are ONNX Runtime's fused kernels (GroupQueryAttention with rotary inside,
SkipSimplifiedLayerNormalization); their forward is the plain code, so tracing sees the real numbers.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from genstudio.export.llm.config import LlamaConfig

_FUSED = [False]


@contextlib.contextmanager
def fused_export(on: bool = True):
    """Emit the fused ONNX Runtime ops while exporting."""
    old, _FUSED[0] = _FUSED[0], on
    try:
        yield
    finally:
        _FUSED[0] = old


# -- plain maths ------------------------------------------------------------------------------------
def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    var = x.pow(2).mean(-1, keepdim=True)
    return x * torch.rsqrt(var + eps) * weight


def rope_cache(cfg: LlamaConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin: (max_seq_len, head_dim / 2), HF "rotate half" convention."""
    hd = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    t = torch.arange(cfg.max_seq_len, dtype=torch.float64)
    freqs = torch.outer(t, inv)  # (T, hd/2)
    return freqs.cos().float(), freqs.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, H, S, hd); cos/sin: (B, 1, S, hd/2)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attention_reference(qkv, past_k, past_v, attention_mask, position_ids, cos_cache, sin_cache,
                        n_head: int, n_kv: int):
    """qkv: (B, S, (H + 2 KV) * hd); past: (B, KV, P, hd); mask: (B, P + S) -> out (B, S, H*hd), present k, v."""
    B, S, _ = qkv.shape
    hd = qkv.shape[-1] // (n_head + 2 * n_kv)
    q, k, v = qkv.split([n_head * hd, n_kv * hd, n_kv * hd], dim=-1)
    q = q.view(B, S, n_head, hd).transpose(1, 2)  # (B, H, S, hd)
    k = k.view(B, S, n_kv, hd).transpose(1, 2)  # (B, KV, S, hd)
    v = v.view(B, S, n_kv, hd).transpose(1, 2)
    cos = cos_cache[position_ids].unsqueeze(1)  # (B, 1, S, hd/2)
    sin = sin_cache[position_ids].unsqueeze(1)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    k = torch.cat([past_k, k], dim=2)  # (B, KV, T, hd)
    v = torch.cat([past_v, v], dim=2)
    T = k.shape[2]
    # query i sits at cache slot T - S + i and sees slots up to itself that the mask keeps
    slots = torch.arange(T, device=qkv.device)
    causal = slots[None, :] <= (T - S + torch.arange(S, device=qkv.device))[:, None]  # (S, T)
    allowed = causal[None, None] & attention_mask[:, None, None, :].bool()  # (B, 1, S, T)
    rep = n_head // n_kv
    out = F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1),
                                         attn_mask=allowed)  # (B, H, S, hd)
    return out.transpose(1, 2).reshape(B, S, n_head * hd), k, v


# -- fused ONNX Runtime ops for export --------------------------------------------------------------
def _absent(g):
    """An omitted optional input ('' in ONNX)."""
    n = g.op("prim::Constant")
    n.setType(torch._C.OptionalType.ofTensor())
    return n


class _GQA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qkv, past_k, past_v, attention_mask, position_ids, cos, sin, n_head, n_kv):
        return attention_reference(qkv, past_k, past_v, attention_mask, position_ids, cos, sin, n_head, n_kv)

    @staticmethod
    def symbolic(g, qkv, past_k, past_v, attention_mask, position_ids, cos, sin, n_head, n_kv):
        one = g.op("Constant", value_t=torch.tensor([1], dtype=torch.int64))
        total = g.op("Cast", g.op("ReduceSum", attention_mask, one, keepdims_i=0), to_i=6)  # int32 (B,)
        seqlens_k = g.op("Sub", total, g.op("Constant", value_t=torch.tensor(1, dtype=torch.int32)))
        shape = g.op("Shape", attention_mask)
        total_len = g.op("Cast", g.op("Gather", shape, g.op("Constant", value_t=torch.tensor(1)), axis_i=0), to_i=6)
        out, pk, pv = g.op("com.microsoft::GroupQueryAttention", qkv, _absent(g), _absent(g),
                           past_k, past_v, seqlens_k, total_len, cos, sin, position_ids,
                           num_heads_i=n_head, kv_num_heads_i=n_kv, do_rotary_i=1, rotary_interleaved_i=0,
                           outputs=3)
        return out, pk, pv


class _SkipRMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, delta, weight, eps):
        s = x + delta
        return rms_norm(s, weight, eps), s

    @staticmethod
    def symbolic(g, x, delta, weight, eps):
        out, _mean, _inv, s = g.op("com.microsoft::SkipSimplifiedLayerNormalization", delta, x, weight,
                                   epsilon_f=eps, outputs=4)
        return out, s


def add_rms_norm(x: torch.Tensor, delta: torch.Tensor | None, weight: torch.Tensor, eps: float):
    """(rms_norm(x + delta), x + delta): the residual add fused with the next block's norm."""
    if delta is None:
        # written out: ONNX Runtime fuses it on load; the op itself is not in the ONNX domain the checker knows
        return rms_norm(x, weight, eps), x
    if _FUSED[0]:
        return _SkipRMSNorm.apply(x, delta, weight, eps)
    s = x + delta
    return rms_norm(s, weight, eps), s


# -- modules ----------------------------------------------------------------------------------------
class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv = cfg.n_head, cfg.n_kv_head
        hd = cfg.head_dim
        self.qkv = nn.Linear(cfg.n_embd, (cfg.n_head + 2 * cfg.n_kv_head) * hd, bias=False)  # Q, K, V packed
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x, past_k, past_v, attention_mask, position_ids, cos, sin):
        qkv = self.qkv(x)  # (B, S, (H + 2 KV) * hd)
        if _FUSED[0]:
            out, k, v = _GQA.apply(qkv, past_k, past_v, attention_mask, position_ids, cos, sin, self.n_head, self.n_kv)
        else:
            out, k, v = attention_reference(qkv, past_k, past_v, attention_mask, position_ids, cos, sin,
                                            self.n_head, self.n_kv)
        return self.proj(out), k, v


class SwiGLU(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.ffn = cfg.ffn_hidden
        self.gate_up = nn.Linear(cfg.n_embd, 2 * cfg.ffn_hidden, bias=False)  # gate and up packed
        self.down = nn.Linear(cfg.ffn_hidden, cfg.n_embd, bias=False)

    def forward(self, x):
        gate, up = self.gate_up(x).split(self.ffn, dim=-1)  # (B, S, ffn) each
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.eps = cfg.norm_eps
        self.attn_norm = nn.Parameter(torch.ones(cfg.n_embd))
        self.attn = Attention(cfg)
        self.mlp_norm = nn.Parameter(torch.ones(cfg.n_embd))
        self.mlp = SwiGLU(cfg)

    def forward(self, h, delta, past_k, past_v, attention_mask, position_ids, cos, sin):
        """h: the residual stream before `delta` (the previous block's output) is added."""
        n, h = add_rms_norm(h, delta, self.attn_norm, self.eps)
        a, k, v = self.attn(n, past_k, past_v, attention_mask, position_ids, cos, sin)
        n, h = add_rms_norm(h, a, self.mlp_norm, self.eps)
        return h, self.mlp(n), k, v


class Llama(nn.Module):
    """forward(input_ids, attention_mask, position_ids, *past) -> (logits, *present), the public decoder layout."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = nn.Parameter(torch.ones(cfg.n_embd))
        if not cfg.tied_embeddings:
            self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        cos, sin = rope_cache(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def load_numpy(self, sd: dict) -> Llama:
        params = dict(self.named_parameters())
        for name, p in params.items():
            key = name.replace("attn_norm", "attn_norm.weight").replace("mlp_norm", "mlp_norm.weight")
            key = "norm.weight" if name == "norm" else key
            if key not in sd:
                raise KeyError(f"weight {key!r} is missing")
            arr = torch.from_numpy(sd[key])
            if arr.shape != p.shape:
                raise ValueError(f"weight {key!r} has shape {tuple(arr.shape)}, model wants {tuple(p.shape)}")
            with torch.no_grad():
                p.copy_(arr)
        return self

    def empty_past(self, batch: int = 1) -> list[torch.Tensor]:
        c = self.cfg
        z = torch.zeros(batch, c.n_kv_head, 0, c.head_dim)
        return [z] * (2 * c.n_layer)

    def forward(self, input_ids, attention_mask, position_ids, *past):
        h = self.tok_emb(input_ids)  # (B, S, d)
        delta = None
        present = []
        for i, block in enumerate(self.layers):
            h, delta, k, v = block(h, delta, past[2 * i], past[2 * i + 1], attention_mask, position_ids,
                                   self.rope_cos, self.rope_sin)
            present += [k, v]
        n, _ = add_rms_norm(h, delta, self.norm, self.cfg.norm_eps)
        w = self.tok_emb.weight if self.cfg.tied_embeddings else self.lm_head.weight
        logits = F.linear(n, w)  # (B, S, vocab)
        return (logits, *present)
