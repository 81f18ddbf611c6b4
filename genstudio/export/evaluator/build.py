"""`genstudio export evaluator`: train the feature/classifier CNN for a dataset, export it, ship its test statistics.

    folder = build_evaluator(EvaluatorBuild(dataset="fashion-mnist"), out_root, command="genstudio export ...")

The folder (eval-<dataset>) holds evaluator.onnx (x (N, C, S, S) in [0, 1] -> features (N, 128),
logits_<head> (N, classes)), reference.npz (test-set feature mean and covariance, a feature subset and
its labels: FID and precision/recall need no dataset at run time) and the safetensors checkpoint.
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
import torch.nn.functional as F

from genstudio.engines import evaluate as ev
from genstudio.export.artifacts import publish, save_checkpoint, staging_folder
from genstudio.export.data import image_sets
from genstudio.export.evaluator.model import EvalGraph, EvalNet, EvalNetConfig
from genstudio.export.onnx_io import ort_session, save_onnx, versions
from genstudio.export.trainer import Trainer, TrainerConfig
from genstudio.runtime.jobs import Progress
from genstudio.runtime.manifest import Manifest, ModelFile

MODEL_FILE = "evaluator.onnx"
REFERENCE_FILE = "reference.npz"
CHECKPOINT_FILE = "evaluator.safetensors"

# Per dataset: input geometry, how other sizes are fitted, the feature name tables print, defaults.
DATASET_SPECS = {
    "fashion-mnist": {"channels": 1, "size": 28, "fit": "centre", "feature_name": "genstudio-eval-fmnist",
                      "widths": (24, 48, 96), "n_train": 60_000, "n_test": 10_000, "steps": 1400},
    "synthfaces": {"channels": 3, "size": 64, "fit": "resize", "feature_name": "genstudio-eval-synthfaces",
                   "widths": (24, 48, 96, 128), "n_train": 12_000, "n_test": 2_000, "steps": 2000,
                   # The heads prompt adherence is judged on. With 14 heads at equal weight, the fine-detail ones
                   # starve: round vs square glasses and sad vs neutral stay coin flips (docs/evaluator.md).
                   "head_weights": {"hair_colour": 2.0, "expression": 4.0, "glasses": 4.0}},
}


@dataclass
class EvaluatorBuild:
    dataset: str = "fashion-mnist"  # fashion-mnist or synthfaces
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        steps=1400, batch_size=128, lr=3e-3, weight_decay=1e-4, warmup=50, grad_clip=5.0))
    n_train: int = 0  # training images (0: the dataset's default above)
    n_test: int = 0  # test images for accuracy and the reference statistics (0: default)
    n_reference_features: int = 2000  # test features shipped for precision/recall (float16)
    widths: tuple[int, ...] = ()  # conv stage widths (empty: the dataset's default)
    stem: int = 0  # channels of a full-resolution conv before the first stage (0: none)
    head_weights: dict[str, float] | None = None  # loss weight per head, others 1 (None: the dataset's default)
    resize_augment: float = 0.3  # SynthFaces: share of training images shrunk to 32/48 and back
    data_dir: str | None = None  # Fashion-MNIST idx folder; None: Debian's

    @property
    def name(self) -> str:
        return f"eval-{self.dataset}"

    @property
    def spec(self) -> dict:
        return DATASET_SPECS[self.dataset]

    @property
    def weights(self) -> dict[str, float]:
        """The loss weight of each named head (unnamed heads weigh 1)."""
        return dict(self.spec.get("head_weights", {}) if self.head_weights is None else self.head_weights)


def _to_float(images_u8: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, 3) to float32 (N, C, H, W) in [0, 1]."""
    return ev.to_nchw_float(images_u8) if channels == 3 else images_u8.astype(np.float32)[:, None] / 255.0


