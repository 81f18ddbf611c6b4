"""Model families side by side on one dataset: shared-seed sample columns, honest timings and one metrics table.

    entries = models_for(registry, "fashion-mnist")               # vae, flow, gan, diffusion, autoregressive
    cond = shared_condition(entries, n=8, dataset="fashion-mnist") # sample k asks for class k % 10
    columns = [drive(sample_column(e, pool, 8, seed=0, condition=cond)) for e in entries]
    grid = comparison_grid(columns)                                # uint8 (H, W, 3), one labelled column per model
    timings = {e.name: drive(measure_timings(e, pool)) for e in entries}
    print(markdown_table(table_rows(entries, timings)))

    state = drive(compare_job(entries, pool, "fashion-mnist"))     # all of the above as one job (CLI and tab)
    write_report(out_dir, state, table_rows(entries, state.timings))   # comparison.png, -chart.png, .md, .json

Every number in a row comes from the model's manifest (what its build or `genstudio evaluate` measured) or from
a timing measured here; a number nobody measured is None, never estimated into the table. numpy, ONNX Runtime
and Pillow (for the column labels) only: no torch, no Qt.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shlex
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genstudio.engines.diffusion.pipeline import default_unet
from genstudio.engines.evaluate import DATASETS
from genstudio.runtime.jobs import Progress, drive
from genstudio.runtime.manifest import COMPARED_FAMILIES
from genstudio.runtime.registry import ModelEntry, Registry
from genstudio.runtime.sessions import SessionPool

FAMILIES = COMPARED_FAMILIES  # the order of columns and rows
FAMILY_TITLES = {"vae": "VAE", "flow": "Flow", "gan": "GAN", "diffusion": "Diffusion",
                 "autoregressive": "PixelCNN"}
DEFAULT_MAX_SECONDS = 60.0  # a timing run expected to take longer than this is skipped, not run

# -- which models ---------------------------------------------------------------------------------------------


def dataset_of(entry: ModelEntry) -> str | None:
    """The dataset a generative model was trained on: extra.dataset, else build.data.dataset, else (an image
    flow, whose manifest names none) a known dataset named in the model's name. 2-D density flows: None."""
    if not entry.ready:
        return None
    m = entry.manifest
    if m.family == "flow" and m.extra.get("kind") != "image":
        return None
    named = m.extra.get("dataset") or (m.build.get("data") or {}).get("dataset")
    if named:
        return str(named)
    if m.family == "flow":
        for d in DATASETS:
            if d in entry.name:
                return d
    return None


def models_for(registry: Registry, dataset: str) -> list[ModelEntry]:
    """The ready models of the generative families trained on `dataset`, in FAMILIES order, then by name."""
    found = [e for e in registry.ready() if e.family in FAMILIES and dataset_of(e) == dataset]
    return sorted(found, key=lambda e: (FAMILIES.index(e.family), e.name))


def open_engine(entry: ModelEntry, pool: SessionPool):
    """The engine object for a model of one of FAMILIES."""
    if entry.family == "vae":
        from genstudio.engines.vae import VaeModel

        return VaeModel(entry, pool)
    if entry.family == "flow":
        from genstudio.engines.flow import ImageFlowModel

        return ImageFlowModel(entry, pool)
    if entry.family == "gan":
        from genstudio.engines.gan import GanModel

        return GanModel(entry, pool)
    if entry.family == "diffusion":
        from genstudio.engines.diffusion.pipeline import DiffusionModel

        return DiffusionModel(entry, pool)
    if entry.family == "autoregressive":
        from genstudio.engines.pixelcnn import PixelCnnModel

        return PixelCnnModel(entry, pool)
    raise ValueError(f"{entry.name}: family {entry.family!r} is not compared (only {', '.join(FAMILIES)})")


# -- what conditional models are asked for ---------------------------------------------------------------------
@dataclass
class Condition:
    """What sample k asks a conditional model for; unconditional families ignore it."""

    class_ids: np.ndarray | None = None  # (n,) class index per sample (PixelCNN), None: no class
    captions: list[str] | None = None  # (n,) caption per sample (diffusion)
    label: str = "unconditional"  # one line for the grid and the table

    def captions_for(self, n: int) -> list[str] | None:
        return None if not self.captions else [self.captions[k % len(self.captions)] for k in range(n)]


