"""Semantic directions in W: label samples with the evaluator, then move along the attribute's own effect on w.

    found = fit_directions(GanModel(entry, pool), evaluator, n=20_000, seed=0)
    save_directions(found, folder)        # directions.npy (K, w_dim) unit vectors; the rest goes in model.json

For every direction in DIRECTIONS[dataset]: draw n latents, map them to w (no truncation), render, and let the
evaluator label every head. On 80% of the draws:
- InterFaceGAN's balanced logistic boundary "attribute in `positive`" is fitted on w; its accuracy on the other
  20% says how linearly the attribute sits in W;
- the attribute's effect on w is fitted by least squares, w ~ y b + (one-hot labels of every other head) C + c:
  b is how far w lies from where it would without the attribute, the other attributes held fixed.
The slider moves along b, and one unit is its length. The plain mean difference (w with the attribute minus w
without) edits more but drags along whatever the samples pair with the attribute (skin, backdrop); the
boundary's normal keeps the rest but barely edits, because the logistic fit leans on directions in which w
hardly varies (docs/gan.md compares the three). Each direction is checked the way a user would: move held-out
faces by +2 units and count how often the evaluator's label flips into `positive` (-2 units: out of it), and
how many of the other heads' labels stay; the boundary's normal is checked the same way (2 standard deviations
of w along it). A direction ships when at least MIN_EDIT_SUCCESS of the faces without the attribute gain it.
Shen et al., "Interpreting the Latent Space of GANs for Semantic Face Editing" (https://arxiv.org/abs/1907.10786).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from genstudio.engines import evaluate as ev
from genstudio.engines.gan import GanModel, seeded_z

DIRECTIONS_FILE = "directions.npy"
MIN_EDIT_SUCCESS = 0.2  # at +2 units, at least this share of faces without the attribute must gain it
MIN_POSITIVE_SHARE = 0.005  # each side needs at least this share of the draws (and 20 of them)

# name -> (evaluator head, the values on the positive side)
DIRECTIONS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "synthfaces": {
        "smile": ("expression", ("smiling",)),
        "surprise": ("expression", ("surprised",)),
        "anger": ("expression", ("angry",)),
        "glasses": ("glasses", ("round", "square", "sunglasses")),
        "sunglasses": ("glasses", ("sunglasses",)),
        "blonde hair": ("hair_colour", ("blonde",)),
        "black hair": ("hair_colour", ("black",)),
        "red hair": ("hair_colour", ("red",)),
        "grey hair": ("hair_colour", ("grey", "white")),
        "blue hair": ("hair_colour", ("blue",)),
        "bald": ("hair_style", ("bald",)),
        "long hair": ("hair_style", ("long",)),
        "beard": ("facial_hair", ("beard", "stubble", "moustache")),
        "headwear": ("headwear", ("cap", "beanie", "headband", "hat")),
        "feminine": ("gender", ("woman",)),
        "darker skin": ("skin_tone", ("brown", "dark")),
        "plain background": ("background", ("solid",)),
    },
    "fashion-mnist": {
        "footwear": ("class", ("Sandal", "Sneaker", "Ankle boot")),
        "trousers": ("class", ("Trouser",)),
        "bag": ("class", ("Bag",)),
        "dress": ("class", ("Dress",)),
        "sleeves": ("class", ("Pullover", "Coat", "Shirt")),
    },
}


@dataclass
class Direction:
    name: str
    head: str  # the evaluator head that labelled it
    positive: list[str]  # the head's values on the positive side
    index: int = -1  # row in directions.npy (-1: dropped)
    scale: float = 0.0  # length of the attribute's effect on w: one slider unit
    boundary_accuracy: float = 0.0  # balanced accuracy of InterFaceGAN's logistic boundary on held-out draws
    positives: float = 0.0  # share of draws labelled positive
    edit_success: dict[str, float] = field(default_factory=dict)  # flips into / out of positive at +-2 units,
    # and the share of the other heads' labels that a +2 edit leaves as they were
    boundary_edit_success: dict[str, float] = field(default_factory=dict)  # the same along the boundary's normal
    note: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def fit_boundary(x: np.ndarray, y: np.ndarray, steps: int = 400, lr: float = 0.5, l2: float = 1e-3
                 ) -> tuple[np.ndarray, float]:
    """Balanced logistic regression y ~ sigmoid(x @ a + b) by full-batch gradient descent on standardised x;
    returns (a in x's own units, b)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = (x - mu) / sd
    pos = max(float(y.mean()), 1e-6)
    weight = np.where(y > 0, 0.5 / pos, 0.5 / max(1.0 - pos, 1e-6))  # both classes count half
    weight /= weight.sum()
    a, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(xs @ a + b)))
        g = weight * (p - y)
        a -= lr * (xs.T @ g + l2 * a)
        b -= lr * g.sum()
    a_raw = a / sd
    return a_raw, float(b - (mu * a_raw).sum())


