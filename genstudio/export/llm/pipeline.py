"""`genstudio export llm`: GGUF -> PyTorch Llama -> ONNX (fp32, int4) + tokenizer + checks + model.json, as a job."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genstudio.export.llm import checks
from genstudio.export.llm.gguf_load import open_gguf, state_dict
from genstudio.export.llm.model import Llama
from genstudio.export.llm.onnx_export import OPSET, export_onnx, io_names, quantize_int4
from genstudio.export.llm.tokenizer_build import special_tokens, write_tokenizer
from genstudio.runtime.jobs import Progress
from genstudio.runtime.manifest import Manifest, ModelFile

DEFAULT_NAME = "smollm2-135m-instruct"
CHECK_MESSAGES = [{"role": "system", "content": "You are a concise assistant."},
                  {"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
# SmolLM2's model card suggests temperature 0.2 and top-p 0.9 for chat.
GENERATION_DEFAULTS = {"temperature": 0.2, "top_k": 0, "top_p": 0.9, "min_p": 0.0, "repetition_penalty": 1.1,
                       "max_new_tokens": 512, "context_window": 2048}


@dataclass
class LLMExportConfig:
    gguf: Path  # the (validated) GGUF file to convert
    out_dir: Path  # the model folder to write (replaced at the end, never left half-built)
    name: str = ""  # model name; derived from the file name when empty
    keep_fp32: bool = True  # keep model_fp32.onnx beside the int4 graph (selectable for checks)
    block_size: int = 32  # int4 quantization block
    repack_q4: bool = True  # carry the GGUF's Q4_0/Q4_1 layers and Q8_0 embedding over (else re-quantize all)
    head_bits: int = 8  # output head bits when ONNX Runtime's quantizer makes it (4 costs SmolLM2 ~9% perplexity)
    kv_steps: int = 16  # greedy steps compared between KV-cache decoding and full recomputation
    agreement_steps: int = 32  # greedy steps compared between int4 and fp32
    command: str = ""  # recorded in model.json


def name_from_path(path: Path) -> str:
    stem = re.sub(r"[._-](q\d(_[a-z0-9]+)*|f16|f32|bf16)$", "", Path(path).stem, flags=re.I)
    return re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._") or "llm"


def export_llm(cfg: LLMExportConfig) -> Generator[Progress, None, Manifest]:
    total = 7
    t0 = time.perf_counter()
    out = Path(cfg.out_dir)
    work = out.parent / f".building-{out.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield Progress(0, total, "validating and reading the GGUF")
        g = open_gguf(cfg.gguf)
        c = g.config
        yield Progress(1, total, f"dequantizing {c.n_layer} layers")
        model = Llama(c).load_numpy(state_dict(g)).eval()
        files = write_tokenizer(g.vocab, work)
        special = special_tokens(g.vocab)
        from genstudio.engines.llm.tokenizer import ChatTokenizer

        tok = ChatTokenizer.from_files(work / files["tokenizer"], work / files["chat_template"], special=special)
        prompt = tok.encode_chat(CHECK_MESSAGES)
        yield Progress(2, total, "exporting ONNX (fp32)")
        fp32 = export_onnx(model, work / "model_fp32.onnx")
        yield Progress(3, total, "checking PyTorch against ONNX Runtime")
        metrics = {"parity_fp32": checks.torch_vs_onnx(model, fp32, prompt)}
        del model
        yield Progress(4, total, "checking KV-cache decoding against recomputation")
        metrics["kv_cache_fp32"] = checks.kv_cache_vs_full(fp32, prompt, cfg.kv_steps)
        yield Progress(5, total, "quantizing to int4 (MatMulNBits)")
        int4 = work / "model_int4.onnx"
        int4_info = quantize_int4(fp32, int4, gguf_model=g, block_size=cfg.block_size, repack=cfg.repack_q4,
                                  head_bits=cfg.head_bits)
        metrics["kv_cache_int4"] = checks.kv_cache_vs_full(int4, prompt, cfg.kv_steps, strict=False)
        yield Progress(6, total, "comparing int4 with fp32")
        metrics["int4_vs_fp32"] = checks.int4_agreement(fp32, int4, prompt, cfg.agreement_steps)
        if not metrics["parity_fp32"]["ok"] or not metrics["kv_cache_fp32"]["ok"]:
            raise RuntimeError(f"parity checks failed: {metrics}")
        model_files = [ModelFile("model_int4.onnx", "decoder"), ModelFile(files["tokenizer"], "tokenizer"),
                       ModelFile(files["chat_template"], "chat_template")]
        if cfg.keep_fp32:
            model_files.insert(1, ModelFile("model_fp32.onnx", "decoder_fp32"))
        else:
            fp32.unlink()
        inputs, outputs = io_names(c.n_layer)
        name = cfg.name or name_from_path(cfg.gguf)
        meta = g.summary.metadata
        manifest = Manifest(
            family="llm", name=name, version="1",
            title=str(meta.get("general.name") if name != DEFAULT_NAME else "SmolLM2 135M Instruct"),
            description=f"{c.n_layer}-layer Llama ({c.n_embd} hidden, {c.n_head} heads, {c.n_kv_head} KV heads) "
                        "converted from GGUF; int4 layer weights (MatMulNBits), 8-bit tied embedding and output head, "
                        "fused attention (GroupQueryAttention) and RMSNorm.",
            files=model_files,
            io={"decoder": {"inputs": inputs, "outputs": outputs, "layout": "optimum/onnxruntime-genai"}},
            defaults=dict(GENERATION_DEFAULTS, context_window=min(GENERATION_DEFAULTS["context_window"],
                                                                  c.max_seq_len)),
            license=str(meta.get("general.license", "")),
            data_source=f"{Path(cfg.gguf).name} ({g.summary.size_bytes} bytes; tensor types {g.quant_types})",
            build={"command": cfg.command, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                   "seconds": round(time.perf_counter() - t0, 1), "torch": torch.__version__, "opset": OPSET,
                   "int4": int4_info},
            metrics=metrics,
            extra={"config": c.to_dict(), "context_length": c.max_seq_len, "special_tokens": special,
                   "kv_cache": {"layers": c.n_layer, "kv_heads": c.n_kv_head, "head_dim": c.head_dim,
                                "shared_buffer": True},
                   "variants": {"int4": "decoder", **({"fp32": "decoder_fp32"} if cfg.keep_fp32 else {})},
                   "check_prompt": CHECK_MESSAGES},
        )
        manifest.save(work)
        yield Progress(7, total, "done")
        old = out.parent / f".old-{out.name}"
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        work.rename(out)
        shutil.rmtree(old, ignore_errors=True)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def random_tokens(n: int, vocab: int, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(0, vocab, n).tolist()