def shared_condition(entries: Iterable[ModelEntry], n: int, dataset: str) -> Condition:
    """Fashion-MNIST: sample k asks for class k % 10, as a class id and as the diffusion manifest's caption for
    that class ("a photo of ..."). SynthFaces: sample k gets the diffusion model's example prompt k (cycled)."""
    entries = list(entries)
    diffusion = [e for e in entries if e.family == "diffusion"]
    if dataset == "fashion-mnist":
        captions = next((list(map(str, e.manifest.extra["classes"])) for e in diffusion
                         if e.manifest.extra.get("classes")), None)
        names = next((list(map(str, e.manifest.extra["class_names"])) for e in entries
                      if e.manifest.extra.get("class_names")), None)
        k = len(captions or names or []) or 10
        ids = (np.arange(n) % k).astype(np.int64)
        label = "sample k: class k % " + str(k) + (f" ({', '.join(names[:3])}, ...)" if names else "")
        return Condition(ids, [captions[i] for i in ids] if captions else None, label)
    prompts = next((list(map(str, e.manifest.extra["example_prompts"])) for e in diffusion
                    if e.manifest.extra.get("example_prompts")), None)
    if prompts:
        return Condition(None, [prompts[k % len(prompts)] for k in range(n)],
                         "sample k: the diffusion model's example prompt k (cycled)")
    return Condition()


# -- one column of samples --------------------------------------------------------------------------------------
@dataclass
class Column:
    name: str
    family: str
    images: np.ndarray  # (n, C, H, W) float32 in [0, 1]
    seconds_per_sample: float  # wall time of this column / n, after a one-sample warm-up that opens the sessions
    settings: dict[str, Any] = field(default_factory=dict)  # what reproduces it

    @property
    def label(self) -> str:
        return f"{FAMILY_TITLES.get(self.family, self.family)}\n{self.name}\n{duration_text(self.seconds_per_sample)}"


def duration_text(seconds: float) -> str:
    """Seconds per sample as a grid label: "0.21 ms / sample", "2.03 s / sample"."""
    return f"{seconds:.2f} s / sample" if seconds >= 1.0 else f"{seconds * 1000:.2f} ms / sample"


def _forward(job: Generator, remake: Callable[[Any], Progress]) -> Generator[Progress, None, Any]:
    """Yield remake(p) for each progress item p of a sub-job; returns the sub-job's value."""
    while True:
        try:
            p = next(job)
        except StopIteration as stop:
            return stop.value
        yield remake(p)


def _relabel(job: Generator, name: str) -> Generator[Progress, None, Any]:
    """A sub-job's progress with the model's name in front of its message."""
    return _forward(job, lambda p: Progress(getattr(p, "step", 0), getattr(p, "total", None),
                                            f"{name}: {getattr(p, 'message', '')}"))


def _sample(engine, entry: ModelEntry, n: int, seed: int, condition: Condition
            ) -> Generator[Progress, None, tuple[np.ndarray, dict]]:
    """(images (n, C, H, W) in [0, 1], settings) from one engine; the same seed for every family."""
    defaults = entry.manifest.defaults
    fam = entry.family
    if fam == "vae":
        t = float(defaults.get("temperature", 1.0))
        yield Progress(0, 1, f"{entry.name}: decoding {n} prior samples")
        images = engine.sample(n, seed, t)[1]
        return images, {"seed": seed, "temperature": t}
    if fam == "flow":
        t = float(defaults.get("temperature", 0.7))
        yield Progress(0, 1, f"{entry.name}: {n} samples")
        return engine.sample(n, seed, t), {"seed": seed, "temperature": t}
    if fam == "gan":
        batch = yield from _relabel(engine.sample_job(n, seed, 1.0), entry.name)
        return batch.images, {"seed": seed, "truncation": 1.0}
    if fam == "diffusion":
        prompts = condition.captions_for(n) or [""] * n
        images = yield from _relabel(engine.sample_prompts(prompts, [seed + k for k in range(n)]), entry.name)
        return images, {"seeds": f"{seed}..{seed + n - 1}", "prompts": prompts,
                        "steps": engine.defaults.get("steps"), "guidance": engine.defaults.get("guidance"),
                        "unet": engine.default_unet}
    if fam == "autoregressive":
        ids = condition.class_ids
        cls = None if ids is None or not engine.n_classes else [int(i) % engine.n_classes for i in
                                                                 np.resize(ids, n)]
        t = float(defaults.get("temperature", 1.0))
        images = yield from _relabel(engine.sample_job(n, seed, cls, t), entry.name)
        return images, {"seed": seed, "temperature": t, "class_ids": cls}
    raise ValueError(f"{entry.name}: family {fam!r} is not compared")


