"""What a text-to-image model measures with its dataset's evaluator: prompt adherence, class accuracy and FID.

    targets = [PromptTarget("a sad woman with red hair wearing sunglasses",
                            {"gender": "woman", "expression": "sad", "hair_colour": "red", "glasses": "sunglasses"})]
    result = measure(model, evaluator_root, targets=targets, fid_prompts=captions, n=500)

Adherence: `per_prompt` images per target prompt; each prompted attribute is right when the evaluator's head
for it predicts the expected class (per-attribute accuracy, and the share of images with all of them right).
A Fashion-MNIST model's targets come from its manifest's `classes` (one caption per class, in the
evaluator's order): its adherence is class accuracy. FID: n images, one per prompt of `fid_prompts` (cycled;
the class captions by default), against the test-set statistics the evaluator ships.

The engine knows no dataset: the caller composes the prompts (for SynthFaces, `genstudio evaluate diffusion`
builds the attribute combinations held out from training). numpy and ONNX Runtime only.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genstudio.engines import evaluate as ev
from genstudio.engines.diffusion.pipeline import MAX_BATCH, DiffusionModel, ImageRequest
from genstudio.runtime.jobs import Progress, drive
from genstudio.runtime.registry import Registry

FID_SEED_OFFSET = 1_000_000  # FID images use seeds apart from the adherence images'


@dataclass
class PromptTarget:
    prompt: str
    expected: dict[str, str]  # evaluator head -> the class name the prompt asks for


def class_targets(model: DiffusionModel, heads: dict[str, list[str]]) -> list[PromptTarget]:
    """One target per class caption of the manifest ("classes"), expecting that class on the "class" head."""
    captions = model.classes
    if not captions:
        return []
    names = heads.get("class", [])
    if len(names) != len(captions):
        raise ValueError(f"{model.name} has {len(captions)} class captions, the evaluator {len(names)} classes")
    return [PromptTarget(c, {"class": n}) for c, n in zip(captions, names, strict=True)]


def adherence(targets: Sequence[PromptTarget], per_prompt: int, predictions: dict[str, np.ndarray],
              heads: dict[str, list[str]]) -> dict[str, Any]:
    """Per-attribute accuracy over the images whose prompt names that attribute (image i belongs to target
    i // per_prompt), the share with every named attribute right, chance levels, a per-prompt table, and a
    confusion table: per attribute, per prompted value, how many images the evaluator read as each value."""
    for t in targets:
        for head, value in t.expected.items():
            if head not in heads:
                raise ValueError(f"the evaluator has no head {head!r} (it has {', '.join(heads)})")
            if value not in heads[head]:
                raise ValueError(f"{head}={value!r} is not one of the evaluator's classes {heads[head]}")
    hits: dict[str, list[bool]] = {}
    all_right: list[bool] = []
    table = []
    confusion: dict[str, dict[str, Counter[str]]] = {}
    for k, t in enumerate(targets):
        rows = slice(k * per_prompt, (k + 1) * per_prompt)
        right = {h: predictions[h][rows] == heads[h].index(v) for h, v in t.expected.items()}
        for h, v in t.expected.items():
            confusion.setdefault(h, {}).setdefault(v, Counter()).update(heads[h][p] for p in predictions[h][rows])
        for h, r in right.items():
            hits.setdefault(h, []).extend(r.tolist())
        every = np.logical_and.reduce(list(right.values())) if right else np.ones(per_prompt, bool)
        all_right.extend(every.tolist())
        table.append({"prompt": t.prompt, "expected": dict(t.expected),
                      "accuracy": {h: round(float(r.mean()), 4) for h, r in right.items()}})
    return {
        "accuracy": {h: round(float(np.mean(v)), 4) for h, v in hits.items()},
        "all_correct": round(float(np.mean(all_right)), 4) if all_right else None,
        "chance": {h: round(1.0 / len(heads[h]), 4) for h in hits},
        "n_prompts": len(targets),
        "images_per_prompt": per_prompt,
        "n_images": len(targets) * per_prompt,
        "per_prompt": table,
        "confusion": {h: {v: dict(read.most_common()) for v, read in sorted(by.items())} for h, by in confusion.items()},
    }


def measure_job(model: DiffusionModel, evaluator_root: Path | None = None, *,
                targets: Sequence[PromptTarget] | None = None, fid_prompts: Sequence[str] | None = None,
                n: int = 500, per_prompt: int = 8, steps: int | None = None, scheduler: str | None = None,
                guidance: float | None = None, negative: str = "", seed: int = 0,
                targets_note: str = "", unet: str | None = None, real_images: np.ndarray | None = None,
                real_note: str = "") -> Generator[Progress, None, dict]:
    """Prompt adherence on `targets` and FID of n images; {"skipped": why} without an evaluator.

    evaluator_root: a models folder holding eval-<dataset> (None: the usual registry roots).
    real_images: real images laid out like the adherence images (per_prompt per target, each with the
    attributes its target expects); the evaluator's accuracy on them is the ceiling a perfect generator would
    reach, recorded as prompt_adherence.real_images (`real_note` says where they come from)."""
    registry = Registry([(Path(evaluator_root), "shipped")]) if evaluator_root else Registry()
    try:
        evaluator = ev.Evaluator.open(registry, model.dataset, model.pool)
    except LookupError as e:
        return {"skipped": str(e)}
    r = model.resolve(ImageRequest("", negative, steps, guidance, scheduler, preview="none", unet=unet))
    heads = evaluator.heads
    targets = list(targets) if targets is not None else class_targets(model, heads)
    if per_prompt < 1 or n < 0:
        raise ValueError("per_prompt must be at least 1 and n at least 0")
    if 0 < n <= 5:
        raise ValueError("FID and precision/recall need more than 5 images (n > 5), or n = 0 to skip them")
    fid_prompts = list(fid_prompts) if fid_prompts else [t.prompt for t in targets]
    if n and not fid_prompts:
        raise ValueError(f"{model.name}: no prompts to draw FID images from (pass fid_prompts)")
    adh_prompts = [t.prompt for t in targets for _ in range(per_prompt)]
    fid_list = [fid_prompts[i % len(fid_prompts)] for i in range(n)]
    chunks = [math.ceil(len(adh_prompts) / MAX_BATCH), math.ceil(n / MAX_BATCH)]
    total = sum(chunks) * r.steps
    start = time.perf_counter()

    def generate(prompts: list[str], first_seed: int, done_before: int, label: str):
        job = model.sample_prompts(prompts, [first_seed + i for i in range(len(prompts))], negative=negative,
                                   steps=r.steps, guidance=r.guidance, scheduler=r.scheduler, unet=r.unet)
        while True:
            try:
                p = next(job)
            except StopIteration as stop:
                return stop.value
            yield Progress(done_before + p.step, total, f"{label}: {p.message}")

    result: dict[str, Any] = {}
    if targets:
        images = yield from generate(adh_prompts, seed, 0, "adherence")
        preds = evaluator.run(images).predictions()
        result["prompt_adherence"] = adherence(targets, per_prompt, preds, heads)
        if targets_note:
            result["prompt_adherence"]["prompts_from"] = targets_note
        if real_images is not None:
            if len(real_images) != len(adh_prompts):
                raise ValueError(f"{len(real_images)} real images for {len(adh_prompts)} adherence images")
            real = adherence(targets, per_prompt, evaluator.run(real_images).predictions(), heads)
            result["prompt_adherence"]["real_images"] = {"accuracy": real["accuracy"],
                                                         "all_correct": real["all_correct"], "method": real_note}
        if set(heads) == {"class"} and all(set(t.expected) == {"class"} for t in targets):
            result["class_accuracy"] = result["prompt_adherence"]["accuracy"]["class"]
    if n:
        images = yield from generate(fid_list, seed + FID_SEED_OFFSET, chunks[0] * r.steps, "FID")
        out = evaluator.run(images)
        ref_f = evaluator.reference_features()
        k = min(len(ref_f), len(out.features))
        result.update({
            "fid": round(evaluator.fid(features=out.features), 3),
            "fid_name": f"FID ({evaluator.feature_name} features)",
            "fid_n_samples": n,
            "fid_train_vs_test_floor": evaluator.entry.manifest.metrics.get("fid_train_vs_test"),
            "precision_recall": {key: round(float(v), 4)
                                 for key, v in ev.precision_recall(ref_f[:k], out.features[:k], k=5).items()},
            "fid_method": (f"{n} images, one per prompt of {len(fid_prompts)} cycled, seeds {seed + FID_SEED_OFFSET}"
                           f".., through ONNX Runtime, against the test-set statistics shipped with "
                           f"{evaluator.entry.name}"),
        })
        if "class" in out.logits:
            shares = ev.label_histogram(out.logits["class"], out.logits["class"].shape[1])
            result["fid_predicted_class_share"] = dict(zip(heads["class"], np.round(shares, 4).tolist(), strict=True))
    seconds = time.perf_counter() - start
    n_images = len(adh_prompts) + n
    result.update({
        "quality_sampling": {"steps": r.steps, "scheduler": r.scheduler, "guidance": r.guidance,
                             "negative": negative, "seed": seed, "unet": r.unet},
        "fid_evaluator": {"name": evaluator.entry.name, "command": evaluator.entry.manifest.build.get("command")},
        "quality_seconds": round(seconds, 2),
        "quality_images_per_second": round(n_images / max(seconds, 1e-9), 3),
    })
    return result


def measure(model: DiffusionModel, evaluator_root: Path | None = None, *,
            on_progress: Callable[[Progress], None] | None = None, **kwargs: Any) -> dict:
    """measure_job driven to its end (see there for the arguments)."""
    return drive(measure_job(model, evaluator_root, **kwargs), on_progress)

