"""GGUF validation refuses crafted and truncated files quickly; loading un-permutes Q/K and dequantizes right."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from llm_tiny import TINY, tiny_weights, write_tiny_gguf

from genstudio.export.llm.config import LlamaConfig
from genstudio.export.llm.gguf_check import GGUFError, check_gguf
from genstudio.export.llm.gguf_load import open_gguf, state_dict


@pytest.fixture
def tiny_gguf(tmp_path):
    return write_tiny_gguf(tmp_path / "tiny.gguf", quantized=False)


def _refuses(path, match: str):
    t = time.perf_counter()
    with pytest.raises(GGUFError, match=match):
        open_gguf(path)
    assert time.perf_counter() - t < 5  # generous for a loaded CI box; typically milliseconds


def test_valid_file_reads_config_from_metadata(tiny_gguf):
    s = check_gguf(tiny_gguf)
    cfg = LlamaConfig.from_gguf(s)
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_kv_head, cfg.ffn_hidden) == (
        TINY["n_layer"], TINY["n_embd"], TINY["n_head"], TINY["n_kv_head"], TINY["ffn"])
    assert cfg.tied_embeddings and cfg.max_seq_len == TINY["ctx"]


def test_weights_are_unpermuted_exactly(tiny_gguf):
    sd = state_dict(open_gguf(tiny_gguf))
    w = tiny_weights()
    d, kv = TINY["n_embd"], TINY["n_kv_head"] * TINY["n_embd"] // TINY["n_head"]
    qkv = sd["layers.0.attn.qkv.weight"]
    np.testing.assert_array_equal(qkv[:d], w["blk.0.attn_q.weight"])
    np.testing.assert_array_equal(qkv[d:d + kv], w["blk.0.attn_k.weight"])
    np.testing.assert_array_equal(qkv[d + kv:], w["blk.0.attn_v.weight"])
    np.testing.assert_array_equal(sd["tok_emb.weight"], w["token_embd.weight"])


def test_quantized_file_dequantizes_close(tmp_path):
    sd = state_dict(open_gguf(write_tiny_gguf(tmp_path / "q.gguf", quantized=True)))
    w = tiny_weights()
    err = np.abs(sd["layers.1.mlp.down.weight"] - w["blk.1.ffn_down.weight"]).max()
    assert err < 0.1  # Q4_1 of N(0, 0.2) weights


def test_refuses_bad_magic_and_version(tmp_path, tiny_gguf):
    data = bytearray(tiny_gguf.read_bytes())
    (tmp_path / "magic.gguf").write_bytes(b"GGUX" + data[4:])
    _refuses(tmp_path / "magic.gguf", "not a GGUF")
    (tmp_path / "v9.gguf").write_bytes(data[:4] + struct.pack("<I", 9) + data[8:])
    _refuses(tmp_path / "v9.gguf", "version 9")


def test_refuses_truncated_files(tmp_path, tiny_gguf):
    data = tiny_gguf.read_bytes()
    for cut in (10, 100, 5000, len(data) // 2, len(data) - 1):
        p = tmp_path / f"cut{cut}.gguf"
        p.write_bytes(data[:cut])
        _refuses(p, "truncated|too short|claims")


def test_refuses_huge_counts_without_allocating(tmp_path, tiny_gguf):
    data = bytearray(tiny_gguf.read_bytes())
    p = tmp_path / "kv.gguf"
    p.write_bytes(data[:16] + struct.pack("<Q", 2**62) + data[24:])
    _refuses(p, "key/values")
    p.write_bytes(data[:8] + struct.pack("<Q", 2**60) + data[16:])
    _refuses(p, "tensors")
    # a string array claiming 2**40 elements: find the token list's count and inflate it
    key = b"tokenizer.ggml.tokens"
    at = data.index(key) + len(key) + 4 + 4  # value type (ARRAY) + element type (STRING)
    bad = data[:at] + struct.pack("<Q", 2**40) + data[at + 8:]
    p.write_bytes(bad)
    _refuses(p, "strings of|truncated")


def _tensor_info_offset(data: bytes, name: str) -> int:
    """Byte offset just after the tensor name in the tensor table."""
    raw = name.encode()
    at = data.rindex(struct.pack("<Q", len(raw)) + raw)
    return at + 8 + len(raw)


def test_refuses_bad_tensor_table(tmp_path, tiny_gguf):
    data = bytearray(tiny_gguf.read_bytes())
    at = _tensor_info_offset(data, "output_norm.weight")  # then n_dims (u32), dims (u64 each), type, offset
    p = tmp_path / "t.gguf"
    p.write_bytes(data[:at] + struct.pack("<I", 5) + data[at + 4:])
    _refuses(p, "dimensions")
    n_dims = struct.unpack_from("<I", data, at)[0]
    type_at = at + 4 + 8 * n_dims
    p.write_bytes(data[:type_at] + struct.pack("<I", 999) + data[type_at + 4:])
    _refuses(p, "unknown type")
    p.write_bytes(data[:type_at + 4] + struct.pack("<Q", 2**40) + data[type_at + 12:])
    _refuses(p, "truncated|aligned")
    p.write_bytes(data[:at + 4] + struct.pack("<Q", 65) + data[at + 12:])  # shape no longer matches the config
    _refuses(p, "shape|overlap|truncated")


def test_refuses_non_llama(tmp_path):
    import gguf

    w = gguf.GGUFWriter(str(tmp_path / "gpt2.gguf"), "gpt2")
    w.add_block_count(1)
    w.add_tensor("x", np.zeros(4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    _refuses(tmp_path / "gpt2.gguf", "llama")