def attribute_effect(x: np.ndarray, y: np.ndarray, others: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, float]:
    """(unit vector, length) of b in the least-squares fit x ~ y b + sum_k others[k] C_k + c: the attribute's
    effect on x with the other attributes (one-hot label matrices) held fixed. Without others, the mean of x where
    y > 0 minus the mean where it is not."""
    columns = [(y > 0).astype(np.float64)[:, None], *[o[:, 1:] for o in others], np.ones((len(x), 1))]
    coef = np.linalg.lstsq(np.concatenate(columns, axis=1), x.astype(np.float64), rcond=None)[0]
    length = float(np.linalg.norm(coef[0]))
    return (coef[0] / max(length, 1e-12)).astype(np.float32), length


def balanced_accuracy(score: np.ndarray, y: np.ndarray) -> float:
    pred = score > 0
    pos, neg = y > 0, y <= 0
    return 0.5 * (float(pred[pos].mean()) if pos.any() else 0.0) + 0.5 * (float((~pred[neg]).mean()) if neg.any()
                                                                            else 0.0)


def fit_directions(model: GanModel, evaluator: ev.Evaluator, n: int = 20_000, seed: int = 0, n_check: int = 256
                   ) -> tuple[np.ndarray, list[Direction]]:
    """(directions (K, w_dim) unit rows, every candidate with its measurements; dropped ones have index -1)."""
    table = DIRECTIONS.get(model.dataset, {})
    z = seeded_z(n, model.z_dim, seed + 7919)  # draws of their own, not the FID ones
    w = model.map(z)
    out = evaluator.run(model.synthesize(w))
    preds = out.predictions()
    cut = int(0.8 * n)
    onehots = {h: np.eye(len(values))[preds[h][:cut]] for h, values in evaluator.heads.items()}  # the fits' labels
    labels = {h: p[cut:cut + n_check] for h, p in preds.items()}  # the edit checks' faces
    kept: list[np.ndarray] = []
    found: list[Direction] = []
    for name, (head, positive) in table.items():
        d = Direction(name, head, list(positive))
        found.append(d)
        if head not in evaluator.heads:
            d.note = f"the evaluator has no head {head!r}"
            continue
        values = evaluator.heads[head]
        ids = [values.index(v) for v in positive if v in values]
        y = np.isin(preds[head], ids).astype(np.float64)
        d.positives = float(y.mean())
        least = max(20, MIN_POSITIVE_SHARE * n)
        if y.sum() < least or (1 - y).sum() < least:
            d.note = f"too few draws on one side ({int(y.sum())} of {n} positive)"
            continue
        seen = w[:cut].astype(np.float64)
        a, b = fit_boundary(seen, y[:cut])
        d.boundary_accuracy = balanced_accuracy(w[cut:] @ a + b, y[cut:])
        unit, d.scale = attribute_effect(seen, y[:cut], [m for h, m in onehots.items() if h != head])
        check_w = w[cut:cut + n_check]
        d.edit_success = _edit_success(model, evaluator, check_w, labels, unit * d.scale, head, ids)
        normal = (a / np.linalg.norm(a)).astype(np.float32)
        d.boundary_edit_success = _edit_success(model, evaluator, check_w, labels,
                                                normal * float((w @ normal).std()), head, ids)
        gained = d.edit_success.get("into_at_plus_2", 0.0)
        if gained < MIN_EDIT_SUCCESS:
            d.note = f"at +2 units only {gained:.0%} of the faces without it gain it (below {MIN_EDIT_SUCCESS:.0%})"
            continue
        d.index = len(kept)
        kept.append(unit)
    return (np.stack(kept) if kept else np.zeros((0, model.w_dim), np.float32)), found


def _edit_success(model: GanModel, evaluator: ev.Evaluator, w: np.ndarray, labels: dict[str, np.ndarray],
                  step: np.ndarray, head: str, ids: list[int]) -> dict[str, float]:
    """Of held-out faces not positive, the share that the evaluator calls positive after w + 2 step, and the share
    of their other heads' labels left as they were; of positive ones, the share no longer positive after -2 step."""
    out: dict[str, float] = {}
    positive = np.isin(labels[head], ids)
    for key, count, mask, sign in (("into_at_plus_2", "n_negative", ~positive, 2.0),
                                   ("out_of_at_minus_2", "n_positive", positive, -2.0)):
        if not mask.any():
            continue
        edited = evaluator.run(model.synthesize(w[mask] + sign * step[None])).predictions()
        hit = np.isin(edited[head], ids)
        out[key] = round(float(hit.mean() if sign > 0 else (~hit).mean()), 4)
        out[count] = int(mask.sum())
        rest = [float(np.mean(edited[h] == labels[h][mask])) for h in labels if h != head] if sign > 0 else []
        if rest:
            out["others_kept_at_plus_2"] = round(float(np.mean(rest)), 4)
    return out


def save_directions(vectors: np.ndarray, found: list[Direction], folder: Path) -> dict:
    """Write directions.npy; returns what model.json records (extra["directions"] and the dropped ones)."""
    np.save(Path(folder) / DIRECTIONS_FILE, np.asarray(vectors, np.float32))
    return {"directions": [d.to_dict() for d in found if d.index >= 0],
            "directions_dropped": [{"name": d.name, "note": d.note, "boundary_accuracy": round(d.boundary_accuracy, 4),
                                    "edit_success": d.edit_success} for d in found if d.index < 0]}
