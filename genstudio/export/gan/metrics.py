"""What an exported GAN measured with its dataset's evaluator: FID, precision/recall, attribute frequencies, diversity.

    metrics = quality(GanModel(entry, pool), evaluator_root, n=2000, seed=0)

Samples come through the engine (ONNX Runtime), the evaluator is the shipped eval-<dataset> model, and every
number is compared with the same evaluator on its shipped test-set reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genstudio.engines import evaluate as ev
from genstudio.engines.gan import GanModel
from genstudio.runtime.registry import Registry

TRUNCATION_SWEEP = (0.5, 0.7, 0.85)  # psi values measured beside psi = 1 (the headline numbers)


def mean_pairwise_distance(features: np.ndarray, n: int = 1000) -> float:
    """Mean Euclidean distance between the first n feature vectors, over all distinct pairs."""
    f = np.asarray(features[:n], np.float64)
    sq = (f ** 2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None] - 2.0 * f @ f.T, 0.0)
    iu = np.triu_indices(len(f), 1)
    return float(np.sqrt(d2[iu]).mean())


def attribute_frequencies(logits: dict[str, np.ndarray], heads: dict[str, list[str]], ref_labels: np.ndarray
                          ) -> dict[str, dict]:
    """Per head: predicted class shares of the samples, the reference's label shares, and their total
    variation distance (0: the same mix, 1: disjoint)."""
    out = {}
    for j, (head, names) in enumerate(heads.items()):
        fake = ev.label_histogram(logits[head], len(names))
        real = np.bincount(ref_labels[:, j].astype(np.int64), minlength=len(names)) / max(len(ref_labels), 1)
        out[head] = {"samples": dict(zip(names, np.round(fake, 4).tolist(), strict=True)),
                     "reference": dict(zip(names, np.round(real, 4).tolist(), strict=True)),
                     "total_variation": round(float(0.5 * np.abs(fake - real).sum()), 4)}
    return out


def quality(model: GanModel, evaluator_root: Path, n: int, *, seed: int = 0, truncation: float = 1.0,
            sweep: tuple[float, ...] = ()) -> dict:
    """FID, precision/recall, attribute frequencies and diversity of n samples; a skip note without an evaluator.
    With `sweep`, also "truncation_sweep": FID, precision, recall, coverage and diversity of the same n draws of z
    at each psi in it (truncation pulls w toward w_avg: cleaner faces, less variety), keyed by psi as text."""
    try:
        evaluator = ev.Evaluator.open(Registry([(Path(evaluator_root), "shipped")]), model.dataset, model.pool)
    except LookupError as e:
        return {"fid_skipped": str(e)}
    ref = evaluator.reference()
    ref_f = evaluator.reference_features()
    div_real = mean_pairwise_distance(ref_f)

    def score(psi: float) -> tuple[ev.EvalOutput, dict, float, float]:
        """(evaluator output, precision/recall, FID, diversity) of the n samples at truncation psi."""
        out = evaluator.run(model.sample(n, seed=seed, truncation=psi).images)
        k = min(len(ref_f), len(out.features))
        pr = {key: round(float(v), 4) for key, v in ev.precision_recall(ref_f[:k], out.features[:k], k=5).items()}
        return out, pr, round(evaluator.fid(features=out.features), 3), mean_pairwise_distance(out.features)

    out, pr, fid, div_fake = score(truncation)
    result = {
        "fid": fid,
        "fid_name": f"FID ({evaluator.feature_name} features)",
        "fid_train_vs_test_floor": evaluator.entry.manifest.metrics.get("fid_train_vs_test"),
        "precision_recall": pr,
        "diversity": {"mean_pairwise_feature_distance": round(div_fake, 4),
                      "reference_mean_pairwise_feature_distance": round(div_real, 4),
                      "ratio": round(div_fake / max(div_real, 1e-12), 4),
                      "method": "mean Euclidean distance between evaluator features over all pairs of the first "
                                "1000 samples, against the same over the reference test images (ratio 1: as varied)"},
        "fid_evaluator": {"name": evaluator.entry.name, "command": evaluator.entry.manifest.build.get("command")},
        "fid_method": (f"{n} samples, z from numpy seed {seed}, truncation {truncation}, through ONNX Runtime, "
                       f"against the test-set statistics shipped with {evaluator.entry.name}"),
    }
    if "labels" in ref:
        result["attribute_frequencies"] = attribute_frequencies(out.logits, evaluator.heads, ref["labels"])
    if sweep:
        result["truncation_sweep"] = {}
        for psi in sweep:
            _, pr, fid, div_fake = score(psi)
            result["truncation_sweep"][f"{psi:g}"] = {"fid": fid, **pr,
                                                      "diversity": round(div_fake / max(div_real, 1e-12), 4)}
    return result