def sample_column(entry: ModelEntry, pool: SessionPool, n: int, seed: int = 0,
                  condition: Condition | None = None, engine=None) -> Generator[Progress, None, Column]:
    """n samples of one model with a shared seed and condition, timed (a job: progress per chunk)."""
    engine = engine or open_engine(entry, pool)
    yield Progress(0, 1, f"{entry.name}: loading")
    drive(_sample(engine, entry, 1, seed, condition or Condition()))  # sessions open and warm: not timed
    start = time.perf_counter()
    images, settings = yield from _sample(engine, entry, n, seed, condition or Condition())
    seconds = time.perf_counter() - start
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    yield Progress(1, 1, f"{entry.name}: {n} samples in {seconds:.2f} s")
    return Column(entry.name, entry.family, images, seconds / max(n, 1), settings)


# -- timings ------------------------------------------------------------------------------------------------------
def measure_timings(entry: ModelEntry, pool: SessionPool, batches: Sequence[int] = (1, 64), *,
                    max_seconds: float = DEFAULT_MAX_SECONDS, repeats: int = 3, seed: int = 0,
                    condition: Condition | None = None) -> Generator[Progress, None, dict]:
    """Seconds per sample at each batch size, measured live after a warm-up (sessions open, first run done).

    Each batch runs up to `repeats` times (the median counts) while the total stays under max_seconds. A batch
    whose first run is expected (from the batch-1 time, linearly) to exceed max_seconds is not run: its entry
    says "skipped" with the estimate, and seconds_per_sample stays None."""
    engine = open_engine(entry, pool)
    cond = condition or Condition()

    def once(b: int) -> float:
        t0 = time.perf_counter()
        drive(_sample(engine, entry, b, seed, cond))
        return time.perf_counter() - t0

    yield Progress(0, len(batches) + 1, f"{entry.name}: warm-up")
    warm = once(1)
    per_one = warm  # an upper bound until batch 1 is measured
    out: dict[str, Any] = {"model": entry.name, "warmup_seconds": round(warm, 4), "max_seconds": max_seconds,
                           "batches": {}}
    for i, b in enumerate(batches):
        estimate = per_one * b
        if estimate > max_seconds:
            out["batches"][str(b)] = {"seconds_per_sample": None, "skipped": True,
                                      "estimated_seconds_per_sample": round(per_one, 6),
                                      "why": f"one run estimated at {estimate:.0f} s > max_seconds {max_seconds:g}"}
            yield Progress(i + 2, len(batches) + 1, f"{entry.name}: batch {b} skipped")
            continue
        runs: list[float] = []
        spent = 0.0
        while len(runs) < repeats and (not runs or spent + runs[-1] <= max_seconds):
            t = once(b)
            runs.append(t)
            spent += t
        per = float(np.median(runs)) / b
        if b == 1:
            per_one = per
        out["batches"][str(b)] = {"seconds_per_sample": round(per, 6), "skipped": False, "runs": len(runs)}
        yield Progress(i + 2, len(batches) + 1, f"{entry.name}: batch {b}, {per * 1000:.2f} ms per sample")
    out["method"] = (f"median wall time of up to {repeats} runs per batch size / batch, after one warm-up run; "
                     f"ONNX Runtime threads as configured; batches expected to exceed {max_seconds:g} s not run")
    return out


# -- the table ------------------------------------------------------------------------------------------------------
_FID_KEYS = ("fid", "fid_prior_samples", "fid_samples")  # gan/diffusion, vae, pixelcnn
_PR_KEYS = ("precision_recall", "precision_recall_prior_samples", "precision_recall_samples")
# Likelihoods: (key path, what it is). The VAE's is the negative ELBO: an upper bound on the true bits/dim.
_BPD_KEYS = ((("test_bits_per_dim",), "exact"), (("heldout", "bits_per_dim"), "bound"),
             (("bits_per_dim",), "bound"))
COLUMNS = (  # key, Markdown header
    ("family", "Family"), ("name", "Model"), ("fid", "FID"), ("precision", "Precision"), ("recall", "Recall"),
    ("coverage", "Coverage"), ("class_accuracy", "Class acc."), ("prompt_adherence", "Prompt adherence"),
    ("bits_per_dim", "Bits/dim"), ("ms_per_sample_b1", "ms/sample (b=1)"), ("ms_per_sample_b64", "ms/sample (b=64)"),
    ("parameters", "Parameters"), ("size_mb", "Size (MB)"), ("train_minutes", "Training (min)"),
)


