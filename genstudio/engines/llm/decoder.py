"""KV-cache decoding over an ONNX decoder in the public layout, with buffers reused between steps.

Inputs input_ids, attention_mask, position_ids, past_key_values.N.key/value; outputs logits,
present.N.key/value (the optimum / onnxruntime-genai layout), so decoders exported elsewhere work too.

Two cache strategies, both through IO binding (no numpy round trip of the cache per step):
- shared: one preallocated buffer per cache tensor, bound as both past and present. ONNX Runtime's
  GroupQueryAttention writes the new keys in place (no copy per step). Used when the manifest says so.
- grow: the present outputs of one step become the next step's past inputs as OrtValues (any decoder).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_PAST_RE = re.compile(r"^past_key_values\.(\d+)\.(key|value)$")
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
           "tensor(int32)": np.int32}


@dataclass
class DecoderInfo:
    n_layers: int
    kv_heads: int
    head_dim: int
    vocab_size: int | None
    kv_dtype: type


class DecoderLayoutError(ValueError):
    """The ONNX graph does not follow the public decoder layout."""


class KVDecoder:
    """Holds the cache of one conversation. `forward(ids)` appends tokens and returns their logits rows."""

    def __init__(self, loaded, *, shared_buffer: bool = False, max_length: int = 2048, grow_step: int = 256) -> None:
        self.loaded = loaded  # genstudio.runtime.sessions.LoadedSession
        sess = loaded.session
        self.sess = sess
        ins = {i.name: i for i in sess.get_inputs()}
        outs = {o.name: o for o in sess.get_outputs()}
        if "input_ids" not in ins or "logits" not in outs:
            raise DecoderLayoutError("the decoder needs an input 'input_ids' and an output 'logits'")
        layers: dict[int, dict[str, str]] = {}
        for name in ins:
            m = _PAST_RE.match(name)
            if m:
                layers.setdefault(int(m.group(1)), {})[m.group(2)] = name
        if not layers or sorted(layers) != list(range(len(layers))) or any(len(v) != 2 for v in layers.values()):
            raise DecoderLayoutError("past_key_values.N.key/value inputs are missing or incomplete")
        self.past_names = [layers[i][kv] for i in range(len(layers)) for kv in ("key", "value")]
        self.present_names = [n.replace("past_key_values.", "present.") for n in self.past_names]
        missing = [n for n in self.present_names if n not in outs]
        if missing:
            raise DecoderLayoutError(f"output {missing[0]!r} is missing")
        shape = ins[self.past_names[0]].shape
        if len(shape) != 4 or not isinstance(shape[1], int) or not isinstance(shape[3], int):
            raise DecoderLayoutError(f"past key shape {shape} is not (batch, kv_heads, past, head_dim)")
        vshape = outs["logits"].shape
        self.info = DecoderInfo(len(layers), shape[1], shape[3], vshape[-1] if isinstance(vshape[-1], int) else None,
                                _DTYPES.get(ins[self.past_names[0]].type, np.float32))
        self.in_types = {n: _DTYPES.get(i.type, np.int64) for n, i in ins.items()}
        self.has_mask = "attention_mask" in ins
        self.has_positions = "position_ids" in ins
        self.shared = shared_buffer
        self.max_length = max_length
        self.grow_step = grow_step
        self.io = sess.io_binding()
        self.reset()

    # -- cache state ------------------------------------------------------------------------------
    def reset(self) -> None:
        self.length = 0  # tokens in the cache
        self.tokens: list[int] = []  # the ids the cache holds, for prefix reuse
        self._buffers: list[np.ndarray] = []
        self._values: list = []  # OrtValues bound as past (shared: the same as present)
        self._capacity = 0
        self._cache_bound = False  # shared mode: past/present bindings still point at the current buffers
        self._logits_value = None  # decode steps' logits buffer (1, 1, vocab)
        self._logits_buf = None

    def _empty(self, n: int) -> np.ndarray:
        i = self.info
        return np.zeros((1, i.kv_heads, n, i.head_dim), dtype=i.kv_dtype)

    def _ensure_capacity(self, needed: int) -> bool:
        """Grow the shared buffers when needed; True when they were reallocated."""
        import onnxruntime as ort

        if needed <= self._capacity:
            return False
        if needed > self.max_length:
            raise ValueError(f"{needed} tokens do not fit the {self.max_length}-token context")
        cap = min(self.max_length, -(-needed // self.grow_step) * self.grow_step)
        new = [self._empty(cap) for _ in self.past_names]
        for old, buf in zip(self._buffers, new, strict=False):
            buf[:, :, :self.length] = old[:, :, :self.length]
        self._buffers = new
        self._values = [ort.OrtValue.ortvalue_from_numpy(b) for b in new]
        self._capacity = cap
        return True

    def rollback(self, length: int) -> None:
        """Forget every token after the first `length` (to reuse a shared prefix)."""
        length = max(0, min(length, self.length))
        if length == self.length:
            return
        if length == 0:
            self.reset()
            return
        if not self.shared:
            import onnxruntime as ort

            arrays = [np.ascontiguousarray(v.numpy()[:, :, :length]) for v in self._values]
            self._buffers = arrays
            self._values = [ort.OrtValue.ortvalue_from_numpy(a) for a in arrays]
        self.length = length
        del self.tokens[length:]

    def common_prefix(self, ids: list[int]) -> int:
        n = 0
        for a, b in zip(self.tokens, ids, strict=False):
            if a != b:
                break
            n += 1
        return n

    # -- running ----------------------------------------------------------------------------------
    def forward(self, ids: list[int], *, all_logits: bool = False) -> np.ndarray:
        """Append `ids` to the cache; returns logits (S, vocab) with all_logits, else the last row (vocab,)."""
        import onnxruntime as ort

        S = len(ids)
        if S == 0:
            raise ValueError("forward needs at least one token")
        start, total = self.length, self.length + S
        if total > self.max_length:
            raise ValueError(f"{total} tokens do not fit the {self.max_length}-token context")
        io = self.io
        vocab = self.info.vocab_size
        own_logits = self.shared and vocab is not None
        if own_logits:
            # shared cache: bind it once per buffer size; logits go into a buffer we own (reused for decode)
            if self._ensure_capacity(total) or not self._cache_bound:
                io.clear_binding_inputs()
                io.clear_binding_outputs()
                for past, present, v in zip(self.past_names, self.present_names, self._values, strict=True):
                    io.bind_ortvalue_input(past, v)
                    io.bind_ortvalue_output(present, v)
                self._cache_bound = True
            if S == 1:
                if self._logits_value is None:
                    self._logits_buf = np.empty((1, 1, vocab), np.float32)
                    self._logits_value = ort.OrtValue.ortvalue_from_numpy(self._logits_buf)
                buf, value = self._logits_buf, self._logits_value
            else:
                buf = np.empty((1, S, vocab), np.float32)
                value = ort.OrtValue.ortvalue_from_numpy(buf)
            io.bind_ortvalue_output("logits", value)  # a binding of the same name replaces the old one
        else:
            io.clear_binding_inputs()
            io.clear_binding_outputs()
            io.bind_output("logits")
            if self.shared:
                self._ensure_capacity(total)
                values = self._values
            else:
                values = self._values or [ort.OrtValue.ortvalue_from_numpy(self._empty(0)) for _ in self.past_names]
            for past, present, v in zip(self.past_names, self.present_names, values, strict=True):
                io.bind_ortvalue_input(past, v)
                if self.shared:
                    io.bind_ortvalue_output(present, v)
                else:
                    io.bind_output(present)
        io.bind_cpu_input("input_ids", np.asarray([ids], dtype=self.in_types["input_ids"]))
        if self.has_mask:
            io.bind_cpu_input("attention_mask", np.ones((1, total), dtype=self.in_types["attention_mask"]))
        if self.has_positions:
            io.bind_cpu_input("position_ids",
                              np.arange(start, total, dtype=self.in_types["position_ids"]).reshape(1, S))
        with self.loaded.lock:
            self.sess.run_with_iobinding(io)
        if own_logits:
            logits = buf
        else:
            outputs = io.get_outputs()
            logits = outputs[0].numpy()  # (1, S, vocab)
            if not self.shared:
                self._values = list(outputs[1:])
        self.length = total
        self.tokens.extend(int(i) for i in ids)
        return logits[0].copy() if all_logits else logits[0, -1].copy()

    def score(self, ids: list[int]) -> np.ndarray:
        """Logits (S, vocab) for `ids` from an empty cache, without touching this decoder's cache."""
        feeds = {"input_ids": np.asarray([ids], dtype=self.in_types["input_ids"])}
        if self.has_mask:
            feeds["attention_mask"] = np.ones((1, len(ids)), dtype=self.in_types["attention_mask"])
        if self.has_positions:
            feeds["position_ids"] = np.arange(len(ids), dtype=self.in_types["position_ids"]).reshape(1, -1)
        for n in self.past_names:
            feeds[n] = self._empty(0)
        return self.loaded.run(["logits"], feeds)[0][0]

