"""SynthFaces attributes: the fixed vocabularies, sampling with dependencies, integer encoding, the held-out split.

Every attribute is a small categorical. `sample_attributes` draws one uniform number per attribute in a
fixed order and inverts the conditional distribution of that attribute given the ones before it, so an
override changes only the attributes that depend on it; everything else keeps its value.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping
from itertools import accumulate

import numpy as np

# The vocabularies, in sampling order (an attribute may depend on any attribute above it).
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "gender": ("woman", "man", "person"),  # presentation, used by captions and by a few marginals
    "face_shape": ("round", "oval", "square", "heart"),
    "skin_tone": ("pale", "light", "tan", "olive", "brown", "dark"),
    "hair_style": ("bald", "short", "long", "bob", "ponytail", "curly", "mohawk", "bun"),
    "hair_colour": ("black", "brown", "blonde", "red", "grey", "white", "blue", "pink"),
    "eye_colour": ("brown", "blue", "green", "grey"),
    "eyebrows": ("thin", "thick", "arched"),  # brow shape; the expression sets the brow pose
    "expression": ("smiling", "neutral", "sad", "surprised", "angry"),
    "glasses": ("none", "round", "square", "sunglasses"),
    "facial_hair": ("none", "moustache", "beard", "stubble"),
    "headwear": ("none", "cap", "beanie", "headband", "hat"),
    "earrings": ("none", "studs", "hoops"),
    "background": ("solid", "stripes", "dots", "gradient"),
    "background_colour": ("red", "orange", "yellow", "green", "teal", "blue", "purple", "grey"),
}

# P(value | gender) for the attributes that depend on gender; rows follow ATTRIBUTES order.
_BY_GENDER: dict[str, dict[str, tuple[float, ...]]] = {
    "face_shape": {"woman": (3, 3, 1, 3), "man": (3, 2, 4, 1), "person": (1, 1, 1, 1)},
    #               bald short long  bob  pony curly mohawk bun
    "hair_style": {
        "woman": (0.02, 0.10, 0.30, 0.16, 0.14, 0.13, 0.03, 0.12),
        "man": (0.15, 0.38, 0.08, 0.03, 0.05, 0.15, 0.11, 0.05),
        "person": (0.08, 0.20, 0.16, 0.12, 0.10, 0.14, 0.10, 0.10),
    },
    "eyebrows": {"woman": (0.45, 0.15, 0.40), "man": (0.15, 0.60, 0.25), "person": (0.34, 0.33, 0.33)},
    #                none  moustache beard stubble
    "facial_hair": {"woman": (1.0, 0.0, 0.0, 0.0), "man": (0.40, 0.17, 0.25, 0.18), "person": (0.82, 0.06, 0.06, 0.06)},
    "earrings": {"woman": (0.35, 0.30, 0.35), "man": (0.80, 0.15, 0.05), "person": (0.60, 0.20, 0.20)},
}

_FIXED: dict[str, tuple[float, ...]] = {
    "gender": (0.42, 0.42, 0.16),
    "skin_tone": (1, 1, 1, 1, 1, 1),
    "hair_colour": (0.21, 0.23, 0.16, 0.11, 0.09, 0.06, 0.07, 0.07),  # dyed blue and pink never when bald
    "expression": (0.30, 0.22, 0.16, 0.16, 0.16),
    "glasses": (0.52, 0.16, 0.16, 0.16),
    "background": (0.40, 0.20, 0.20, 0.20),
}


def _weights(name: str, a: Mapping[str, str]) -> tuple[float, ...]:
    """The unnormalised distribution of `name` given the attributes already drawn in `a`."""
    if name == "hair_colour" and a["hair_style"] == "bald":  # a bald head shows its colour in brows and beard
        return (0.30, 0.28, 0.12, 0.10, 0.12, 0.08, 0.0, 0.0)
    if name in _FIXED:
        return _FIXED[name]
    if name in _BY_GENDER:
        return _BY_GENDER[name][a["gender"]]
    if name == "eye_colour":  # brown eyes dominate on darker skin
        return (0.70, 0.10, 0.10, 0.10) if a["skin_tone"] in ("brown", "dark") else (0.35, 0.27, 0.20, 0.18)
    if name == "headwear":  # none cap beanie headband hat; nothing squashes a mohawk or sits on a bun
        return {"mohawk": (0.85, 0, 0, 0.15, 0), "bun": (0.70, 0.04, 0.02, 0.20, 0.04)}.get(
            a["hair_style"], (0.55, 0.12, 0.11, 0.10, 0.12)
        )
    if name == "background_colour":  # a backdrop the colour of the hair would hide the hair
        return tuple(0.25 if colour == a["hair_colour"] else 1.0 for colour in ATTRIBUTES[name])
    raise KeyError(name)


def check_attributes(values: Mapping[str, str]) -> None:
    """Raise ValueError for an unknown attribute name or a value outside its vocabulary."""
    for name, value in values.items():
        if name not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {name!r}; known: {', '.join(ATTRIBUTES)}")
        if value not in ATTRIBUTES[name]:
            raise ValueError(f"{name}={value!r} is not one of {ATTRIBUTES[name]}")


def sample_attributes(rng: np.random.Generator, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """One face's attributes. Always draws len(ATTRIBUTES) uniforms, so overrides never shift the stream."""
    overrides = dict(overrides or {})
    check_attributes(overrides)
    u = rng.random(len(ATTRIBUTES))
    out: dict[str, str] = {}
    for i, (name, vocab) in enumerate(ATTRIBUTES.items()):
        if name in overrides:
            out[name] = overrides[name]
            continue
        w = _weights(name, out)
        cum = list(accumulate(w))
        target = u[i] * cum[-1]
        k = next((j for j, c in enumerate(cum) if c > target), len(cum) - 1)
        while w[k] == 0:  # only reachable through rounding at the top end
            k -= 1
        out[name] = vocab[k]
    return out


