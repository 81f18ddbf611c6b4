"""`genstudio export pixelcnn`: train the class-conditional gated PixelCNN on Fashion-MNIST, export, measure.

    folder = build_pixelcnn(PixelCnnBuild(), out_root, command="genstudio export pixelcnn ...")

The folder (pixelcnn-fashion-mnist) holds logits.onnx (x (N, 1, H, 28) = pixel / 255, class (N,) int64 ->
logits (N, 256, H, 28); batch and height dynamic) and the safetensors checkpoint. Every number in model.json
is measured through ONNX Runtime by the engine code the studio and `genstudio evaluate pixelcnn` run
(genstudio.engines.pixelcnn):

- test bits/dim: the exact negative log-likelihood of the 8-bit test images, -log2 p(x) / 784, with no
  dequantisation and no quantisation (256-way softmax over the true pixel values); unconditional (the null
  class) and given the true class. A flow's dequantised bits/dim bounds the same discrete code length from
  above, so the numbers compare directly.
- FID, precision/recall of unconditional samples (seed 0, temperature 1) against eval-fashion-mnist's
  test-set statistics, beside the FID of as many real training images (the floor at that sample count);
  the evaluator's class accuracy on round-robin class-conditional samples.
- the time to sample 1 image and a batch, pixel by pixel (784 session runs per batch).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from genstudio.engines import evaluate as ev
from genstudio.engines.pixelcnn import PixelCnnModel
from genstudio.export.artifacts import publish, staging_folder
from genstudio.export.data import fashion_mnist
from genstudio.export.onnx_io import batch_dim, ort_session, save_onnx, versions
from genstudio.export.pixelcnn.model import LogitsGraph, PixelCNN, PixelCnnConfig, parameter_count
from genstudio.export.pixelcnn.train import load_checkpoint, save_run, train_pixelcnn
from genstudio.export.trainer import TrainerConfig
from genstudio.runtime.jobs import Progress, drive
from genstudio.runtime.manifest import Manifest, ModelFile
from genstudio.runtime.paths import shipped_models_dir
from genstudio.runtime.registry import Registry, check_folder
from genstudio.runtime.sessions import SessionConfig, SessionPool

LOGITS_FILE, CHECKPOINT_FILE = "logits.onnx", "pixelcnn.safetensors"


@dataclass
class PixelCnnBuild:
    name: str = "pixelcnn-fashion-mnist"  # the model folder's and manifest's name
    model: PixelCnnConfig = field(default_factory=PixelCnnConfig)  # the architecture
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        steps=6500, batch_size=16, lr=2e-3, warmup=200, grad_clip=5.0))  # the optimisation (~45-50 min, 1 core)
    p_uncond: float = 0.2  # share of training labels replaced by the null class (the unconditional model)
    n_train: int = 60_000  # training images (the first n of the train split)
    n_test: int = 10_000  # test images the bits/dim is measured on (the first n of the test split)
    n_fid: int = 500  # unconditional samples scored by the evaluator (0: skip; each costs 784 runs' share)
    n_class_samples: int = 100  # round-robin class-conditional samples for the class accuracy (0: skip)
    n_parity: int = 32  # test images compared between PyTorch and ONNX Runtime
    threads: int = 0  # ONNX Runtime intra-op threads while measuring (0: all cores)
    evaluator_root: str | None = None  # where eval-fashion-mnist lives (None: the output root, then the shipped models)
    data_dir: str | None = None  # Fashion-MNIST idx folder; None: Debian's
    checkpoint: str | None = None  # export this training checkpoint instead of training
    checkpoint_to: str | None = None  # while training, write the run here every checkpoint_every steps
    checkpoint_every: int = 500  # steps between checkpoints


def save_logits_onnx(model: PixelCNN, path: Path, example_x: torch.Tensor, example_cls: torch.Tensor) -> Path:
    """Export LogitsGraph: inputs x and class, output logits; batch and height dynamic."""
    batch, height = batch_dim(), torch.export.Dim("height", min=1, max=model.cfg.size)
    return save_onnx(LogitsGraph(model), (example_x, example_cls), path, input_names=["x", "class"],
                     output_names=["logits"], dynamic_shapes=({0: batch, 2: height}, {0: batch}))


def parity(model: PixelCNN, onnx_path: Path, u8: np.ndarray, labels: np.ndarray) -> dict:
    """Max |logits| difference between PyTorch and ONNX Runtime on the same images: full height with true and
    null classes, and the first 20 rows (the graph's dynamic height)."""
    x = (u8[:, None].astype(np.float32) / 255.0)
    cls = np.where(np.arange(len(u8)) % 2 == 0, labels.astype(np.int64), model.cfg.null_class).astype(np.int64)
    sess = ort_session(onnx_path)
    with torch.no_grad():
        ref = model(torch.from_numpy(x), torch.from_numpy(cls)).numpy()
    full = sess.run(["logits"], {"x": x, "class": cls})[0]
    top = sess.run(["logits"], {"x": np.ascontiguousarray(x[:, :, :20]), "class": cls})[0]
    return {"max_abs_diff_logits": float(np.abs(ref - full).max()),
            "max_abs_diff_logits_first_20_rows": float(np.abs(ref[:, :, :20] - top).max()),
            "logit_scale": float(np.abs(ref).max()), "n_images": len(u8)}


def window_parity(engine: PixelCnnModel, u8: np.ndarray) -> dict:
    """The sampler's shortcut: each row's logits from the window of rows that can reach it, against the full image."""
    x = u8[:, None].astype(np.float32) / 255.0
    cls = engine.class_ids(len(u8), None)
    full = engine.logits(x, cls)
    worst = 0.0
    for r in range(x.shape[2]):
        s = engine.window_start(r)
        part = engine.logits(np.ascontiguousarray(x[:, :, s:r + 1]), cls)
        worst = max(worst, float(np.abs(part[:, :, -1] - full[:, :, r]).max()))
    return {"max_abs_diff_window_vs_full": worst, "receptive_rows": engine.receptive_rows, "n_images_window": len(u8)}


def sampling_speed(engine: PixelCnnModel, seconds_batch: float | None, n_batch: int) -> dict:
    """Wall time of one image drawn alone, and the per-image time of a batch (from the FID samples)."""
    t0 = time.perf_counter()
    engine.sample(1, seed=123)
    one = time.perf_counter() - t0
    out = {"seconds_1_image": round(one, 3), "session_runs_per_batch": int(np.prod(engine.image_shape)),
           "window": engine.window, "threads": engine.pool.config.threads or "all cores"}
    if seconds_batch is not None and n_batch:
        out.update(seconds_batch=round(seconds_batch, 2), batch_images=n_batch,
                   seconds_per_image_in_batch=round(seconds_batch / n_batch, 4))
    return out


def _quality(cfg: PixelCnnBuild, engine: PixelCnnModel, out_root: Path, train_u8: np.ndarray,
             report: Callable[[str], None]) -> tuple[dict, float | None]:
    """FID, precision/recall of unconditional samples, the real-image floor at the same count, class accuracy."""
    roots = [Path(cfg.evaluator_root)] if cfg.evaluator_root else [Path(out_root), shipped_models_dir()]
    if cfg.n_fid <= 0 and cfg.n_class_samples <= 0:
        return {"fid_skipped": "n_fid and n_class_samples are 0"}, None
    try:
        evaluator = ev.Evaluator.open(Registry([(r, "shipped") for r in roots]), "fashion-mnist", engine.pool)
    except LookupError as e:
        return {"fid_skipped": str(e)}, None
    out: dict = {"fid_evaluator": {"name": evaluator.entry.name,
                                   "command": evaluator.entry.manifest.build.get("command"),
                                   "date": evaluator.entry.manifest.build.get("date")}}
    seconds = None
    if cfg.n_fid > 0:
        t0 = time.perf_counter()
        samples = drive(engine.sample_job(cfg.n_fid, seed=0), lambda p: report(f"FID samples {p.message}"))
        seconds = time.perf_counter() - t0
        r = evaluator.report(samples, k=5)
        k = min(cfg.n_fid, len(train_u8))
        floor = evaluator.fid(train_u8[np.random.default_rng(0).permutation(len(train_u8))[:k]])
        out.update({
            "fid_samples": round(r["fid"], 3), "fid_name": r["fid_name"], "fid_n_samples": cfg.n_fid,
            "fid_real_train_images_same_n": round(floor, 3),
            "fid_train_vs_test_floor": evaluator.entry.manifest.metrics.get("fid_train_vs_test"),
            "precision_recall_samples": {key: r[key] if key == "k" else round(float(r[key]), 4)
                                         for key in ("precision", "recall", "density", "coverage", "k")},
            "fid_method": (f"{cfg.n_fid} unconditional samples (null class, numpy seed 0, temperature 1) drawn pixel "
                           f"by pixel through ONNX Runtime, against the test-set statistics shipped with "
                           f"{evaluator.entry.name}; FID is biased upward at small sample counts, so "
                           f"fid_real_train_images_same_n scores {k} random real training images the same way"),
        })
    if cfg.n_class_samples > 0:
        n = cfg.n_class_samples
        images = drive(engine.sample_job(n, seed=1, class_id="all"), lambda p: report(f"class samples {p.message}"))
        want = engine.class_ids(n, "all")
        got = evaluator.run(images).logits["class"].argmax(1)
        out["class_conditional"] = {
            "evaluator_accuracy": round(float((got == want).mean()), 4), "n_samples": n,
            "per_class_accuracy": {name: round(float((got[want == c] == c).mean()), 3)
                                   for c, name in enumerate(engine.class_names) if (want == c).any()},
            "method": (f"{n} samples with classes 0..9 round robin (numpy seed 1, temperature 1); the share the "
                       f"{evaluator.entry.name} classifier assigns to the requested class"),
        }
    return out, seconds


def build_pixelcnn(cfg: PixelCnnBuild, out_root: Path, *, command: str,
                   on_progress: Callable[[Progress], None] | None = None) -> Path:
    """Train (or load cfg.checkpoint), export, check parity, measure; returns the model folder (replaced atomically)."""
    if 0 < cfg.n_fid < 10:
        raise ValueError("n_fid must be 0 (skip) or at least 10 (precision/recall use k = 5 neighbours)")
    started = time.perf_counter()
    report = on_progress or (lambda p: None)
    train = fashion_mnist.load("train", cfg.data_dir)
    test = fashion_mnist.load("test", cfg.data_dir)
    train_u8, train_y = train.images[:cfg.n_train], train.labels[:cfg.n_train]
    test_u8, test_y = test.images[:cfg.n_test], test.labels[:cfg.n_test]

    if cfg.checkpoint:
        model, meta = load_checkpoint(Path(cfg.checkpoint))
        cfg.model = model.cfg
        cfg.trainer = TrainerConfig(**meta["trainer"])
        cfg.trainer.steps = meta["step"]
        cfg.p_uncond = meta["p_uncond"]
        losses, train_seconds = meta["losses"] or [], meta["seconds"]
        run = {"from_checkpoint": {"path": str(cfg.checkpoint), "step": meta["step"], "stages": meta["stages"]}}
    else:
        model, trainer = train_pixelcnn(cfg.model, cfg.trainer, train_u8, train_y, p_uncond=cfg.p_uncond,
                                        on_progress=report, total=cfg.trainer.steps + 5,
                                        checkpoint_to=Path(cfg.checkpoint_to) if cfg.checkpoint_to else None,
                                        every=cfg.checkpoint_every, stages=[command])
        losses, train_seconds, run = trainer.losses, trainer.elapsed, {}
    steps = cfg.trainer.steps
    total = steps + 5
    name = cfg.name

    tmp = staging_folder(out_root, name)
    if cfg.checkpoint:
        (tmp / CHECKPOINT_FILE).write_bytes(Path(cfg.checkpoint).read_bytes())
    else:
        save_run(tmp / CHECKPOINT_FILE, model, trainer, p_uncond=cfg.p_uncond, stages=[command])
    example_x = torch.from_numpy(test_u8[:4, None].astype(np.float32) / 255.0)
    save_logits_onnx(model, tmp / LOGITS_FILE, example_x, torch.tensor([0, 3, model.cfg.null_class, 9]))
    par = parity(model, tmp / LOGITS_FILE, test_u8[:cfg.n_parity], test_y[:cfg.n_parity])
    report(Progress(steps + 1, total, f"{name} exported, parity {par['max_abs_diff_logits']:.1e}"))

    _manifest(cfg, command=command, metrics={"parity": par}).save(tmp)
    pool = SessionPool(SessionConfig(provider="cpu", threads=cfg.threads))
    engine = PixelCnnModel(check_folder(tmp, "shipped"), pool)
    par.update(window_parity(engine, test_u8[:min(8, len(test_u8))]))

    def bar(what: str) -> Callable[[Progress], None]:
        return lambda p: report(Progress(steps + 2, total, f"{name} {what} {p.step}/{p.total}"))

    uncond = drive(engine.bits_per_dim(test_u8, None), bar("test bits/dim, no class"))
    cond = drive(engine.bits_per_dim(test_u8, test_y.astype(np.int64)), bar("test bits/dim, true class"))
    report(Progress(steps + 3, total, f"{name} test {uncond['bits_per_dim']:.3f} bits/dim"))
    quality, seconds_batch = _quality(cfg, engine, out_root, train_u8,
                                      lambda msg: report(Progress(steps + 3, total, f"{name} {msg}")))
    report(Progress(steps + 4, total, f"{name} sampled"))

    dim = int(np.prod(engine.image_shape))
    ln2 = math.log(2.0)
    metrics = {
        "test_bits_per_dim": uncond["bits_per_dim"],
        "test_bits_per_dim_stderr": uncond["bits_per_dim_stderr"],
        "test_bits_per_dim_given_class": cond["bits_per_dim"],
        "test_bits_per_dim_given_class_stderr": cond["bits_per_dim_stderr"],
        "test_bits_per_dim_method": (
            f"mean over the first {len(test_u8)} Fashion-MNIST test images of -log2 p(x) / {dim}, exact: the sum over "
            f"the {dim} pixels of the 256-way softmax's log-probability of the pixel's true 8-bit value, one "
            "logits.onnx run per image batch; test_bits_per_dim with the null class (the unconditional model p(x)), "
            "_given_class with the true label (p(x | y)). No dequantisation and no quantisation: the discrete "
            f"code length itself. The class-mixture p(x) = mean_y p(x | y) is within log2(10)/{dim} = "
            f"{math.log2(10) / dim:.4f} bits/dim of _given_class."),
        "train_bits_per_dim_last_100_steps": float(np.mean(losses[-100:]) / ln2) if losses else None,
        "train_steps": steps,
        "parity": par,
        "parameters": parameter_count(model),
        **quality,
        "sampling": sampling_speed(engine, seconds_batch, cfg.n_fid),
        **run,
    }
    report(Progress(steps + 4, total, f"{name} measured"))
    seconds = {"train": round(train_seconds, 1), "total": round(time.perf_counter() - started, 1)}
    _manifest(cfg, command=command, metrics=metrics, seconds=seconds).save(tmp)
    final = publish(tmp, out_root, name)
    report(Progress(total, total, f"{name} test {uncond['bits_per_dim']:.3f} bits/dim"))
    return final


def _manifest(cfg: PixelCnnBuild, *, command: str, metrics: dict, seconds: dict | None = None) -> Manifest:
    m = cfg.model
    size, levels = m.size, m.levels
    return Manifest(
        family="autoregressive", name=cfg.name, version="1", title="Fashion-MNIST · gated PixelCNN",
        description=(f"A class-conditional gated PixelCNN (van den Oord et al. 2016) with {m.layers} masked layers "
                     f"of {m.dim} channels and a {levels}-way softmax per pixel; sampled pixel by pixel through "
                     "ONNX Runtime (784 runs per batch), with an exact log-likelihood. Class 10 = no class."),
        files=[ModelFile(LOGITS_FILE, "logits"), ModelFile(CHECKPOINT_FILE, "checkpoint")],
        io={"logits": {"inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", m.channels, "height", size]},
                                  {"name": "class", "dtype": "int64", "shape": ["batch"]}],
                       "outputs": [{"name": "logits", "dtype": "float32",
                                    "shape": ["batch", levels, "height", size]}]}},
        defaults={"n_samples": 16, "seed": 0, "temperature": 1.0, "class": None},
        license=f"MIT (weights); data {fashion_mnist.LICENSE}",
        data_source=(f"{fashion_mnist.SOURCE}: {cfg.n_train} training images with their labels; measured on the "
                     f"first {cfg.n_test} test images"),
        build={"command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "seconds": seconds or {}, "versions": versions(), "trainer": cfg.trainer.to_dict(),
               "pixelcnn": m.to_dict(), "p_uncond": cfg.p_uncond,
               "data": {k: v for k, v in asdict(cfg).items() if k not in ("model", "trainer")}},
        metrics=metrics,
        extra={"dataset": "fashion-mnist", "image_shape": [m.channels, size, size], "value_range": [0.0, 1.0],
               "levels": levels, "quantisation": f"none: {levels}-way softmax over the 8-bit pixel values",
               "n_classes": m.n_classes, "null_class": m.null_class,
               "class_names": list(fashion_mnist.CLASS_NAMES), "receptive_rows": m.receptive_rows,
               "order": "raster: rows top to bottom, each left to right",
               "input": "x = pixel value / 255 (pixels not drawn yet: any value, they cannot reach earlier logits)",
               "conditioning": (f"class embedding per layer; index {m.null_class} = no class, trained on "
                                f"{cfg.p_uncond:.0%} of examples"),
               "sampling": ("one logits.onnx run per pixel over the whole batch (784 per batch), each on the rows "
                            f"r - {m.receptive_rows} .. r that can reach row r (exact); inverse-CDF draws from "
                            "numpy default_rng(seed).random((n, 784)), logits / temperature")},
    )