def _get(d: Mapping, *path: str) -> Any:
    for key in path:
        if not isinstance(d, Mapping) or key not in d:
            return None
        d = d[key]
    return d


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def normalise_metrics(family: str, metrics: Mapping) -> dict[str, Any]:
    """The comparable numbers of one family's metrics (build keys or `genstudio evaluate` keys), None if absent."""
    out: dict[str, Any] = {}
    fid_key = next((k for k in _FID_KEYS if _num(metrics.get(k)) is not None), None)
    out["fid"] = _num(metrics.get(fid_key)) if fid_key else None
    out["fid_of"] = {"fid_prior_samples": "prior samples", "fid_samples": "unconditional samples",
                     "fid": "samples"}.get(fid_key or "", None)
    out["fid_name"] = metrics.get("fid_name") or None
    out["fid_evaluator"] = _get(metrics, "fid_evaluator", "name")
    out["fid_n_samples"] = _num(metrics.get("fid_n_samples"))
    pr = next((metrics[k] for k in _PR_KEYS if isinstance(metrics.get(k), Mapping)), None) or metrics
    for key in ("precision", "recall", "coverage"):
        out[key] = _num(pr.get(key))
    acc = _num(metrics.get("class_accuracy"))
    if acc is None:
        acc = _num(_get(metrics, "class_conditional", "evaluator_accuracy"))
    out["class_accuracy"] = acc
    adh = metrics.get("prompt_adherence")
    out["prompt_adherence"] = _adherence(adh) if isinstance(adh, Mapping) else _num(adh)
    out["bits_per_dim"] = out["bits_per_dim_kind"] = None
    for path, kind in _BPD_KEYS:
        v = _num(_get(metrics, *path))
        if v is not None:
            exact = kind == "exact" and family != "vae"
            out["bits_per_dim"] = v
            out["bits_per_dim_kind"] = ("exact (test set)" if exact else
                                        "upper bound (negative ELBO, held-out set)")
            break
    return out


def _default_precision(family: str, manifest) -> str | None:
    """"int8" when a diffusion model samples with its int8 UNet by default and records that UNet's numbers."""
    unet = default_unet(manifest) if family == "diffusion" else "float32"
    return unet if unet != "float32" and isinstance(manifest.metrics.get(unet), Mapping) else None


# The numbers one sampling graph is measured by: a row takes all of them from the same graph, gaps included.
_QUALITY_KEYS = ("fid", "fid_of", "fid_name", "fid_evaluator", "fid_n_samples", "precision", "recall", "coverage",
                 "class_accuracy", "prompt_adherence")


def _parameters(metrics: Mapping) -> tuple[int | None, str | None]:
    """Parameters used to sample (a GAN's generator, a diffusion model's text encoder + UNet) and what they are."""
    p = metrics.get("parameters")
    if isinstance(p, Mapping):
        if _num(p.get("total")) is not None:
            return int(p["total"]), "total"
        if _num(p.get("generator")) is not None:
            return int(p["generator"]), "generator only"
        vals = [v for v in p.values() if _num(v) is not None]
        return (int(sum(vals)), "sum of parts") if vals else (None, None)
    return (int(p), None) if _num(p) is not None else (None, None)


def _manifest_timings(family: str, metrics: Mapping) -> tuple[float | None, float | None]:
    """(seconds per sample at batch 1, at batch 64) as recorded by the build, where it recorded them."""
    b1 = b64 = None
    if family == "vae":
        ms = _num(_get(metrics, "decode_latency_batch1", "onnxruntime_ms"))
        b1 = ms / 1000.0 if ms is not None else None
    elif family == "autoregressive":
        b1 = _num(_get(metrics, "sampling", "seconds_1_image"))
        if _get(metrics, "sampling", "batch_images") == 64:
            b64 = _num(_get(metrics, "sampling", "seconds_per_image_in_batch"))
    return b1, b64


def onnx_bytes(entry: ModelEntry) -> int:
    """Bytes of the model's ONNX graphs (with external data beside them): what inference loads."""
    total = 0
    for f in entry.manifest.onnx_files():
        p = entry.folder / f.path
        total += p.stat().st_size if p.exists() else 0
        data = p.with_name(p.name + ".data")
        total += data.stat().st_size if data.exists() else 0
    return total


