"""`genstudio export flow-image`: train the multi-scale flow on Fashion-MNIST, export, measure bits/dim.

Bits per dimension on the test set, dequantised: each 8-bit image u gets uniform noise once
(x = (u + v) / 256, v ~ U[0,1)^D, seed fixed), and bpd = (-log p(x) + D log 256) / (D log 2), averaged over
the 10,000 test images. That is the standard upper bound on the discrete model's code length.
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

from genstudio.export.artifacts import publish, save_checkpoint, staging_folder
from genstudio.export.data import fashion_mnist
from genstudio.export.flow.image_flow import ImageFlow, ImageFlowConfig
from genstudio.export.flow.onnx_export import LogDensityGraph
from genstudio.export.onnx_io import ort_session, save_onnx, versions
from genstudio.export.trainer import Trainer, TrainerConfig
from genstudio.runtime.jobs import Progress
from genstudio.runtime.manifest import Manifest, ModelFile

LOG_DENSITY_FILE = "log_density.onnx"
SAMPLE_FILE = "sample.onnx"
CHECKPOINT_FILE = "flow.safetensors"


@dataclass
class ImageFlowBuild:
    name: str = "flow-fashion-mnist"  # the model folder's and manifest's name
    flow: ImageFlowConfig = field(default_factory=ImageFlowConfig)  # the architecture
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        steps=6000, batch_size=64, lr=1e-3, warmup=200, grad_clip=50.0))  # the optimisation
    data_dir: str | None = None  # Fashion-MNIST idx folder; None: Debian's
    n_train: int = 60_000  # training images used (the first n of the train split)
    n_test: int = 10_000  # test images the bits/dim is measured on
    eval_batch: int = 500  # images per forward pass when measuring
    noise_seed: int = 1234  # seeds the test set's dequantisation noise


class SampleImageGraph(torch.nn.Module):
    """z (N, D) -> image (N, C, H, W), clipped to [0, 1]."""

    def __init__(self, flow: ImageFlow) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.flow.inverse(z).clamp(0.0, 1.0)


def dequantize(images_u8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, H, W) to float32 (N, 1, H, W) in [0, 1): (u + uniform noise) / 256."""
    x = images_u8.astype(np.float32)[:, None] + rng.random((len(images_u8), 1, *images_u8.shape[1:]),
                                                          dtype=np.float32)
    return x / 256.0


def bits_per_dim(log_prob: np.ndarray, dim: int) -> np.ndarray:
    """log p of dequantised images on [0,1]^D (nats) to bits/dim of the 8-bit images."""
    return (-np.asarray(log_prob, np.float64) + dim * math.log(256.0)) / (dim * math.log(2.0))


