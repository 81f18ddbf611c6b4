"""The exporter's measured checks: PyTorch vs ONNX Runtime logits, KV cache vs recomputation, int4 vs fp32."""

from __future__ import annotations

import numpy as np
import torch

from genstudio.engines.llm.decoder import KVDecoder


def _loaded(path, threads: int = 0):
    """A CPU session on a graph this exporter just wrote (the studio's safety checks run when it loads it)."""
    import onnxruntime as ort

    from genstudio.runtime.sessions import LoadedSession, SessionConfig, session_options

    opts = session_options(SessionConfig(provider="cpu", threads=threads), "CPUExecutionProvider")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return LoadedSession(sess, path, "CPUExecutionProvider", sess.get_providers(), None)


def torch_vs_onnx(model, onnx_path, ids: list[int]) -> dict:
    """Max |difference| of fp32 logits on the same prompt, relative to the logits' range."""
    with torch.no_grad():
        t = torch.tensor([ids])
        ref = model(t, torch.ones_like(t), torch.arange(len(ids))[None], *model.empty_past())[0][0].numpy()
    dec = KVDecoder(_loaded(onnx_path), max_length=len(ids) + 1)
    got = dec.score(ids)
    diff = float(np.abs(got - ref).max())
    return {"prompt_tokens": len(ids), "max_abs_diff": diff, "logit_range": float(np.abs(ref).max()),
            "argmax_agree": float((got.argmax(-1) == ref.argmax(-1)).mean()), "ok": diff < 1e-3 * max(
                1.0, float(np.abs(ref).max()))}


def greedy(dec: KVDecoder, ids: list[int], n: int) -> tuple[list[int], list[np.ndarray]]:
    dec.reset()
    logits = dec.forward(ids)
    out, rows = [], []
    for _ in range(n):
        rows.append(logits)
        tok = int(np.argmax(logits))
        out.append(tok)
        logits = dec.forward([tok])
    return out, rows


def kv_cache_vs_full(onnx_path, ids: list[int], n: int = 16, *, shared_buffer: bool = True,
                     strict: bool = True) -> dict:
    """Greedy decoding with the cache (the engine's own decoder) against recomputing the whole sequence.

    strict=False for int4 graphs: MatMulNBits at accuracy level 4 quantizes activations to int8 per call, so a
    one-token step and a many-token recomputation round differently; there the check allows 10% of the logit range.
    """
    loaded = _loaded(onnx_path)
    dec = KVDecoder(loaded, shared_buffer=shared_buffer, max_length=len(ids) + n + 1, grow_step=64)
    toks, rows = greedy(dec, ids, n)
    full = dec.score(ids + toks)  # (S + n, vocab) from an empty cache
    ref_rows = full[len(ids) - 1:len(ids) - 1 + n]
    diff = float(np.abs(np.stack(rows) - ref_rows).max())
    same = bool((ref_rows.argmax(-1) == np.asarray(toks)).all())
    scale = max(1.0, float(np.abs(ref_rows).max()))
    ok = (same and diff < 1e-3 * scale) if strict else diff < 0.1 * scale
    return {"steps": n, "shared_buffer": shared_buffer, "max_abs_diff": diff, "greedy_tokens_equal": same,
            "tolerance": "1e-3 of the logit range, same greedy tokens" if strict else "10% of the logit range",
            "ok": bool(ok)}


def int4_agreement(fp32_path, int4_path, ids: list[int], n: int = 32) -> dict:
    """Greedy tokens of int4 vs fp32: identical prefix length, and top-1 agreement teacher-forced on fp32's text."""
    d32 = KVDecoder(_loaded(fp32_path), shared_buffer=True, max_length=len(ids) + n + 1, grow_step=64)
    d4 = KVDecoder(_loaded(int4_path), shared_buffer=True, max_length=len(ids) + n + 1, grow_step=64)
    t32, _ = greedy(d32, ids, n)
    t4, _ = greedy(d4, ids, n)
    prefix = next((i for i, (a, b) in enumerate(zip(t32, t4, strict=False)) if a != b), n)
    forced = d4.score(ids + t32)[len(ids) - 1:len(ids) - 1 + n].argmax(-1)
    return {"steps": n, "identical_prefix": prefix, "greedy_agreement": float(np.mean(np.asarray(t4) == t32)),
            "teacher_forced_top1_agreement": float(np.mean(forced == np.asarray(t32)))}
