"""Sampling settings and the sampler: temperature, top-k, top-p, min-p, repetition penalty, seeded RNG."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np


@dataclass
class SamplingSettings:
    temperature: float = 0.2  # 0 means greedy
    top_k: int = 0  # keep the k most likely tokens; 0 keeps all
    top_p: float = 0.9  # keep the smallest set whose probability reaches p; 1 keeps all
    min_p: float = 0.0  # drop tokens less likely than min_p times the best one; 0 keeps all
    repetition_penalty: float = 1.1  # >1 discourages tokens already in the context (CTRL paper)
    max_new_tokens: int = 512  # reply length limit
    seed: int | None = None  # the same seed, prompt and settings give the same reply
    stop: list[str] = field(default_factory=list)  # the reply ends before any of these strings

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> SamplingSettings:
        """Known keys only; a value of the wrong type (a hand-edited chat history or model.json) keeps the default."""
        out = {}
        for f in fields(cls):
            if f.name in (d or {}):
                try:
                    out[f.name] = _coerce(f.name, d[f.name])
                except (TypeError, ValueError, OverflowError):  # OverflowError: int(Infinity)
                    pass
        return cls(**out)

    def with_(self, **changes) -> SamplingSettings:
        return replace(self, **changes)

    def validate(self) -> SamplingSettings:
        if self.temperature < 0:
            raise ValueError("temperature must be 0 or more")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if not 0 <= self.min_p < 1:
            raise ValueError("min_p must be in [0, 1)")
        if self.top_k < 0 or self.max_new_tokens < 1:
            raise ValueError("top_k must be >= 0 and max_new_tokens >= 1")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be positive")
        return self


class Sampler:
    """Picks the next token from a logits row. Owns its RNG so a seed reproduces a whole reply."""

    def __init__(self, settings: SamplingSettings) -> None:
        self.s = settings.validate()
        self.rng = np.random.default_rng(settings.seed)

    def penalize(self, logits: np.ndarray, context: np.ndarray) -> np.ndarray:
        """Repetition penalty as in CTRL / transformers: divide positive logits, multiply negative ones."""
        p = self.s.repetition_penalty
        if p == 1.0 or context.size == 0:
            return logits
        ids = np.unique(context)
        ids = ids[(ids >= 0) & (ids < logits.shape[-1])]
        vals = logits[ids]
        logits = np.array(logits, dtype=np.float32)
        logits[ids] = np.where(vals > 0, vals / p, vals * p)
        return logits

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The filtered distribution (zeros where a filter removed a token); temperature > 0."""
        s = self.s
        x = np.asarray(logits, dtype=np.float32) / np.float32(s.temperature)
        if s.top_k and s.top_k < x.size:
            kth = np.partition(x, -s.top_k)[-s.top_k]
            x = np.where(x >= kth, x, -np.inf)
        probs = np.exp(x - x.max(), dtype=np.float32)  # the best token is 1 before normalising
        if s.min_p > 0:
            probs[probs < s.min_p] = 0.0
        if s.top_p < 1.0:
            total = float(probs.sum(dtype=np.float64))
            order = _descending(probs, s.top_p * total)
            cum = np.cumsum(probs[order], dtype=np.float64)
            cut = int(np.searchsorted(cum, s.top_p * total)) + 1  # smallest prefix reaching top_p
            kept = np.zeros_like(probs)
            kept[order[:cut]] = probs[order[:cut]]
            probs = kept
        return probs / probs.sum(dtype=np.float64)

    def __call__(self, logits: np.ndarray, context: np.ndarray | None = None) -> int:
        logits = np.asarray(logits, dtype=np.float32).reshape(-1)
        if context is not None:
            logits = self.penalize(logits, np.asarray(context))
        if self.s.temperature == 0:
            return int(np.argmax(logits))
        probs = self.probabilities(logits)
        nz = np.flatnonzero(probs)
        p = probs[nz]
        return int(nz[self.rng.choice(nz.size, p=p / p.sum())])


def _coerce(name: str, value):
    """A settings value as its field's type: '0.7' -> 0.7; raises TypeError or ValueError when it is none."""
    if name == "seed":
        return None if value is None else int(value)
    if name == "stop":
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise TypeError(f"stop must be a list of strings, not {type(value).__name__}")
        return [str(v) for v in value]
    if name in ("top_k", "max_new_tokens"):
        return int(value)
    return float(value)


def _descending(probs: np.ndarray, mass: float) -> np.ndarray:
    """Indices by falling probability, at least enough of them to hold `mass` (sorting only a short head:
    tokens under 1e-6 of the best one hold at most vocab * 1e-6 of the mass, checked, not assumed)."""
    head = np.flatnonzero(probs >= 1e-6)
    if float(probs[head].sum(dtype=np.float64)) >= mass:
        return head[np.argsort(-probs[head], kind="stable")]
    return np.argsort(-probs, kind="stable")