def build_image_flow(cfg: ImageFlowBuild, out_root: Path, *, command: str,
                     on_progress: Callable[[Progress], None] | None = None) -> Path:
    started = time.perf_counter()
    report = on_progress or (lambda p: None)
    train = fashion_mnist.load("train", cfg.data_dir)
    test = fashion_mnist.load("test", cfg.data_dir)
    train_u8 = torch.from_numpy(train.images[:cfg.n_train].copy())  # (N, 28, 28) uint8
    test_u8 = test.images[:cfg.n_test]
    total = cfg.trainer.steps + 3
    torch.manual_seed(cfg.trainer.seed)
    model = ImageFlow(cfg.flow)
    dim = model.dim

    def batches(step: int, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, len(train_u8), (cfg.trainer.batch_size,), generator=gen)
        u = train_u8[idx].float()[:, None]  # (B, 1, 28, 28)
        return (u + torch.rand(u.shape, generator=gen)) / 256.0  # fresh dequantisation noise every step

    trainer = Trainer(cfg.trainer, model, lambda m, b: -m.log_prob(b).mean(), batches)
    trainer.add_callback("on_batch_end", lambda t: report(Progress(
        t.step, total, f"{cfg.name} {bits_per_dim(np.array([-t.loss]), dim)[0]:.3f} bits/dim")))
    trainer.run()
    train_seconds = trainer.elapsed

    tmp = staging_folder(out_root, cfg.name)
    save_checkpoint(model, tmp / CHECKPOINT_FILE, format="genstudio-image-flow", config=cfg.flow.to_dict())
    model.eval()
    model.freeze_inverses()
    example_x = torch.from_numpy(dequantize(test_u8[:4], np.random.default_rng(0)))
    save_onnx(LogDensityGraph(model), example_x, tmp / LOG_DENSITY_FILE, input_name="x", output_names=["log_prob"])
    save_onnx(SampleImageGraph(model), torch.randn(4, dim), tmp / SAMPLE_FILE, input_name="z", output_names=["x"])
    report(Progress(cfg.trainer.steps + 1, total, f"{cfg.name} exported"))

    rng = np.random.default_rng(cfg.noise_seed)
    x_test = dequantize(test_u8, rng)  # (n_test, 1, 28, 28)
    sess = ort_session(tmp / LOG_DENSITY_FILE)
    lp_ort = np.concatenate([sess.run(None, {"x": x_test[i:i + cfg.eval_batch]})[0]
                             for i in range(0, len(x_test), cfg.eval_batch)])
    with torch.no_grad():
        lp_torch = model.log_prob(torch.from_numpy(x_test[:cfg.eval_batch])).numpy()
        z = torch.randn(64, dim, generator=torch.Generator().manual_seed(7))
        img_torch = SampleImageGraph(model)(z).numpy()
    img_ort = ort_session(tmp / SAMPLE_FILE).run(None, {"z": z.numpy()})[0]
    bpd = bits_per_dim(lp_ort, dim)
    report(Progress(cfg.trainer.steps + 2, total, f"{cfg.name} test {bpd.mean():.3f} bits/dim"))

    metrics = {
        "test_bits_per_dim": float(bpd.mean()),
        "test_bits_per_dim_stderr": float(bpd.std() / math.sqrt(len(bpd))),
        "test_bits_per_dim_method": (
            f"mean over the {len(bpd)} Fashion-MNIST test images of (-log p(x) + D ln 256) / (D ln 2), "
            f"D = {dim}; x = (pixel + u) / 256 with one uniform dequantisation draw per image "
            f"(seed {cfg.noise_seed}); log p from log_density.onnx"),
        "train_bits_per_dim_last_100_steps": float(bits_per_dim(-np.array(trainer.losses[-100:]), dim).mean()),
        "parity": {
            "max_abs_diff_log_prob": float(np.abs(lp_torch - lp_ort[:cfg.eval_batch]).max()),
            "max_rel_diff_log_prob": float((np.abs(lp_torch - lp_ort[:cfg.eval_batch]) / np.abs(lp_torch)).max()),
            "max_abs_diff_samples": float(np.abs(img_torch - img_ort).max()),
            "n_images": cfg.eval_batch,
        },
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    manifest = Manifest(
        family="flow", name=cfg.name, version="1", title="Fashion-MNIST · multi-scale Glow",
        description=("A multi-scale Glow-style flow (logit, squeeze, actnorm, 1x1 LU convolutions, affine "
                     "couplings, factor-out) on 28x28 Fashion-MNIST; exact log-likelihood and sampling."),
        files=[ModelFile(LOG_DENSITY_FILE, "log_density"), ModelFile(SAMPLE_FILE, "sample"),
               ModelFile(CHECKPOINT_FILE, "checkpoint")],
        io={"log_density": {"inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 1, 28, 28]}],
                            "outputs": [{"name": "log_prob", "dtype": "float32", "shape": ["batch"]}]},
            "sample": {"inputs": [{"name": "z", "dtype": "float32", "shape": ["batch", dim]}],
                       "outputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 1, 28, 28]}]}},
        defaults={"n_samples": 16, "seed": 0, "temperature": 0.7},
        license=f"MIT (weights); data {fashion_mnist.LICENSE}",
        data_source=f"{fashion_mnist.SOURCE}: {cfg.n_train} training images, the {cfg.n_test} test images",
        build={"command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "seconds": {"train": round(train_seconds, 1), "total": round(time.perf_counter() - started, 1)},
               "versions": versions(), "trainer": cfg.trainer.to_dict(), "flow": cfg.flow.to_dict(),
               "data": {k: v for k, v in asdict(cfg).items() if k not in ("flow", "trainer")}},
        metrics=metrics,
        extra={"kind": "image", "dim": dim, "image_shape": [cfg.flow.channels, cfg.flow.size, cfg.flow.size],
               "value_range": [0.0, 1.0], "base": f"standard normal N(0, I) in {dim} dimensions",
               "log_prob_space": "density of x in [0,1]^D (nats); bits/dim = (-log p + D ln 256) / (D ln 2)",
               "class_names": list(fashion_mnist.CLASS_NAMES)},
    )
    manifest.save(tmp)
    final = publish(tmp, out_root, cfg.name)
    report(Progress(total, total, f"{cfg.name} test {bpd.mean():.3f} bits/dim"))
    return final
