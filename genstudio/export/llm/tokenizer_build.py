"""Builds tokenizer.json (with the `tokenizers` library) and the chat template file from a GGUF vocabulary."""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

from genstudio.export.llm.gguf_check import GGUFError
from genstudio.export.llm.gguf_load import GGUFVocab

# llama.cpp token types that are special (never produced by BPE merges): control and user-defined.
_SPECIAL_TYPES = (3, 4)
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# ChatML, used when a GGUF carries no template.
DEFAULT_CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
                         " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
                         "{{ '<|im_start|>assistant\n' }}{% endif %}")


def _pre_tokenizer(pre: str):
    """The pre-tokenizer llama.cpp's `tokenizer.ggml.pre` names (the ones that matter for byte-level BPE)."""
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in ("smollm", "starcoder", "refact", "codeshell"):
        # SmolLM (StarCoder vocabulary): digits one by one, then GPT-2's byte-level split.
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if pre in ("llama-bpe", "llama3", "smaug-bpe"):
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    if pre in ("gpt2", "default", "gpt-2"):
        return byte_level
    raise GGUFError(f"tokenizer.ggml.pre {pre!r} is not supported")


def build_tokenizer(vocab: GGUFVocab) -> Tokenizer:
    merges = []
    for i, m in enumerate(vocab.merges):
        parts = m.split(" ")
        if len(parts) != 2:
            raise GGUFError(f"merge #{i} {m!r} is not two pieces")
        merges.append((parts[0], parts[1]))
    table = {tok: i for i, tok in enumerate(vocab.tokens)}
    if len(table) != len(vocab.tokens):
        raise GGUFError("the vocabulary lists a token twice")
    unk = vocab.tokens[vocab.unk_id] if vocab.unk_id is not None else None
    tok = Tokenizer(models.BPE(vocab=table, merges=merges, unk_token=unk, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = _pre_tokenizer(vocab.pre)
    tok.decoder = decoders.ByteLevel()
    special = [AddedToken(t, special=True, normalized=False) for t, ty in zip(vocab.tokens, vocab.token_types, strict=False)
               if ty in _SPECIAL_TYPES]
    tok.add_special_tokens(special)
    return tok


def write_tokenizer(vocab: GGUFVocab, folder: Path) -> dict[str, str]:
    """tokenizer.json and chat_template.jinja; returns {role: file name}."""
    folder = Path(folder)
    build_tokenizer(vocab).save(str(folder / "tokenizer.json"))
    (folder / "chat_template.jinja").write_text(vocab.chat_template or DEFAULT_CHAT_TEMPLATE, encoding="utf-8")
    return {"tokenizer": "tokenizer.json", "chat_template": "chat_template.jinja"}


def special_tokens(vocab: GGUFVocab) -> dict[str, object]:
    """Ids and strings the engine needs: bos, eos, pad, and every end-of-turn marker."""
    def name(i):
        return vocab.tokens[i] if i is not None else None

    eos_ids = [vocab.eos_id] if vocab.eos_id is not None else []
    for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>"):
        if marker in vocab.tokens:
            i = vocab.tokens.index(marker)
            if i not in eos_ids:
                eos_ids.append(i)
    return {"bos_token": name(vocab.bos_id), "bos_token_id": vocab.bos_id, "eos_token": name(vocab.eos_id),
            "eos_token_ids": eos_ids, "pad_token_id": vocab.pad_id, "add_bos_token": vocab.add_bos}