def shrink_and_grow(x: np.ndarray, sizes: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Each image down to a random side in `sizes` and back up: what a 32/48-pixel generator looks like."""
    out = x.copy()
    side = x.shape[-1]
    for s in sizes:
        pick = rng.random(len(x)) < 1.0 / len(sizes)
        if pick.any():
            out[pick] = ev.resize(ev.resize(x[pick], s), side)
    return out


class HeadWeightsError(ValueError):
    """Head weights that name no head of the dataset, or are not finite and positive."""


def check_head_weights(dataset: str, weights: dict[str, float]) -> dict[str, float]:
    """`weights` when every name is a head of `dataset` and every weight is finite and > 0; else HeadWeightsError."""
    heads = image_sets.heads(dataset)
    unknown = sorted(set(weights) - set(heads))
    if unknown:
        raise HeadWeightsError(f"head weights name unknown heads {unknown}; {dataset} has {list(heads)}")
    for name, w in weights.items():
        if not (math.isfinite(w) and w > 0):
            raise HeadWeightsError(f"the weight of head {name!r} must be a finite number above 0, not {w}")
    return weights


def weighted_head_loss(logits: dict[str, torch.Tensor], y: torch.Tensor, weights: dict[str, float]) -> torch.Tensor:
    """Cross-entropy of each head (column i of y is head i's labels), averaged with `weights` (others 1)."""
    w = [weights.get(h, 1.0) for h in logits]
    losses = [F.cross_entropy(lg, y[:, i]) for i, lg in enumerate(logits.values())]
    return sum(wi * li for wi, li in zip(w, losses, strict=True)) / sum(w)


def build_evaluator(cfg: EvaluatorBuild, out_root: Path, *, command: str,
                    on_progress: Callable[[Progress], None] | None = None) -> Path:
    """Train, export, check parity and measure; returns the model folder (replaced atomically)."""
    started = time.perf_counter()
    report = on_progress or (lambda p: None)
    weights = check_head_weights(cfg.dataset, cfg.weights)  # before any data is read or rendered
    spec = cfg.spec
    n_train, n_test = cfg.n_train or spec["n_train"], cfg.n_test or spec["n_test"]
    train_u8, train_y, heads = image_sets.image_set(cfg.dataset, "train", n_train, data_dir=cfg.data_dir)
    test_u8, test_y, _ = image_sets.image_set(cfg.dataset, "test", n_test, data_dir=cfg.data_dir)
    channels, size = spec["channels"], spec["size"]
    x_train = torch.from_numpy(_to_float(train_u8, channels))  # (N, C, S, S)
    y_train = torch.from_numpy(train_y.astype(np.int64))  # (N, heads)
    x_test = _to_float(test_u8, channels)
    net_cfg = EvalNetConfig(channels=channels, size=size, widths=tuple(cfg.widths or spec["widths"]),
                            stem=cfg.stem, heads={k: len(v) for k, v in heads.items()})
    torch.manual_seed(cfg.trainer.seed)
    net = EvalNet(net_cfg)
    aug_rng = np.random.default_rng(cfg.trainer.seed + 1)
    total = cfg.trainer.steps + 2

    def batches(step: int, gen: torch.Generator):
        idx = torch.randint(0, len(x_train), (cfg.trainer.batch_size,), generator=gen)
        x = x_train[idx]
        if cfg.dataset == "synthfaces" and cfg.resize_augment > 0:
            pick = aug_rng.random(len(x)) < cfg.resize_augment
            if pick.any():
                x = x.clone()
                x[torch.from_numpy(pick)] = torch.from_numpy(
                    shrink_and_grow(x[torch.from_numpy(pick)].numpy(), (32, 48), aug_rng))
        return x, y_train[idx]

    def loss_fn(model: EvalNet, batch) -> torch.Tensor:
        x, y = batch
        _, logits = model(x)
        return weighted_head_loss(logits, y, weights)

    trainer = Trainer(cfg.trainer, net, loss_fn, batches)
    trainer.add_callback("on_batch_end", lambda t: report(Progress(t.step, total, f"{cfg.name} loss {t.loss:.3f}")))
    trainer.run()
    net.eval()

    tmp = staging_folder(out_root, cfg.name)
    save_checkpoint(net, tmp / CHECKPOINT_FILE, format="genstudio-evaluator", config=net_cfg.to_dict())
    head_outputs = [f"logits_{h}" for h in heads]
    save_onnx(EvalGraph(net), torch.from_numpy(x_test[:4]), tmp / MODEL_FILE, input_name="x",
              output_names=["features", *head_outputs])
    report(Progress(cfg.trainer.steps + 1, total, f"{cfg.name} exported"))

    # parity and the test-set numbers, all through ONNX Runtime (what the studio will see)
    sess = ort_session(tmp / MODEL_FILE)
    outs = [sess.run(None, {"x": x_test[i:i + 500]}) for i in range(0, len(x_test), 500)]
    feats = np.concatenate([o[0] for o in outs])
    logits = {h: np.concatenate([o[1 + j] for o in outs]) for j, h in enumerate(heads)}
    with torch.no_grad():
        f_t, lg_t = net(torch.from_numpy(x_test[:256]))
    parity = {"max_abs_diff_features": float(np.abs(f_t.numpy() - feats[:256]).max()),
              "max_abs_diff_logits": float(max(np.abs(lg_t[h].numpy() - logits[h][:256]).max() for h in heads)),
              "n_images": 256}
    accuracy = {h: round(ev.class_accuracy(logits[h], test_y[:, j]), 4) for j, h in enumerate(heads)}
    mu, sigma = ev.feature_stats(feats)
    n_ref = min(cfg.n_reference_features, len(feats))
    np.savez(tmp / REFERENCE_FILE, mu=mu, sigma=sigma, features=feats[:n_ref].astype(np.float16),
             labels=test_y[:n_ref])
    metrics: dict = {
        "test_accuracy": accuracy,
        "test_accuracy_method": f"arg-max of each head on the first {len(x_test)} test images, through ONNX Runtime",
        "parity": parity,
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "train_loss_last_100_steps": float(np.mean(trainer.losses[-100:])),
    }
    # floors for the tables: real training images scored against the test statistics
    n_base = min(len(train_u8), len(x_test))
    x_base = _to_float(train_u8[:n_base], channels)
    f_base = np.concatenate([sess.run(["features"], {"x": x_base[i:i + 500]})[0] for i in range(0, n_base, 500)])
    metrics["fid_train_vs_test"] = round(ev.frechet_distance(*ev.feature_stats(f_base), mu, sigma), 4)
    metrics["precision_recall_train_vs_test"] = ev.precision_recall(feats[:n_ref], f_base[:n_ref], k=5)
    metrics["floor_method"] = (f"{n_base} training images against the {len(x_test)} test images: what a perfect "
                               "generator would score with this many samples")
    if cfg.dataset == "synthfaces":  # a 32-pixel generator's images are judged after the same resize
        small = ev.resize(ev.resize(x_test, 32), size)
        lg32 = sess.run(head_outputs, {"x": small[:1000]})
        metrics["test_accuracy_from_32px"] = {h: round(ev.class_accuracy(lg, test_y[:1000, j]), 4)
                                              for j, (h, lg) in enumerate(zip(heads, lg32, strict=True))}
    manifest = _manifest(cfg, net_cfg, heads, metrics, command=command,
                         seconds={"train": round(trainer.elapsed, 1), "total": round(time.perf_counter() - started, 1)},
                         n_train=len(x_train), n_test=len(x_test))
    manifest.save(tmp)
    final = publish(tmp, out_root, cfg.name)
    report(Progress(total, total, f"{cfg.name} accuracy {accuracy}"))
    return final


def _manifest(cfg: EvaluatorBuild, net_cfg: EvalNetConfig, heads: dict[str, list[str]], metrics: dict, *,
              command: str, seconds: dict, n_train: int, n_test: int) -> Manifest:
    spec = cfg.spec
    c, s = spec["channels"], spec["size"]
    title = {"fashion-mnist": "Fashion-MNIST evaluator", "synthfaces": "SynthFaces evaluator"}[cfg.dataset]
    fit_text = ("larger inputs (e.g. 32x32) are centre-cropped, smaller ones zero-padded: the inverse of padding "
                "28x28 to 32x32" if spec["fit"] == "centre" else
                "other sizes (32, 48) are resized with an antialiased bilinear filter (engines.evaluate.resize)")
    return Manifest(
        family="evaluator", name=cfg.name, version="1", title=title,
        description=(f"A small CNN classifier on {cfg.dataset}: its {net_cfg.feature_dim}-d penultimate features "
                     f"give the Frechet distance reported as 'FID ({spec['feature_name']} features)', its heads "
                     f"measure class/attribute accuracy of generated images. Input {c}x{s}x{s} in [0, 1]; {fit_text}."),
        files=[ModelFile(MODEL_FILE, "evaluator"), ModelFile(REFERENCE_FILE, "reference"),
               ModelFile(CHECKPOINT_FILE, "checkpoint")],
        io={"evaluator": {"inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", c, s, s]}],
                          "outputs": [{"name": "features", "dtype": "float32", "shape": ["batch", net_cfg.feature_dim]},
                                      *[{"name": f"logits_{h}", "dtype": "float32", "shape": ["batch", len(v)]}
                                        for h, v in heads.items()]]}},
        license=f"MIT (weights); data {image_sets.data_license(cfg.dataset)}",
        data_source=f"{image_sets.data_source(cfg.dataset)}: {n_train} training, {n_test} test images",
        build={"command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "seconds": seconds, "versions": versions(), "trainer": cfg.trainer.to_dict(),
               "net": net_cfg.to_dict(),
               "data": {**{k: v for k, v in asdict(cfg).items() if k != "trainer"}, "head_weights": cfg.weights}},
        metrics=metrics,
        extra={"dataset": cfg.dataset, "image_size": s, "channels": c, "value_range": [0.0, 1.0],
               "fit": spec["fit"], "feature_name": spec["feature_name"], "feature_dim": net_cfg.feature_dim,
               "heads": heads,
               "reference": "reference.npz: mu (D,), sigma (D, D) of the test-set features; features "
                            "(first n, float16) and labels (n, heads) for precision/recall"},
    )
