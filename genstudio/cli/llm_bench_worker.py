"""One backend of `genstudio bench llm`, run in its own process: speed, perplexity and peak memory as JSON.

    python -m genstudio.cli.llm_bench_worker onnx|torch|llamacpp '{"threads": 2, ...}'

Every backend gets the same prompt token ids, decodes greedily for the same number of tokens (end-of-sequence
ignored), and scores the same token windows for perplexity. Peak memory is this process's high-water mark
right after the chat runs (before perplexity scoring, which holds a window's full logits).
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _ppl(score, ids: list[int], window: int) -> float:
    from genstudio.engines.llm.perplexity import log_softmax_nll

    total, n = 0.0, 0
    for s in range(0, len(ids) - 1, window):
        chunk = ids[s:s + window]
        if len(chunk) < 2:
            break
        nll = log_softmax_nll(score(chunk)[:-1], np.asarray(chunk[1:]))
        total += float(nll.sum())
        n += len(chunk) - 1
    return float(np.exp(total / n))


def _timed(prefill, step, prompt: list[int], n_new: int) -> dict:
    """prefill(ids) -> last logits; step(tok) -> logits. Greedy, exactly n_new tokens."""
    t0 = time.perf_counter()
    logits = prefill(prompt)
    t1 = time.perf_counter()
    toks = []
    for _ in range(n_new):
        tok = int(np.argmax(logits))
        toks.append(tok)
        logits = step(tok)
    t2 = time.perf_counter()
    return {"prefill_tokens_per_s": len(prompt) / (t1 - t0), "decode_tokens_per_s": n_new / (t2 - t1),
            "tokens": toks}


def run(backend: str, a: dict) -> dict:
    prompt, n_new, runs = a["prompt_ids"], a["new_tokens"], a.get("runs", 3)
    threads = a["threads"]
    if backend == "onnx":
        from genstudio.engines.llm.chat import ChatEngine
        from genstudio.runtime.registry import check_folder
        from genstudio.runtime.sessions import SessionConfig, SessionPool

        eng = ChatEngine.from_entry(check_folder(a["model_folder"]), SessionPool(SessionConfig(provider="cpu",
                                                                                               threads=threads)),
                                    variant=a.get("variant", "int4"), context_window=len(prompt) + n_new + 8)
        dec = eng.decoder

        def prefill(ids):
            dec.reset()
            return dec.forward(ids)

        def step(tok):
            return dec.forward([tok])
        score = dec.score
    elif backend == "torch":
        import torch

        from genstudio.export.llm.gguf_load import open_gguf, state_dict
        from genstudio.export.llm.model import Llama

        torch.set_num_threads(threads)
        g = open_gguf(a["gguf"])
        model = Llama(g.config).load_numpy(state_dict(g)).eval()
        del g
        state = {}

        @torch.no_grad()
        def run_ids(ids, past):
            t = torch.tensor([ids])
            start = past[0].shape[2]
            out = model(t, torch.ones(1, start + len(ids), dtype=torch.long),
                        torch.arange(start, start + len(ids))[None], *past)
            return out[0][0].numpy(), list(out[1:])

        def prefill(ids):
            logits, state["past"] = run_ids(ids, model.empty_past())
            return logits[-1]

        def step(tok):
            logits, state["past"] = run_ids([tok], state["past"])
            return logits[-1]

        def score(ids):
            return run_ids(ids, model.empty_past())[0]
    elif backend == "llamacpp":
        from llama_cpp import Llama as LlamaCpp

        llm = LlamaCpp(model_path=a["gguf"], n_ctx=len(prompt) + n_new + 8, n_threads=threads,
                       n_threads_batch=threads, n_batch=512, verbose=False)

        n_vocab = llm.n_vocab()

        def last_logits():  # llama-cpp-python keeps no scores without logits_all: read the context's row
            return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).copy()

        def prefill(ids):
            llm.reset()
            llm.eval(ids)
            return last_logits()

        def step(tok):
            llm.eval([tok])
            return last_logits()
        score = None
    else:
        raise SystemExit(f"unknown backend {backend!r}")

    _timed(prefill, step, prompt[:16], 8)  # warm-up
    results = [_timed(prefill, step, prompt, n_new) for _ in range(runs)]
    out = {"backend": backend, "threads": threads,
           "prefill_tokens_per_s": float(np.median([r["prefill_tokens_per_s"] for r in results])),
           "decode_tokens_per_s": float(np.median([r["decode_tokens_per_s"] for r in results])),
           "peak_rss_mib": _peak_mib(), "tokens": results[-1]["tokens"]}
    if backend == "llamacpp":
        del llm
        llm_all = LlamaCpp(model_path=a["gguf"], n_ctx=a["window"], n_threads=threads, n_threads_batch=threads,
                           n_batch=a["window"], logits_all=True, verbose=False)

        def score(ids):
            llm_all.reset()
            llm_all.eval(ids)
            return np.asarray(llm_all.scores[:len(ids)])
    out["perplexity"] = _ppl(score, a["text_ids"], a["window"])
    return out


def main(argv: list[str]) -> int:
    backend, args = argv[0], json.loads(argv[1])
    print(json.dumps(run(backend, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
