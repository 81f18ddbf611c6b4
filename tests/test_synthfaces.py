"""SynthFaces: determinism, shapes, attribute coverage, captions in vocabulary, held-out split, visible attributes."""

from __future__ import annotations

import numpy as np
import pytest

from genstudio.export.data import synthfaces as sf

BASE = {"hair_style": "long", "headwear": "none", "glasses": "none", "background": "solid"}


def test_render_is_deterministic_with_shape_and_dtype():
    a, attrs_a = sf.render(11)
    b, attrs_b = sf.render(11)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and attrs_a == attrs_b
    images, attrs = sf.sample(3, seed=5)
    again, attrs_again = sf.sample(3, seed=5)
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.uint8
    assert np.array_equal(images, again) and attrs == attrs_again


def test_sample_matches_render_of_its_seeds():
    images, attrs = sf.sample(2, seed=9, split="all")
    for image, a, s in zip(images, attrs, sf.face_seeds(2, seed=9, split="all"), strict=True):
        expect, expect_attrs = sf.render(s)
        assert np.array_equal(image, expect) and a == expect_attrs


def test_different_seeds_give_different_images():
    images = [sf.render(s)[0] for s in range(6)]
    for i in range(6):
        for j in range(i + 1, 6):
            assert np.abs(images[i].astype(int) - images[j].astype(int)).mean() > 5


def test_every_attribute_value_appears_and_encodes():
    seen = {name: set() for name in sf.ATTRIBUTES}
    for s in range(600):
        a = sf.attributes(s)
        codes = sf.encode(a)
        assert sf.decode(codes) == {k: a[k] for k in sf.ATTRIBUTES}
        for name, value in a.items():
            seen[name].add(value)
            assert 0 <= codes[name] < len(sf.ATTRIBUTES[name])
    for name, vocab in sf.ATTRIBUTES.items():
        assert seen[name] == set(vocab), name


def test_dependencies_hold():
    attrs = [sf.attributes(s) for s in range(1500)]
    women = [a for a in attrs if a["gender"] == "woman"]
    men = [a for a in attrs if a["gender"] == "man"]
    assert all(a["facial_hair"] == "none" for a in women)
    assert sum(a["facial_hair"] != "none" for a in men) / len(men) > 0.4
    assert not any(a["hair_style"] == "mohawk" and a["headwear"] in ("cap", "beanie", "hat") for a in attrs)


def test_overrides_pin_values_and_keep_the_rest():
    plain = sf.attributes(21)
    pinned = sf.attributes(21, {"hair_colour": "pink"})
    assert pinned["hair_colour"] == "pink"
    assert {k: v for k, v in pinned.items() if k not in ("hair_colour", "background_colour")} == {
        k: v for k, v in plain.items() if k not in ("hair_colour", "background_colour")
    }
    with pytest.raises(ValueError):
        sf.render(1, {"hair_colour": "green"})
    with pytest.raises(ValueError):
        sf.render(1, {"hat": "cap"})


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(axis=2)


def test_hair_colour_changes_the_hair_region_only():
    for seed in (3, 4):
        pinned = {**BASE, "background_colour": "teal"}
        dark, _ = sf.render(seed, {**pinned, "hair_colour": "black"})
        light, _ = sf.render(seed, {**pinned, "hair_colour": "blonde"})
        d = _diff(dark, light)
        assert (d > 60).sum() > 250  # long hair: hundreds of pixels
        assert d[:, :4].max() == 0 and d[:, -4:].max() == 0  # the backdrop's edges are untouched
        assert d[30:33, 28:36].mean() < 30  # nose and cheeks barely (only the brows share the colour)


def test_expression_glasses_and_headwear_change_their_regions():
    seed, pinned = 8, {**BASE, "facial_hair": "none"}
    smile, _ = sf.render(seed, {**pinned, "expression": "smiling"})
    sad, _ = sf.render(seed, {**pinned, "expression": "sad"})
    d = _diff(smile, sad)
    assert d[34:46].sum() > d[:20].sum() and (d > 60).sum() > 15  # the mouth and eyes, not the hair
    bare, _ = sf.render(seed, {**pinned, "expression": "neutral"})
    shades, _ = sf.render(seed, {**pinned, "expression": "neutral", "glasses": "sunglasses"})
    assert (_diff(bare, shades)[22:36] > 100).sum() > 40
    hat, _ = sf.render(seed, {**pinned, "expression": "neutral", "headwear": "hat"})
    assert (_diff(bare, hat)[:20] > 60).sum() > 80


def test_captions_use_only_the_vocabulary_and_vary():
    vocab = set(sf.vocabulary())
    assert sf.vocabulary() == sorted(vocab)
    rng = np.random.default_rng(0)
    captions = [sf.caption(sf.attributes(s), rng) for s in range(300)]
    for text in captions:
        words = sf.tokenize(text)
        assert set(words) <= vocab, set(words) - vocab
        assert text == text.lower() and 5 <= len(words) <= 45
    assert len(set(captions)) == len(captions)
    a = sf.attributes(2)
    assert len({sf.caption(a, np.random.default_rng(i)) for i in range(20)}) > 10


def test_captions_name_the_subject_and_never_hidden_or_absent_things():
    rng = np.random.default_rng(1)
    for s in range(200):
        a = sf.attributes(s)
        words = set(sf.tokenize(sf.caption(a, rng)))
        assert words & {"woman", "lady", "man", "guy", "person", "individual"}
        if a["glasses"] == "none":
            assert not words & {"glasses", "spectacles", "sunglasses"}
        if a["headwear"] == "none":
            assert not words & {"cap", "beanie", "headband", "hat"}


def test_held_out_split_is_deterministic_and_about_ten_percent():
    assert len(sf.HELD_OUT) == 16  # of 8 * 5 * 4 combinations
    attrs = [sf.attributes(s) for s in range(3000)]
    flags = [sf.is_held_out(a) for a in attrs]
    assert flags == [sf.is_held_out(a) for a in attrs]
    assert 0.04 < np.mean(flags) < 0.12  # 10% of combinations; those with glasses are a bit rarer
    hair, expression, glasses = (set(values) for values in zip(*sf.HELD_OUT, strict=True))
    assert hair == set(sf.ATTRIBUTES["hair_colour"]) and expression == set(sf.ATTRIBUTES["expression"])
    assert glasses == {"round", "square", "sunglasses"}  # nameable in a prompt: never "no glasses"


def test_sample_respects_the_split():
    _, held = sf.sample(4, seed=2, split="heldout")
    _, train = sf.sample(4, seed=2, split="train")
    assert all(sf.is_held_out(a) for a in held)
    assert not any(sf.is_held_out(a) for a in train)
    assert sf.face_seeds(20, seed=2, split="heldout") == sf.face_seeds(20, seed=2, split="heldout")
    assert not set(sf.face_seeds(50, seed=2, split="heldout")) & set(sf.face_seeds(50, seed=2, split="train"))
    with pytest.raises(ValueError):
        sf.sample(1, split="test")