def table_rows(entries: Iterable[ModelEntry], timings: Mapping[str, Mapping] | None = None) -> list[dict[str, Any]]:
    """One row per model: quality, likelihood, speed and cost numbers; None where nothing was measured.

    timings: measure_timings results by model name; without one, the manifest's recorded timings (if any).
    A manifest's metrics["evaluate"] (written by `genstudio evaluate all`) wins over the build's numbers."""
    rows = []
    for e in entries:
        m = e.manifest
        metrics = m.metrics
        row: dict[str, Any] = {"family": e.family, "name": e.name, "title": m.display_name,
                               "dataset": dataset_of(e)}
        row.update(normalise_metrics(e.family, metrics))
        fresh = metrics.get("evaluate")
        if isinstance(fresh, Mapping):
            for k, v in normalise_metrics(e.family, fresh).items():
                if v is not None:
                    row[k] = v
            row["evaluated_at"] = fresh.get("date")
        quality_of = _default_precision(e.family, m)
        if quality_of:  # the graph the studio samples with by default has its own numbers: show only those
            own = normalise_metrics(e.family, metrics[quality_of])
            row.update({k: own[k] for k in _QUALITY_KEYS})
            row["quality_of"] = quality_of
        row["parameters"], row["parameters_note"] = _parameters(metrics)
        row["size_bytes"] = e.size_bytes()
        row["size_mb"] = round(row["size_bytes"] / 1e6, 2)
        row["onnx_bytes"] = onnx_bytes(e)
        train = _num(_get(m.build, "seconds", "train"))
        row["train_seconds"] = train
        row["train_minutes"] = round(train / 60.0, 1) if train is not None else None
        t = (timings or {}).get(e.name)
        if t:
            b1 = _get(t, "batches", "1", "seconds_per_sample")
            b64 = _get(t, "batches", "64", "seconds_per_sample")
            row["timing_source"] = "measured"
            row["timing_skipped"] = [b for b, v in t.get("batches", {}).items() if v.get("skipped")]
        else:
            b1, b64 = _manifest_timings(e.family, metrics)
            row["timing_source"] = "manifest" if b1 is not None or b64 is not None else None
        row["seconds_per_sample_b1"], row["seconds_per_sample_b64"] = _num(b1), _num(b64)
        row["ms_per_sample_b1"] = round(b1 * 1000.0, 3) if _num(b1) is not None else None
        row["ms_per_sample_b64"] = round(b64 * 1000.0, 3) if _num(b64) is not None else None
        rows.append(row)
    return rows


