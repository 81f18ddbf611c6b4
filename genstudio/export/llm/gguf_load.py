"""Reads a validated GGUF Llama with the `gguf` library: fp32 weights (dequantized, Q/K rows un-permuted), vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from genstudio.export.llm.config import LlamaConfig
from genstudio.export.llm.gguf_check import GGUFError, GGUFSummary, check_gguf


@dataclass
class GGUFVocab:
    tokens: list[str]  # byte-level BPE pieces ("Ġthe"), index = token id
    token_types: list[int]  # llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte
    merges: list[str]  # "Ġ t"
    model: str  # tokenizer.ggml.model: "gpt2" for byte-level BPE
    pre: str  # tokenizer.ggml.pre: the pre-tokenizer flavour ("smollm", "llama-bpe", ...)
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    unk_id: int | None
    add_bos: bool
    chat_template: str | None


@dataclass
class GGUFModel:
    path: Path
    summary: GGUFSummary
    config: LlamaConfig
    vocab: GGUFVocab
    reader: gguf.GGUFReader
    quant_types: dict[str, int]  # type name -> tensor count

    def tensor(self, name: str) -> np.ndarray:
        """One tensor as fp32 in PyTorch layout (out, in)."""
        t = self._tensors[name]
        w = gguf.quants.dequantize(t.data, t.tensor_type)
        return np.array(w, dtype=np.float32).reshape(tuple(reversed([int(d) for d in t.shape])))  # a writable copy

    @property
    def _tensors(self) -> dict:
        if not hasattr(self, "_by_name"):
            self._by_name = {t.name: t for t in self.reader.tensors}
        return self._by_name


def open_gguf(path: Path) -> GGUFModel:
    """Validate first (refuses crafted files quickly), then read with gguf.GGUFReader."""
    path = Path(path)
    summary = check_gguf(path)
    config = LlamaConfig.from_gguf(summary)
    try:
        reader = gguf.GGUFReader(str(path), "r")
    except Exception as e:  # the library's own checks, after ours
        raise GGUFError(f"gguf could not read the file: {e}") from None
    vocab = _read_vocab(reader, config)
    counts: dict[str, int] = {}
    for t in reader.tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    return GGUFModel(path, summary, config, vocab, reader, counts)


def _strings(reader: gguf.GGUFReader, key: str) -> list[str]:
    f = reader.fields.get(key)
    if f is None:
        return []
    return [bytes(f.parts[i]).decode("utf-8", errors="replace") for i in f.data]


def _scalar(reader: gguf.GGUFReader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


def _read_vocab(reader: gguf.GGUFReader, config: LlamaConfig) -> GGUFVocab:
    tokens = _strings(reader, "tokenizer.ggml.tokens")
    tt = reader.fields.get("tokenizer.ggml.token_type")
    types = [int(tt.parts[i][0]) for i in tt.data] if tt is not None else [1] * len(tokens)
    if len(tokens) != config.vocab_size or len(types) != len(tokens):
        raise GGUFError(f"vocabulary has {len(tokens)} tokens and {len(types)} types; config says {config.vocab_size}")
    model = _scalar(reader, "tokenizer.ggml.model", "")
    if model != "gpt2":
        raise GGUFError(f"tokenizer.ggml.model is {model!r}; only byte-level BPE ('gpt2') is supported")

    def tid(key):
        v = _scalar(reader, key)
        if v is None:
            return None
        v = int(v)
        if not 0 <= v < len(tokens):
            raise GGUFError(f"{key} {v} is outside the vocabulary")
        return v

    template = _scalar(reader, "tokenizer.chat_template")
    return GGUFVocab(
        tokens=tokens, token_types=types, merges=_strings(reader, "tokenizer.ggml.merges"), model=model,
        pre=str(_scalar(reader, "tokenizer.ggml.pre", "default")),
        bos_id=tid("tokenizer.ggml.bos_token_id"), eos_id=tid("tokenizer.ggml.eos_token_id"),
        pad_id=tid("tokenizer.ggml.padding_token_id"), unk_id=tid("tokenizer.ggml.unknown_token_id"),
        add_bos=bool(_scalar(reader, "tokenizer.ggml.add_bos_token", False)),
        chat_template=str(template) if template is not None else None,
    )


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's Q/K row permutation (convert_hf_to_gguf: reshape(h, 2, d/2h) swap) -> HF rotate-half order."""
    out, *rest = w.shape
    return w.reshape(n_head, out // n_head // 2, 2, *rest).swapaxes(1, 2).reshape(w.shape)


def state_dict(m: GGUFModel) -> dict[str, np.ndarray]:
    """fp32 weights under genstudio.export.llm.model.Llama's parameter names."""
    cfg = m.config
    sd: dict[str, np.ndarray] = {"tok_emb.weight": m.tensor("token_embd.weight"),
                                 "norm.weight": m.tensor("output_norm.weight")}
    if not cfg.tied_embeddings:
        sd["lm_head.weight"] = m.tensor("output.weight")
    for i in range(cfg.n_layer):
        b, p = f"blk.{i}.", f"layers.{i}."
        q = unpermute(m.tensor(b + "attn_q.weight"), cfg.n_head)
        k = unpermute(m.tensor(b + "attn_k.weight"), cfg.n_kv_head)
        v = m.tensor(b + "attn_v.weight")
        sd[p + "attn_norm.weight"] = m.tensor(b + "attn_norm.weight")
        sd[p + "attn.qkv.weight"] = np.concatenate([q, k, v], axis=0)  # (d + 2 * kv_dim, d)
        sd[p + "attn.proj.weight"] = m.tensor(b + "attn_output.weight")
        sd[p + "mlp_norm.weight"] = m.tensor(b + "ffn_norm.weight")
        sd[p + "mlp.gate_up.weight"] = np.concatenate(
            [m.tensor(b + "ffn_gate.weight"), m.tensor(b + "ffn_up.weight")], axis=0)  # (2 * ffn, d)
        sd[p + "mlp.down.weight"] = m.tensor(b + "ffn_down.weight")
    return sd
