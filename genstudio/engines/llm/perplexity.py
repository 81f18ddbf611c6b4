"""Perplexity of a decoder on a text: non-overlapping windows, each scored from an empty cache (a job)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from genstudio.runtime.jobs import Progress


@dataclass
class PerplexityResult:
    perplexity: float
    tokens_scored: int
    windows: int
    window: int
    mean_nll: float


def log_softmax_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of each target under each logits row (float64)."""
    x = logits.astype(np.float64)
    m = x.max(-1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(-1))
    return lse - x[np.arange(len(targets)), targets]


def perplexity(score: Callable[[list[int]], np.ndarray], ids: list[int], *, window: int = 512
               ) -> Generator[Progress, None, PerplexityResult]:
    """`score(ids) -> logits (len(ids), vocab)` from an empty context; the same windows for every backend."""
    if len(ids) < 2:
        raise ValueError("the text needs at least two tokens")
    if window < 2:
        raise ValueError(f"the window must hold at least two tokens, not {window}")
    starts = list(range(0, len(ids) - 1, window))
    nll_sum, n = 0.0, 0
    for w, s in enumerate(starts):
        chunk = ids[s:s + window]
        if len(chunk) < 2:
            break
        logits = score(chunk)
        nll = log_softmax_nll(logits[:-1], np.asarray(chunk[1:]))
        nll_sum += float(nll.sum())
        n += len(chunk) - 1
        yield Progress(w + 1, len(starts), f"ppl {np.exp(nll_sum / n):.3f}")
    mean = nll_sum / n
    return PerplexityResult(float(np.exp(mean)), n, len(starts), window, mean)
