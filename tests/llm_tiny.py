"""Test helpers: a tiny random Llama GGUF (2 layers, byte-level vocabulary) written with gguf's writer, exported once."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from session_dirs import session_dir

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s", "r e", "Ġ w", "l l", "Ġ i", "Ġ o", "Ġ h",
          "a n", "o r", "e n", "Ġ c", "Ġ b", "Ġ f"]
CHAT_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                 "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                 "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                 "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                 "{% endif %}")
TINY = dict(n_layer=2, n_embd=64, n_head=4, n_kv_head=2, ffn=128, ctx=256)


def byte_alphabet() -> list[str]:
    """The stand-in character of byte 0, 1, ..., 255 (GPT-2's byte-level alphabet)."""
    from genstudio.engines.llm.tokenizer import byte_decoder

    return [c for c, _b in sorted(byte_decoder().items(), key=lambda kv: kv[1])]


def tiny_vocab() -> tuple[list[str], list[int]]:
    tokens = SPECIALS + byte_alphabet() + ["".join(m.split(" ")) for m in MERGES]
    types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))
    return tokens, types


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of Q/K rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tiny_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """HF-layout (out, in) weights of the tiny model, GGUF names, before permutation."""
    rng = np.random.default_rng(seed)
    t = TINY
    d, hd = t["n_embd"], t["n_embd"] // t["n_head"]
    vocab = len(tiny_vocab()[0])
    w = {"token_embd.weight": rng.normal(0, 0.5, (vocab, d)), "output_norm.weight": 1 + rng.normal(0, 0.1, d)}
    for i in range(t["n_layer"]):
        b = f"blk.{i}."
        w.update({
            b + "attn_norm.weight": 1 + rng.normal(0, 0.1, d), b + "ffn_norm.weight": 1 + rng.normal(0, 0.1, d),
            b + "attn_q.weight": rng.normal(0, 0.2, (d, d)), b + "attn_k.weight": rng.normal(0, 0.2, (t["n_kv_head"] * hd, d)),
            b + "attn_v.weight": rng.normal(0, 0.2, (t["n_kv_head"] * hd, d)),
            b + "attn_output.weight": rng.normal(0, 0.2, (d, d)),
            b + "ffn_gate.weight": rng.normal(0, 0.2, (t["ffn"], d)), b + "ffn_up.weight": rng.normal(0, 0.2, (t["ffn"], d)),
            b + "ffn_down.weight": rng.normal(0, 0.2, (d, t["ffn"])),
        })
    return {k: v.astype(np.float32) for k, v in w.items()}


def write_tiny_gguf(path: Path, *, quantized: bool = True, seed: int = 0) -> Path:
    import gguf

    t = TINY
    tokens, types = tiny_vocab()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny llama")
    w.add_block_count(t["n_layer"])
    w.add_context_length(t["ctx"])
    w.add_embedding_length(t["n_embd"])
    w.add_feed_forward_length(t["ffn"])
    w.add_head_count(t["n_head"])
    w.add_head_count_kv(t["n_kv_head"])
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(t["n_embd"] // t["n_head"])
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(MERGES)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)
    for name, arr in tiny_weights(seed).items():
        if name.endswith("attn_q.weight"):
            arr = permute(arr, t["n_head"])
        elif name.endswith("attn_k.weight"):
            arr = permute(arr, t["n_kv_head"])
        if quantized and arr.ndim == 2:
            qt = gguf.GGMLQuantizationType.Q8_0 if name == "token_embd.weight" else gguf.GGMLQuantizationType.Q4_1
            w.add_tensor(name, gguf.quants.quantize(arr, qt), raw_dtype=qt)
        else:
            w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)


@functools.cache
def exported_tiny() -> Path:
    """The tiny GGUF exported once per test session (fp32 + int4 + tokenizer + model.json)."""
    from genstudio.export.llm.pipeline import LLMExportConfig, export_llm
    from genstudio.runtime.jobs import drive

    root = session_dir("genstudio-tiny-llm-")
    gguf_path = write_tiny_gguf(root / "tiny-llama.Q4_1.gguf")
    drive(export_llm(LLMExportConfig(gguf=gguf_path, out_dir=root / "models" / "tiny-llama", name="tiny-llama",
                                     kv_steps=8, agreement_steps=8)))
    return root / "models" / "tiny-llama"


def tiny_engine(**kw):
    from genstudio.engines.llm.chat import ChatEngine
    from genstudio.runtime.registry import check_folder
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    entry = check_folder(exported_tiny())
    return ChatEngine.from_entry(entry, SessionPool(SessionConfig(provider="cpu", threads=1)), **kw)