def encode(attributes: Mapping[str, str]) -> dict[str, int]:
    """Attribute values to their indices in ATTRIBUTES (one classifier head per attribute)."""
    return {name: ATTRIBUTES[name].index(attributes[name]) for name in ATTRIBUTES}


def decode(indices: Mapping[str, int]) -> dict[str, str]:
    """The inverse of `encode`."""
    return {name: ATTRIBUTES[name][int(indices[name])] for name in ATTRIBUTES}


# ---- held-out split ---------------------------------------------------------------------------------
# 16 of the 8 * 5 * 4 = 160 (hair_colour, expression, glasses) combinations (10%) never appear in the
# train split. All 16 have visible glasses, so a prompt can name all three ("a sad woman with red hair
# wearing sunglasses"); captions never say "no glasses", so a glasses-free combination would leak in
# through train captions that leave glasses out. The rule: walk the combinations with glasses in sha256
# order and keep one while its hair colour has fewer than 2 picks, its expression fewer than 4 and its
# glasses fewer than 6, until 16 are kept. Balanced, so every hair colour, expression and kind of glasses
# is held out in some combination and trained on in others. sha256, not hash(): str hashes change
# between processes.
HELD_OUT_KEYS = ("hair_colour", "expression", "glasses")
HELD_OUT_FRACTION = 0.10  # of all 160 combinations


def _combo_rank(combo: tuple[str, ...]) -> bytes:
    return hashlib.sha256(("synthfaces-heldout|" + "|".join(combo)).encode()).digest()


def _held_out_combos() -> frozenset[tuple[str, ...]]:
    vocabs = [ATTRIBUTES[k] for k in HELD_OUT_KEYS]
    want = round(HELD_OUT_FRACTION * math.prod(len(v) for v in vocabs))
    vocabs[2] = tuple(v for v in vocabs[2] if v != "none")
    caps = [-(-want // len(v)) for v in vocabs]  # ceil: 2 per hair colour, 4 per expression, 6 per glasses
    counts: list[dict[str, int]] = [{} for _ in HELD_OUT_KEYS]
    kept: list[tuple[str, ...]] = []
    for combo in sorted(itertools.product(*vocabs), key=_combo_rank):
        if len(kept) < want and all(c.get(v, 0) < cap for c, v, cap in zip(counts, combo, caps, strict=True)):
            kept.append(combo)
            for c, v in zip(counts, combo, strict=True):
                c[v] = c.get(v, 0) + 1
    return frozenset(kept)


HELD_OUT: frozenset[tuple[str, ...]] = _held_out_combos()


def is_held_out(attributes: Mapping[str, str]) -> bool:
    """True when the face's (hair_colour, expression, glasses) combination belongs to the held-out split."""
    return tuple(attributes[k] for k in HELD_OUT_KEYS) in HELD_OUT
