"""SynthFaces captions: templates with synonyms and varied order over a small closed word vocabulary.

    caption(attrs, rng)  ->  "a smiling woman with long red hair wearing round glasses on a teal backdrop"

Each caption names the gender presentation (the subject) and 3 to 6 other attributes chosen at random,
visually strong ones more often. Attributes whose value is "none" are never mentioned, nor eye colour
behind sunglasses. Every phrase lives in the tables below; `vocabulary()` is read off them, so a new
synonym can never slip past the word-level text encoder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from .synthfaces_attributes import ATTRIBUTES

# "{}" marks where a colour word goes; it holds no letters, so vocabulary() skips it.
NOUNS = {"woman": ("woman", "lady"), "man": ("man", "guy"), "person": ("person", "individual")}

EXPRESSION_ADJ = {
    "smiling": ("smiling", "happy", "cheerful"),
    "neutral": ("calm", "serious", "expressionless"),
    "sad": ("sad", "unhappy", "gloomy"),
    "surprised": ("surprised", "astonished", "shocked"),
    "angry": ("angry", "furious", "grumpy"),
}
EXPRESSION_WITH = {
    "smiling": ("a big smile", "a smile", "a happy face"),
    "neutral": ("a neutral expression", "a blank expression", "a straight face"),
    "sad": ("a sad face", "a sad expression", "a downturned mouth"),
    "surprised": ("an open mouth", "a surprised look", "raised eyebrows and an open mouth"),
    "angry": ("an angry scowl", "an angry look", "furrowed brows"),
}

HAIR_COLOUR = {
    "black": ("black", "jet black"),
    "brown": ("brown", "chestnut"),
    "blonde": ("blonde", "blond", "golden"),
    "red": ("red", "ginger"),
    "grey": ("grey", "gray", "silver"),
    "white": ("white", "snow white"),
    "blue": ("blue", "bright blue"),
    "pink": ("pink", "bright pink"),
}
HAIR_STYLE = {  # with a colour ("{}"), and without one
    "short": (("short {} hair", "cropped {} hair"), ("short hair", "cropped hair")),
    "long": (("long {} hair", "long flowing {} hair"), ("long hair", "long flowing hair")),
    "bob": (("a {} bob", "{} hair in a bob"), ("a bob", "a bob haircut")),
    "ponytail": (("a {} ponytail", "{} hair in a ponytail"), ("a ponytail", "hair in a ponytail")),
    "curly": (("curly {} hair", "big curly {} hair"), ("curly hair", "big curly hair")),
    "mohawk": (("a {} mohawk", "a spiky {} mohawk"), ("a mohawk", "a spiky mohawk")),
    "bun": (("a {} bun", "{} hair in a bun"), ("a bun", "hair in a bun")),
}
BALD_ADJ = ("bald",)
BALD_WITH = ("a bald head", "a shaved head")

SKIN = {
    "pale": ("pale", "fair"),
    "light": ("light",),
    "tan": ("tan", "tanned"),
    "olive": ("olive",),
    "brown": ("brown",),
    "dark": ("dark",),
}
SKIN_NOUN = ("{} skin", "a {} complexion")
EYES = {"brown": ("brown",), "blue": ("blue",), "green": ("green",), "grey": ("grey", "gray")}
EYE_NOUN = ("{} eyes",)
EYEBROWS = {
    "thin": ("thin eyebrows", "thin brows"),
    "thick": ("thick eyebrows", "bushy eyebrows"),
    "arched": ("arched eyebrows", "arched brows"),
}
FACE_SHAPE = {
    "round": ("a round face",),
    "oval": ("an oval face",),
    "square": ("a square face", "a square jaw"),
    "heart": ("a heart shaped face",),
}
FACIAL_HAIR = {
    "moustache": ("a moustache", "a mustache"),
    "beard": ("a beard", "a full beard", "a thick beard"),
    "stubble": ("stubble", "a stubbly chin"),
}
GLASSES = {
    "round": ("round glasses", "round spectacles"),
    "square": ("square glasses", "rectangular glasses"),
    "sunglasses": ("sunglasses", "dark sunglasses"),
}
HEADWEAR = {
    "cap": ("a cap", "a baseball cap"),
    "beanie": ("a beanie", "a knitted beanie"),
    "headband": ("a headband",),
    "hat": ("a hat", "a wide brimmed hat"),
}
EARRINGS = {
    "studs": ("stud earrings", "small stud earrings"),
    "hoops": ("hoop earrings", "big hoop earrings"),
}
BACKGROUND = {  # a noun phrase without its article; "{}" is the background colour
    "solid": ("{} background", "{} backdrop", "plain {} background"),
    "stripes": ("{} striped background", "{} striped backdrop"),
    "dots": ("{} polka dot background", "{} dotted backdrop"),
    "gradient": ("{} gradient background", "soft {} gradient backdrop"),
}
BACKGROUND_ON = ("on", "against", "in front of")
PREFIXES = ("", "", "", "a photo of", "portrait of", "a portrait of", "a picture of", "a drawing of", "close up of")

# How often each attribute is picked to be mentioned (relative): the ones an eye reads first, most.
MENTION_WEIGHT = {
    "hair": 3.0, "expression": 3.0, "glasses": 2.5, "headwear": 2.5, "facial_hair": 2.5,
    "background": 2.0, "earrings": 1.3, "eye_colour": 1.0, "skin_tone": 1.0, "eyebrows": 0.8,
    "face_shape": 0.6,
}  # fmt: skip


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _mentionable(a: Mapping[str, str]) -> list[str]:
    names = ["hair", "expression", "skin_tone", "eyebrows", "face_shape", "background"]
    if a["glasses"] != "sunglasses":
        names.append("eye_colour")
    names += [k for k in ("glasses", "headwear", "facial_hair", "earrings") if a[k] != "none"]
    return names


def _hair_phrase(a: Mapping[str, str], rng: np.random.Generator) -> tuple[str, tuple[str, ...]]:
    """The hair phrase and the attributes it names."""
    colour = _pick(rng, HAIR_COLOUR[a["hair_colour"]])
    coloured, plain = HAIR_STYLE[a["hair_style"]]
    form = rng.random()
    if form < 0.6:  # style and colour
        return _pick(rng, coloured).format(colour), ("hair_style", "hair_colour")
    if form < 0.8:  # colour only
        return f"{colour} hair", ("hair_colour",)
    return _pick(rng, plain), ("hair_style",)


def caption(attributes: Mapping[str, str], rng: np.random.Generator) -> str:
    """A caption that names the subject and 3-6 attributes picked at random; lowercase, commas only."""
    return caption_named(attributes, rng)[0]


# what mentioning each attribute names, in ATTRIBUTES keys (hair is settled by the phrase drawn)
_NAMES = {"background": ("background", "background_colour"), "hair": ()}


def caption_named(attributes: Mapping[str, str], rng: np.random.Generator) -> tuple[str, frozenset[str]]:
    """The caption `caption` draws with the same rng, and the ATTRIBUTES keys it names (the subject names
    gender; "hair" may name its style, its colour or both)."""
    a = attributes
    names = _mentionable(a)
    k = min(int(rng.integers(3, 7)), len(names))
    p = np.array([MENTION_WEIGHT[n] for n in names])
    chosen = [names[i] for i in rng.choice(len(names), size=k, replace=False, p=p / p.sum())]

    adjectives: list[str] = []
    with_items: list[str] = []
    wearing: list[str] = []
    background = ""
    named = {"gender", *(k for name in chosen for k in _NAMES.get(name, (name,)))}
    for name in chosen:
        if name == "expression":
            if rng.random() < 0.6:
                adjectives.append(_pick(rng, EXPRESSION_ADJ[a["expression"]]))
            else:
                with_items.append(_pick(rng, EXPRESSION_WITH[a["expression"]]))
        elif name == "hair" and a["hair_style"] == "bald":
            named.add("hair_style")
            if rng.random() < 0.6:
                adjectives.append(_pick(rng, BALD_ADJ))
            else:
                with_items.append(_pick(rng, BALD_WITH))
        elif name == "hair":
            phrase, keys = _hair_phrase(a, rng)
            with_items.append(phrase)
            named.update(keys)
        elif name == "skin_tone":
            with_items.append(_pick(rng, SKIN_NOUN).format(_pick(rng, SKIN[a["skin_tone"]])))
        elif name == "eye_colour":
            with_items.append(_pick(rng, EYE_NOUN).format(_pick(rng, EYES[a["eye_colour"]])))
        elif name == "eyebrows":
            with_items.append(_pick(rng, EYEBROWS[a["eyebrows"]]))
        elif name == "face_shape":
            with_items.append(_pick(rng, FACE_SHAPE[a["face_shape"]]))
        elif name == "facial_hair":
            with_items.append(_pick(rng, FACIAL_HAIR[a["facial_hair"]]))
        elif name == "glasses":
            wearing.append(_pick(rng, GLASSES[a["glasses"]]))
        elif name == "headwear":
            wearing.append(_pick(rng, HEADWEAR[a["headwear"]]))
        elif name == "earrings":
            wearing.append(_pick(rng, EARRINGS[a["earrings"]]))
        elif name == "background":
            background = _pick(rng, BACKGROUND[a["background"]]).format(a["background_colour"])
    rng.shuffle(with_items)
    rng.shuffle(wearing)

    subject = _article(" ".join([*adjectives, _pick(rng, NOUNS[a["gender"]])]))
    clauses = []
    if with_items:
        clauses.append("with " + _join(with_items))
    if wearing:
        clauses.append("wearing " + _join(wearing))
    if len(clauses) == 2 and rng.random() < 0.5:
        clauses.reverse()
    body = " ".join([subject, *clauses])
    prefix = _pick(rng, PREFIXES)
    if prefix:
        body = f"{prefix} {body}"
    if background:
        place = rng.random()
        if place < 0.5:
            body = f"{body} {_pick(rng, BACKGROUND_ON)} {_article(background)}"
        elif place < 0.75:
            body = f"{body}, {background}"
        else:
            body = f"{background}, {body}"
    return body, frozenset(named)


def tokenize(text: str) -> list[str]:
    """The words of a caption or prompt, lowercased; punctuation is dropped."""
    return re.findall(r"[a-z]+", text.lower())


def _strings(table) -> list[str]:
    if isinstance(table, str):
        return [table]
    values = table.values() if isinstance(table, Mapping) else table
    return [s for v in values for s in _strings(v)]


def vocabulary() -> list[str]:
    """Every word a caption can contain, sorted."""
    tables = (
        NOUNS, EXPRESSION_ADJ, EXPRESSION_WITH, HAIR_COLOUR, HAIR_STYLE, BALD_ADJ, BALD_WITH, SKIN, SKIN_NOUN,
        EYES, EYE_NOUN, EYEBROWS, FACE_SHAPE, FACIAL_HAIR, GLASSES, HEADWEAR, EARRINGS, BACKGROUND,
        BACKGROUND_ON, PREFIXES, ("a an with wearing and hair",),
    )  # fmt: skip
    words = {w for t in tables for s in _strings(t) for w in tokenize(s)}
    words.update(tokenize(" ".join(ATTRIBUTES["background_colour"])))
    return sorted(words)
