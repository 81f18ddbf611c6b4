"""The word-level tokenizer (HuggingFace `tokenizers`) and the captions each dataset trains on.

    tok = build_tokenizer(dataset_vocabulary("synthfaces"))     # "[PAD]" = 0, "[UNK]" = 1, then the words
    ids = encode(tok, ["a smiling woman", ""], max_length=40)    # int64 (2, 40); "" is all padding
    tok.save("tokenizer/tokenizer.json")                        # Tokenizer.from_file reads it back

Lowercase, split on whitespace, punctuation dropped: the same words `synthfaces_captions.tokenize` reads.
Every prompt is padded with id 0 to a fixed length, CLIP-style; the empty prompt (all padding) is the
unconditional input of classifier-free guidance. The engine pads by itself, so the saved tokenizer holds
no padding or truncation settings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

PAD, UNK = "[PAD]", "[UNK]"  # ids 0 and 1
PAD_ID, UNK_ID = 0, 1


def build_tokenizer(words: Sequence[str]) -> Tokenizer:
    """A WordLevel tokenizer over `words` (sorted, deduplicated) after [PAD] and [UNK]."""
    vocab = {PAD: PAD_ID, UNK: UNK_ID}
    for w in sorted(set(words)):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation(behavior="removed")])
    return tok


def encode(tok: Tokenizer, prompts: Sequence[str], max_length: int) -> np.ndarray:
    """int64 (N, max_length): ids padded with 0 at the end, cut at max_length."""
    out = np.zeros((len(prompts), max_length), np.int64)
    for i, prompt in enumerate(prompts):  # one by one: encode_batch starts a thread pool on a shared machine
        ids = tok.encode(prompt).ids[:max_length]
        out[i, :len(ids)] = ids
    return out


def token_count(tok: Tokenizer, prompt: str) -> int:
    return len(tok.encode(prompt).ids)


# ---- the captions of each dataset -------------------------------------------------------------
def fashion_mnist_captions() -> list[str]:
    """One caption per class, by label: "a photo of a T-shirt", ..., "a photo of an ankle boot"."""
    from genstudio.export.data import fashion_mnist

    return [fashion_mnist.caption(k) for k in range(len(fashion_mnist.CLASS_NAMES))]


def dataset_vocabulary(dataset: str) -> list[str]:
    """Every word a training caption of `dataset` can hold."""
    from genstudio.export.data.synthfaces_captions import tokenize, vocabulary

    if dataset == "synthfaces":
        return vocabulary()
    if dataset == "fashion-mnist":
        return sorted({w for c in fashion_mnist_captions() for w in tokenize(c)})
    raise ValueError(f"unknown dataset {dataset!r}")


def longest_caption(dataset: str, tok: Tokenizer, n: int = 20_000, seed: int = 0) -> int:
    """Tokens in the longest caption of `n` drawn (SynthFaces: random captions of random faces)."""
    if dataset == "fashion-mnist":
        return max(token_count(tok, c) for c in fashion_mnist_captions())
    from genstudio.export.data import synthfaces

    rng = np.random.default_rng(seed)
    return max(token_count(tok, synthfaces.caption(synthfaces.attributes(int(s)), rng))
               for s in rng.integers(0, 2**62, n))
