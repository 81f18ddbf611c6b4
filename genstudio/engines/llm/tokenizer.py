"""The chat tokenizer: tokenizer.json, the sandboxed Jinja chat template, special tokens, UTF-8-safe streaming."""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
          " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
          "{% endif %}")


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: printable stand-in character -> byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=False)}


@dataclass
class SpecialTokens:
    eos_ids: list[int] = field(default_factory=list)  # any of these ends a reply
    bos_token: str | None = None
    add_bos: bool = False
    special_ids: set[int] = field(default_factory=set)  # never shown in text


class ChatTokenizer:
    """Encode, decode, render the chat template; `stream()` turns token ids into text deltas."""

    def __init__(self, tokenizer: Tokenizer, template: str | None = None, special: SpecialTokens | None = None) -> None:
        self.tok = tokenizer
        self.special = special or SpecialTokens()
        if not self.special.special_ids:
            self.special.special_ids = {i for t, i in self._added().items()}
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)  # as transformers renders
        env.globals["raise_exception"] = _raise
        self.template_source = template or CHATML
        self._template = env.from_string(self.template_source)
        self._bytes = self._byte_table()

    @classmethod
    def from_files(cls, tokenizer_json: Path, template: Path | None = None, *,
                   special: dict | None = None) -> ChatTokenizer:
        try:
            tok = Tokenizer.from_file(str(tokenizer_json))
        except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception: "EOF while parsing", no file
            raise ValueError(f"cannot read the tokenizer {tokenizer_json}: {e}") from None
        text = Path(template).read_text(encoding="utf-8") if template and Path(template).is_file() else None
        sp = SpecialTokens()
        if special:
            sp.eos_ids = [int(i) for i in special.get("eos_token_ids", []) if i is not None]
            sp.bos_token = special.get("bos_token")
            sp.add_bos = bool(special.get("add_bos_token", False))
        else:
            for name in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "</s>"):
                i = tok.token_to_id(name)
                if i is not None:
                    sp.eos_ids.append(i)
        return cls(tok, text, sp)

    # -- basics ---------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def _added(self) -> dict[str, int]:
        return {t.content: i for i, t in self.tok.get_added_tokens_decoder().items() if t.special}

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids, *, skip_special: bool = True) -> str:
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def render(self, messages: list[dict], *, add_generation_prompt: bool = True) -> str:
        try:
            return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         bos_token=self.special.bos_token or "", eos_token="")
        except TemplateError as e:
            raise ValueError(f"the chat template failed: {e}") from None

    def encode_chat(self, messages: list[dict], *, add_generation_prompt: bool = True) -> list[int]:
        ids = self.encode(self.render(messages, add_generation_prompt=add_generation_prompt))
        bos = self.tok.token_to_id(self.special.bos_token) if self.special.bos_token else None
        if self.special.add_bos and bos is not None and (not ids or ids[0] != bos):
            ids = [bos, *ids]
        return ids

    # -- streaming ------------------------------------------------------------------------------
    def _byte_table(self) -> list[bytes] | None:
        """Each token's bytes when the tokenizer is byte-level BPE (GPT-2 alphabet); else None."""
        spec = json.loads(self.tok.to_str())
        if (spec.get("decoder") or {}).get("type") != "ByteLevel":
            return None
        table = byte_decoder()
        n = self.vocab_size
        out: list[bytes] = [b""] * n
        for piece, i in self.tok.get_vocab(with_added_tokens=False).items():
            if 0 <= i < n:
                try:
                    out[i] = bytes(table[c] for c in piece)
                except KeyError:
                    out[i] = piece.encode("utf-8")
        for piece, i in self.tok.get_vocab(with_added_tokens=True).items():
            if 0 <= i < n and not out[i]:
                out[i] = b"" if i in self.special.special_ids else piece.encode("utf-8")
        return out

    def stream(self) -> TextStream:
        return TextStream(self)


class TextStream:
    """Feeds token ids in, hands complete UTF-8 text out: a character split across tokens waits for its end."""

    def __init__(self, tokenizer: ChatTokenizer) -> None:
        self.t = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._ids: list[int] = []
        self._emitted = 0  # characters of the fallback decode already handed out

    def push(self, token_id: int) -> str:
        table = self.t._bytes
        if table is not None:
            if token_id in self.t.special.special_ids or not 0 <= token_id < len(table):
                return ""
            return self._utf8.decode(table[token_id])
        self._ids.append(int(token_id))
        text = self.t.decode(self._ids)
        if text.endswith("\ufffd"):
            return ""  # a character is still incomplete
        delta = text[self._emitted:]
        self._emitted = len(text)
        return delta

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True) if self.t._bytes is not None else ""


def _raise(message: str):
    raise TemplateError(message)


def as_ids(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64).reshape(1, -1)
