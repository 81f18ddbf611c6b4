"""The chat engine: a model folder in, a generator of text deltas out (each yield is a cancel point).

    engine = ChatEngine.from_entry(registry.get("smollm2-135m-instruct"), pool)
    gen = engine.generate([{"role": "user", "content": "Hi"}], SamplingSettings(seed=0))
    for delta in gen: print(delta.delta, end="")          # the return value is a ChatResult
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from genstudio.engines.llm.context import fit_context
from genstudio.engines.llm.decoder import KVDecoder
from genstudio.engines.llm.sampling import Sampler, SamplingSettings
from genstudio.engines.llm.stops import StopMatcher
from genstudio.engines.llm.tokenizer import ChatTokenizer


@dataclass
class ChatDelta:
    """One streamed piece. `text` is the whole reply so far, so a consumer that drops items loses nothing."""

    step: int  # new tokens so far
    total: int  # max_new_tokens
    delta: str  # text added by this token ('' while a character or a possible stop string is incomplete)
    text: str  # the reply so far
    notice: str = ""  # e.g. "2 oldest turns were dropped to fit the context"
    message: str = ""  # a status line: "12.3 tokens/s"


@dataclass
class ChatStats:
    prompt_tokens: int = 0  # tokens in the rendered prompt
    cached_tokens: int = 0  # of those, reused from the previous turn's cache
    new_tokens: int = 0
    time_to_first_token_s: float = 0.0
    prefill_tokens_per_s: float = 0.0
    decode_tokens_per_s: float = 0.0
    context_used: int = 0  # tokens in the cache after the reply
    context_window: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChatResult:
    text: str
    finish_reason: str  # "eos", "stop", "length", "context"
    stats: ChatStats
    dropped_turns: int = 0
    notice: str = ""
    token_ids: list[int] = field(default_factory=list)


class ChatEngine:
    """Tokenizer + decoder + sampler for one model. Not thread-safe: one generation at a time."""

    def __init__(self, tokenizer: ChatTokenizer, loaded, *, shared_buffer: bool = False, context_window: int = 2048,
                 defaults: SamplingSettings | None = None, name: str = "llm") -> None:
        self.tokenizer = tokenizer
        self.name = name
        self.context_window = context_window
        self.decoder = KVDecoder(loaded, shared_buffer=shared_buffer, max_length=context_window)
        self.defaults = defaults or SamplingSettings()

    @classmethod
    def from_entry(cls, entry, pool, *, variant: str = "int4", context_window: int | None = None) -> ChatEngine:
        """A registry ModelEntry of family "llm" -> engine. variant: "int4" (role decoder) or "fp32"."""
        m = entry.require_ready().manifest
        folder = Path(entry.folder)
        role = "decoder" if variant in ("int4", "default", "") else f"decoder_{variant}"
        extra = m.extra or {}
        tok = ChatTokenizer.from_files(folder / m.file_for("tokenizer").path,
                                       folder / m.file_for("chat_template").path
                                       if m.files_with_role("chat_template") else None,
                                       special=extra.get("special_tokens"))
        loaded = pool.get(folder / m.file_for(role).path, root=folder)
        model_ctx = int(extra.get("context_length", 2048))
        window = min(model_ctx, context_window or int(m.defaults.get("context_window", 2048)))
        shared = bool((extra.get("kv_cache") or {}).get("shared_buffer", False))
        return cls(tok, loaded, shared_buffer=shared, context_window=window,
                   defaults=SamplingSettings.from_dict(m.defaults), name=m.name)

    # -- helpers --------------------------------------------------------------------------------
    def count_tokens(self, messages: list[dict]) -> int:
        return len(self.tokenizer.encode_chat(messages))

    def prepare(self, messages: list[dict], max_new_tokens: int) -> tuple[list[int], int, str]:
        """Prompt ids that leave room for the reply; drops the oldest turns (never the system prompt)."""
        return fit_context(self.tokenizer, messages, self.context_window, max_new_tokens)

    # -- generation -----------------------------------------------------------------------------
    def generate(self, messages: list[dict], settings: SamplingSettings | None = None
                 ) -> Generator[ChatDelta, None, ChatResult]:
        s = (settings or self.defaults).validate()
        t0 = time.perf_counter()
        ids, dropped, notice = self.prepare(messages, s.max_new_tokens)
        dec = self.decoder
        keep = dec.common_prefix(ids)
        keep = min(keep, len(ids) - 1)  # at least one token must run to get logits
        dec.rollback(keep)
        stats = ChatStats(prompt_tokens=len(ids), cached_tokens=keep, context_window=self.context_window)
        sampler = Sampler(s)
        stream = self.tokenizer.stream()
        stops = StopMatcher(s.stop)
        eos = set(self.tokenizer.special.eos_ids)
        context = np.asarray(ids, dtype=np.int64)
        room = self.context_window - len(ids)
        limit = min(s.max_new_tokens, room)
        text, new_ids, reason = "", [], "length"
        if notice:
            yield ChatDelta(0, limit, "", "", notice=notice)
        logits = dec.forward(ids[keep:])
        t_first = time.perf_counter()
        stats.time_to_first_token_s = t_first - t0
        stats.prefill_tokens_per_s = (len(ids) - keep) / max(t_first - t0, 1e-9)
        t_decode, decode_runs = t_first, 0
        for step in range(1, limit + 1):
            tok = sampler(logits, context)
            if tok in eos:
                reason = "eos"
                break
            new_ids.append(tok)
            context = np.append(context, tok)
            piece, stop_hit = stops.push(stream.push(tok))
            text += piece
            if step == 1:
                t_decode = time.perf_counter()
            rate = decode_runs / max(time.perf_counter() - t_decode, 1e-9) if decode_runs else 0.0
            if stop_hit:
                reason = "stop"
                yield ChatDelta(step, limit, piece, text, message=f"{rate:.1f} tokens/s")
                break
            yield ChatDelta(step, limit, piece, text, message=f"{rate:.1f} tokens/s")  # a cancel point
            if step == limit:
                reason = "length" if limit == s.max_new_tokens else "context"
                break
            logits = dec.forward([tok])
            decode_runs += 1
        if reason != "stop":
            tail, _ = stops.push(stream.flush(), final=True)
            text += tail
        t_end = time.perf_counter()
        stats.new_tokens = len(new_ids)
        if decode_runs:
            stats.decode_tokens_per_s = decode_runs / max(t_end - t_decode, 1e-9)
        stats.context_used = dec.length
        return ChatResult(text=text, finish_reason=reason, stats=stats, dropped_turns=dropped, notice=notice,
                          token_ids=new_ids)

    def chat(self, messages: list[dict], settings: SamplingSettings | None = None) -> ChatResult:
        """Run `generate` to its end (tests, scripts)."""
        gen = self.generate(messages, settings)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value
