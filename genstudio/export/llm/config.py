"""LlamaConfig: the shape of a Llama decoder, read from GGUF metadata (never hard-coded)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from genstudio.export.llm.gguf_check import GGUFError, GGUFSummary, require_float, require_int


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int = 49152  # tokens in the vocabulary
    n_layer: int = 30  # transformer blocks
    n_embd: int = 576  # hidden size
    n_head: int = 9  # query heads
    n_kv_head: int = 3  # key/value heads (grouped-query attention)
    ffn_hidden: int = 1536  # SwiGLU inner size
    max_seq_len: int = 8192  # context window
    rope_theta: float = 100000.0  # RoPE base frequency
    norm_eps: float = 1e-5  # RMSNorm epsilon
    tied_embeddings: bool = True  # the output head reuses the token embedding

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_gguf(cls, summary: GGUFSummary) -> LlamaConfig:
        meta = summary.metadata
        arch = meta.get("general.architecture")
        if arch != "llama":
            raise GGUFError(f"general.architecture is {arch!r}; only 'llama' is supported")
        n_embd = require_int(meta, "llama.embedding_length", 1, 1 << 16)
        n_head = require_int(meta, "llama.attention.head_count", 1, 1024)
        n_kv = require_int(meta, "llama.attention.head_count_kv", 1, 1024) if "llama.attention.head_count_kv" \
            in meta else n_head
        if n_embd % n_head or n_head % n_kv or (n_embd // n_head) % 2:
            raise GGUFError(f"hidden {n_embd}, {n_head} heads and {n_kv} KV heads do not divide evenly")
        rot = meta.get("llama.rope.dimension_count", n_embd // n_head)
        if rot != n_embd // n_head:
            raise GGUFError(f"partial rotary ({rot} of {n_embd // n_head} dims) is not supported")
        tokens = meta.get("tokenizer.ggml.tokens")
        if not (isinstance(tokens, tuple) and tokens[0] == "array"):
            raise GGUFError("tokenizer.ggml.tokens is missing")
        vocab = require_int(meta, "llama.vocab_size", 1, 1 << 22) if "llama.vocab_size" in meta else tokens[2]
        if vocab != tokens[2]:
            raise GGUFError(f"llama.vocab_size {vocab} differs from the {tokens[2]} tokens listed")
        cfg = cls(
            vocab_size=vocab,
            n_layer=require_int(meta, "llama.block_count", 1, 1024),
            n_embd=n_embd,
            n_head=n_head,
            n_kv_head=n_kv,
            ffn_hidden=require_int(meta, "llama.feed_forward_length", 1, 1 << 20),
            max_seq_len=require_int(meta, "llama.context_length", 1, 1 << 22),
            rope_theta=require_float(meta, "llama.rope.freq_base", 10000.0),
            norm_eps=require_float(meta, "llama.attention.layer_norm_rms_epsilon", 1e-5),
            tied_embeddings="output.weight" not in summary.tensors,
        )
        cfg.check_tensors(summary)
        return cfg

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Tensor name -> shape in GGUF order (ne0 first)."""
        d, kv = self.n_embd, self.n_kv_head * self.head_dim
        shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (d, self.vocab_size), "output_norm.weight": (d,)}
        if not self.tied_embeddings:
            shapes["output.weight"] = (d, self.vocab_size)
        for i in range(self.n_layer):
            b = f"blk.{i}."
            shapes.update({
                b + "attn_norm.weight": (d,), b + "ffn_norm.weight": (d,),
                b + "attn_q.weight": (d, d), b + "attn_k.weight": (d, kv), b + "attn_v.weight": (d, kv),
                b + "attn_output.weight": (d, d),
                b + "ffn_gate.weight": (d, self.ffn_hidden), b + "ffn_up.weight": (d, self.ffn_hidden),
                b + "ffn_down.weight": (self.ffn_hidden, d),
            })
        return shapes

    def check_tensors(self, summary: GGUFSummary) -> None:
        expected = self.expected_shapes()
        optional = {"rope_freqs.weight"}
        for name, info in summary.tensors.items():
            if name not in expected and name not in optional:
                raise GGUFError(f"unexpected tensor {name!r} for a {self.n_layer}-layer Llama")
            if name in expected and tuple(info.shape) != expected[name]:
                raise GGUFError(f"tensor {name!r} has shape {list(info.shape)}, config says {list(expected[name])}")
        missing = sorted(set(expected) - set(summary.tensors))
        if missing:
            raise GGUFError(f"tensor {missing[0]!r} is missing ({len(missing)} missing in all)")