def cell_text(key: str, v: Any) -> str:
    """One table cell as the Markdown table and the studio's table show it."""
    if v is None:
        return "–"
    if isinstance(v, float):
        if key in ("precision", "recall", "coverage", "class_accuracy", "prompt_adherence"):
            return f"{v:.3f}"
        if key == "parameters":
            return f"{int(v):,}"
        if key in ("size_mb", "train_minutes"):
            return f"{v:.1f}"
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub Markdown table of the rows (– where a number is missing), with notes on what each number is."""
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(cell_text(k, r.get(k)) for k, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in table_notes(rows)) + "\n"


def _adherence(adh: Mapping[str, Any]) -> float | None:
    """The mean over the prompted attributes of the evaluator's accuracy (with one attribute, class accuracy);
    the share of images with every attribute right when no per-attribute numbers are recorded."""
    acc = adh.get("accuracy")
    values = [_num(v) for v in acc.values()] if isinstance(acc, Mapping) else []
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else _num(adh.get("all_correct"))


def table_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """What each number of the rows is and where it comes from, one sentence per note."""
    notes = []
    names = sorted({str(r["fid_name"]) for r in rows if r.get("fid_name")})
    evaluators = sorted({str(r["fid_evaluator"]) for r in rows if r.get("fid_evaluator")})
    if names:
        notes.append(f"FID: {'; '.join(names)}" + (f", evaluator {', '.join(evaluators)}" if evaluators else "")
                     + "; precision/recall/coverage: k-NN (k = 5) on the same features. VAE: prior samples; "
                       "GAN: truncation 1.0; PixelCNN: unconditional samples.")
    if any(r.get("prompt_adherence") is not None for r in rows):
        notes.append("Prompt adherence: the evaluator's accuracy on each attribute a prompt names, averaged over "
                     "the attributes (metrics.prompt_adherence of the model).")
    for r in rows:
        if r.get("quality_of"):
            notes.append(f"Quality of {r['name']}: its default {r['quality_of']} UNet (metrics.{r['quality_of']}), "
                         "the graph the studio and these samples use.")
    for r in rows:
        if r.get("bits_per_dim_kind"):
            notes.append(f"Bits/dim of {r['name']}: {r['bits_per_dim_kind']}.")
    srcs = {r["name"]: r.get("timing_source") for r in rows}
    notes.append("Time per sample: " + ", ".join(f"{k} {v or 'not recorded'}" for k, v in srcs.items()) + ".")
    for r in rows:
        if r.get("timing_skipped"):
            notes.append(f"{r['name']}: batch {', '.join(r['timing_skipped'])} not timed (over the time limit).")
        if r.get("parameters_note"):
            notes.append(f"Parameters of {r['name']}: {r['parameters_note']}.")
    notes.append("Size: the whole model folder on disk (ONNX graphs, checkpoint, shipped data). "
                 "Training: build.seconds.train of the manifest. –: not measured.")
    return notes


# -- the grid -------------------------------------------------------------------------------------------------------
def _to_rgb_u8(images: np.ndarray, size: int) -> np.ndarray:
    """float (n, C, H, W) in [0, 1] to uint8 (n, size, size, 3), nearest-neighbour scaled (pixels stay visible)."""
    x = np.asarray(images, np.float32)
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    x = x[:, :3].transpose(0, 2, 3, 1)  # (n, H, W, 3)
    h, w = x.shape[1:3]
    rows = (np.arange(size) * h // size).clip(0, h - 1)
    cols = (np.arange(size) * w // size).clip(0, w - 1)
    x = x[:, rows][:, :, cols]
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def comparison_grid(columns: Sequence[Column], *, cell: int = 0, pad: int = 4, header: int = 0,
                    background: int = 255, font_size: int = 10) -> np.ndarray:
    """One column per model (its samples top to bottom; row k = seed k's sample in every column), a label
    above each column (family and model name), on a white ground. Returns uint8 (H, W, 3).

    Tiles are cell x cell (default: the largest sample size, at least 64), nearest-neighbour scaled; a column
    is as wide as its label needs (tiles centred in it)."""
    from PIL import Image, ImageDraw, ImageFont

    if not columns:
        raise ValueError("no columns to draw")
    font = ImageFont.load_default(size=font_size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    n = max(len(c.images) for c in columns)
    line_height = font_size + 4
    header = header or line_height * max(len(c.label.split("\n")) for c in columns) + 6
    cell = cell or max(64, max(int(c.images.shape[-1]) for c in columns))
    widths = [max(cell, *(math.ceil(measure.textlength(line, font=font)) + 2 for line in c.label.split("\n")))
              for c in columns]
    width = sum(widths) + (len(columns) + 1) * pad
    height = header + n * cell + (n + 1) * pad
    grid = np.full((height, width, 3), background, np.uint8)
    lefts = [pad + sum(widths[:j]) + j * pad for j in range(len(columns))]
    for col, x0, w in zip(columns, lefts, widths, strict=True):
        tiles = _to_rgb_u8(col.images, cell)
        xt = x0 + (w - cell) // 2
        for i, tile in enumerate(tiles):
            y0 = header + pad + i * (cell + pad)
            grid[y0:y0 + cell, xt:xt + cell] = tile
    img = Image.fromarray(grid)
    draw = ImageDraw.Draw(img)
    for col, x0 in zip(columns, lefts, strict=True):
        for k, line in enumerate(col.label.split("\n")):
            draw.text((x0 + 1, 3 + line_height * k), line, fill=(0, 0, 0), font=font)
    return np.asarray(img, np.uint8)


# -- the chart ------------------------------------------------------------------------------------------------------
CHART_METRICS = (  # key, title, True when higher is better, log scale
    ("fid", "FID", False, False), ("precision", "Precision", True, False), ("recall", "Recall", True, False),
    ("bits_per_dim", "Bits/dim", False, False), ("ms_per_sample_b1", "ms/sample, batch 1", False, True),
    ("ms_per_sample_b64", "ms/sample, batch 64", False, True),
)
FAMILY_COLORS = {"vae": (84, 160, 255), "flow": (46, 204, 113), "gan": (255, 159, 67),
                 "diffusion": (155, 89, 182), "autoregressive": (231, 76, 60)}


def chart_image(rows: Sequence[Mapping[str, Any]], *, scale: int = 2, panel_width: int = 300) -> np.ndarray:
    """The table as small multiples: one panel per metric of CHART_METRICS, one bar per model coloured by
    family, the value at the end of each bar ("not measured" where it is None), "better" pointing the way.
    Time panels use a log scale (PixelCNN is thousands of times slower). Returns uint8 (H, W, 3)."""
    from PIL import Image, ImageDraw, ImageFont

    if not rows:
        raise ValueError("no rows to chart")
    s = scale
    font = ImageFont.load_default(size=11 * s)
    bold = ImageFont.load_default(size=12 * s)
    label_w = max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(str(r["name"]), font=font)
                  for r in rows) + 10 * s
    bar_h, gap, head = 16 * s, 5 * s, 26 * s
    panel_w = int(label_w + panel_width * s)
    panel_h = head + len(rows) * (bar_h + gap) + gap
    cols = 2
    nrows = math.ceil(len(CHART_METRICS) / cols)
    pad = 12 * s
    img = Image.new("RGB", (cols * panel_w + (cols + 1) * pad, nrows * panel_h + (nrows + 1) * pad), "white")
    draw = ImageDraw.Draw(img)
    for i, (key, title, higher, log) in enumerate(CHART_METRICS):
        x0 = pad + (i % cols) * (panel_w + pad)
        y0 = pad + (i // cols) * (panel_h + pad)
        draw.rectangle([x0, y0, x0 + panel_w, y0 + panel_h], outline=(208, 215, 222), width=s)
        draw.text((x0 + 6 * s, y0 + 6 * s), f"{title}  ({'higher' if higher else 'lower'} is better"
                  f"{', log scale' if log else ''})", fill=(31, 35, 40), font=bold)
        values = [_num(r.get(key)) for r in rows]
        known = [v for v in values if v is not None and (v > 0 or not log)]
        top = max(known, default=0.0)
        bottom = min(known, default=0.0)
        bar_room = panel_w - label_w - 70 * s
        for j, (r, v) in enumerate(zip(rows, values, strict=True)):
            y = y0 + head + j * (bar_h + gap)
            draw.text((x0 + 6 * s, y + 2 * s), str(r["name"]), fill=(87, 96, 106), font=font)
            xb = x0 + label_w
            if v is None or (log and v <= 0):
                draw.text((xb, y + 2 * s), "not measured", fill=(140, 149, 159), font=font)
                continue
            if log:
                lo = math.log10(bottom) - 0.3
                frac = (math.log10(v) - lo) / max(math.log10(top) - lo, 1e-9)
            else:
                frac = v / top if top > 0 else 0.0
            w = max(2 * s, int(bar_room * max(0.0, min(1.0, frac))))
            draw.rectangle([xb, y, xb + w, y + bar_h], fill=FAMILY_COLORS.get(str(r["family"]), (120, 120, 120)))
            draw.text((xb + w + 5 * s, y + 2 * s), cell_text(key, v), fill=(31, 35, 40), font=font)
    return np.asarray(img, np.uint8)


# -- one comparison as a job, and its report ------------------------------------------------------------------------
@dataclass
class CompareState:
    """What a comparison has made so far: the columns, live timings and failures, by model."""

    dataset: str
    n: int
    seed: int
    condition: Condition
    columns: list[Column] = field(default_factory=list)
    timings: dict[str, dict] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    timing: bool = True  # whether timings were (or will be) measured
    max_seconds: float = DEFAULT_MAX_SECONDS
    providers: list[str] = field(default_factory=list)  # the ONNX Runtime providers the sessions report

    def snapshot(self) -> CompareState:
        """A copy whose lists and dicts the job will not touch again (what a progress item carries)."""
        return CompareState(self.dataset, self.n, self.seed, self.condition, list(self.columns),
                            dict(self.timings), dict(self.failed), self.timing, self.max_seconds,
                            list(self.providers))


def compare_job(entries: Sequence[ModelEntry], pool: SessionPool, dataset: str, n: int = 8, seed: int = 0, *,
                timing: bool = True, max_seconds: float = DEFAULT_MAX_SECONDS
                ) -> Generator[Progress, None, CompareState]:
    """Sample every model's column (same seed, shared condition), then time each: one job. Every progress item
    carries a snapshot of the state so far in `preview`, so a viewer that sees only the newest item still
    has every column. A model that fails is recorded in `failed` and the others go on."""
    state = CompareState(dataset, n, seed, shared_condition(entries, n, dataset), timing=timing,
                         max_seconds=max_seconds)
    total = len(entries) * (2 if timing else 1)
    done = 0
    for e in entries:
        try:
            col = yield from _numbered(sample_column(e, pool, n, seed, state.condition), done, total, state)
            state.columns.append(col)
        except Exception as err:  # one broken model must not lose the others' columns
            state.failed[e.name] = f"{type(err).__name__}: {err}"
        done += 1
        state.providers = pool.providers_in_use()
        yield Progress(done, total, f"{e.name}: sampled" if e.name not in state.failed
                       else f"{e.name}: failed ({state.failed[e.name]})", state.snapshot())
    if timing:
        for e in entries:
            if e.name not in state.failed:
                try:
                    state.timings[e.name] = yield from _numbered(
                        measure_timings(e, pool, max_seconds=max_seconds, condition=state.condition), done, total,
                        state)
                except Exception as err:
                    state.failed[e.name] = f"timing: {type(err).__name__}: {err}"
            done += 1
            yield Progress(done, total, f"{e.name}: timed", state.snapshot())
    return state


def _numbered(job: Generator, done: int, total: int, state: CompareState) -> Generator[Progress, None, Any]:
    """A sub-job's progress as overall step `done` of `total`, carrying a snapshot of the state."""
    return _forward(job, lambda p: Progress(done, total, getattr(p, "message", ""), state.snapshot()))


def compare_command(dataset: str, out: str | Path, n: int, seed: int, *, timing: bool = True,
                    max_seconds: float = DEFAULT_MAX_SECONDS) -> str:
    """The `genstudio compare` command that makes the same report."""
    words = ["genstudio", "compare", "--dataset", dataset, "--out", str(out), "--n", str(n), "--seed", str(seed)]
    if not timing:
        words.append("--no-timing")
    elif max_seconds != DEFAULT_MAX_SECONDS:
        words += ["--max-seconds", f"{max_seconds:g}"]
    return shlex.join(words)


REPORT_FILES = {"png": "comparison.png", "chart": "comparison-chart.png", "md": "comparison.md",
                "json": "comparison.json"}


def _settings_line(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items() if k != "prompts" and v is not None) or "defaults"


def report_markdown(state: CompareState, rows: Sequence[Mapping[str, Any]], command: str, date: str) -> str:
    md = [f"# Model comparison: {state.dataset}", "", f"Made by `{command}` on {date}.", "",
          markdown_table(rows).rstrip("\n"), "", f"![samples]({REPORT_FILES['png']})", "",
          f"Samples: {state.n} per model, seed {state.seed}, row k = the k-th sample of every model; "
          f"conditional models: {state.condition.label}. ONNX Runtime provider: "
          f"{', '.join(state.providers) or 'unknown'}.", ""]
    md += [f"- {c.name}: {_settings_line(c.settings)}" for c in state.columns]
    sampled = {c.name for c in state.columns}
    md += [f"- {name}: {'not timed' if name in sampled else 'no samples'} ({why})"
           for name, why in state.failed.items()]
    md += ["", f"![chart]({REPORT_FILES['chart']})", ""]
    return "\n".join(md)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def write_report(out: str | Path, state: CompareState, rows: Sequence[Mapping[str, Any]], *,
                 command: str | None = None, date: str | None = None) -> dict[str, Any]:
    """comparison.png (the sample grid), comparison-chart.png, comparison.md and comparison.json in `out`:
    what `genstudio compare` and the studio's Export both write. Returns the JSON summary."""
    from genstudio.runtime.imaging import save_png

    if not state.columns:
        raise ValueError("no model could be sampled, so there is nothing to report")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    command = command or compare_command(state.dataset, out, state.n, state.seed, timing=state.timing,
                                         max_seconds=state.max_seconds)
    date = date or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    stamp = {"command": command, "date": date, "models": [c.name for c in state.columns], "seed": state.seed}
    files = {k: str(out / name) for k, name in REPORT_FILES.items()}
    save_png(comparison_grid(state.columns), Path(files["png"]), stamp)
    save_png(chart_image(rows), Path(files["chart"]), stamp)
    _write_text(Path(files["md"]), report_markdown(state, rows, command, date))
    summary = {"dataset": state.dataset, "command": command, "date": date, "n": state.n, "seed": state.seed,
               "condition": state.condition.label, "providers": state.providers,
               "columns": [{"name": c.name, "family": c.family, "seconds_per_sample": c.seconds_per_sample,
                            "settings": c.settings} for c in state.columns],
               "failed": state.failed, "rows": list(rows), "timings": state.timings, "files": files}
    _write_text(Path(files["json"]), json.dumps(summary, indent=2, default=_jsonable) + "\n")
    return summary


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
