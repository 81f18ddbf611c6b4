"""`genstudio export flow`: train a 2-D flow on one density, export its graphs, check parity, write model.json.

    folder = build_flow2d(Flow2DBuild(density="moons", arch="glow"), out_root, command="genstudio export ...")

The folder (flow-<density>-<arch>) holds log_density.onnx, sample.onnx, the safetensors checkpoint,
train.npy (training points for the viewer's histogram) and heldout.npy (the held-out set every NLL
in model.json is measured on), so the studio and `genstudio evaluate flow` never need torch.
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
from genstudio.export.flow import densities
from genstudio.export.flow.flow2d import Flow2D, FlowConfig
from genstudio.export.flow.onnx_export import export_flow2d, parity_flow2d
from genstudio.export.onnx_io import ort_session, versions
from genstudio.export.trainer import Trainer, TrainerConfig
from genstudio.runtime.jobs import Progress
from genstudio.runtime.manifest import Manifest, ModelFile

CHECKPOINT_FILE = "flow.safetensors"
TRAIN_FILE = "train.npy"
HELDOUT_FILE = "heldout.npy"


@dataclass
class Flow2DBuild:
    density: str = "moons"  # one of densities.NAMES
    arch: str = "realnvp"  # realnvp, glow or spline
    flow: FlowConfig = field(default_factory=FlowConfig)  # the architecture (its arch is overwritten)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(steps=6000))  # the optimisation
    n_train: int = 100_000  # a fixed training set drawn once from the density
    n_heldout: int = 10_000  # held-out points, shipped as heldout.npy; every NLL is measured on them
    n_shipped_train: int = 20_000  # training points shipped for the viewer's histogram (float16)
    integral_grid: int = 512  # the grid of the integral check (cells per side)
    timing_grid: int = 256  # the density grid timed through ONNX Runtime and PyTorch eager
    data_seed: int = 0  # seeds the training and held-out draws

    @property
    def name(self) -> str:
        return f"flow-{self.density}-{self.arch}"


def build_flow2d(cfg: Flow2DBuild, out_root: Path, *, command: str,
                 on_progress: Callable[[Progress], None] | None = None) -> Path:
    """Train, export and measure one model; returns its folder under out_root (replaced atomically)."""
    started = time.perf_counter()
    report = on_progress or (lambda p: None)
    density = densities.get(cfg.density)
    cfg.flow.arch = cfg.arch
    rng = np.random.default_rng(cfg.data_seed)
    train = density.sample(cfg.n_train, rng)  # (n_train, 2) float32
    heldout = density.sample(cfg.n_heldout, rng)  # (n_heldout, 2) float32

    torch.manual_seed(cfg.trainer.seed)
    model = Flow2D(cfg.flow)
    train_t = torch.from_numpy(train)
    model.standardize.fit(train_t)
    total = cfg.trainer.steps + 3

    def batches(step: int, gen: torch.Generator) -> torch.Tensor:
        return train_t[torch.randint(0, len(train_t), (cfg.trainer.batch_size,), generator=gen)]

    trainer = Trainer(cfg.trainer, model, lambda m, b: -m.log_prob(b).mean(), batches)
    trainer.add_callback("on_batch_end", lambda t: report(
        Progress(t.step, total, f"{cfg.name} nll {t.loss:.3f}")))
    trainer.run()
    train_seconds = trainer.elapsed

    tmp = staging_folder(out_root, cfg.name)
    save_checkpoint(model, tmp / CHECKPOINT_FILE, format="genstudio-flow2d", config=cfg.flow.to_dict())
    np.save(tmp / TRAIN_FILE, train[:cfg.n_shipped_train].astype(np.float16))
    np.save(tmp / HELDOUT_FILE, heldout)
    files = export_flow2d(model, tmp)
    report(Progress(cfg.trainer.steps + 1, total, f"{cfg.name} exported"))

    pz = np.random.default_rng(cfg.data_seed + 1).standard_normal((4096, 2)).astype(np.float32)
    parity = parity_flow2d(model, tmp, heldout[:4096], pz)
    report(Progress(cfg.trainer.steps + 2, total, f"{cfg.name} parity {parity['max_abs_diff_log_prob']:.1e}"))

    metrics = measure_flow2d(model, tmp, density, heldout, cfg)
    metrics["parity"] = parity
    metrics["train_nll_nats_last_100_steps"] = float(np.mean(trainer.losses[-100:]))
    manifest = _manifest(cfg, density, model, files, metrics, command=command,
                         seconds={"train": round(train_seconds, 1), "total": 0.0})
    manifest.build["seconds"]["total"] = round(time.perf_counter() - started, 1)
    manifest.save(tmp)
    final = publish(tmp, out_root, cfg.name)
    report(Progress(total, total, f"{cfg.name} nll {metrics['heldout_nll_nats']:.3f}"))
    return final


def measure_flow2d(model: Flow2D, folder: Path, density: densities.Density, heldout: np.ndarray,
                   cfg: Flow2DBuild) -> dict:
    """Held-out NLL, the true entropy, the integral check and the grid timing, all through the ONNX graph."""
    sess = ort_session(folder / "log_density.onnx")
    nll = -sess.run(None, {"x": heldout})[0].astype(np.float64)
    ent = density.entropy()
    pts, area = densities.grid(density.range, cfg.integral_grid)
    logp = np.concatenate([sess.run(None, {"x": pts[i:i + 65536].astype(np.float32)})[0]
                           for i in range(0, len(pts), 65536)])
    true_mass = float(np.exp(density.log_prob(pts)).sum() * area)
    return {
        "heldout_nll_nats": float(nll.mean()),
        "heldout_nll_stderr": float(nll.std() / math.sqrt(len(nll))),
        "heldout_nll_method": f"mean -log p(x) in nats over the {len(nll)} points of {HELDOUT_FILE}, "
                              "through log_density.onnx",
        "true_entropy_nats": ent.nats,
        "true_entropy_exact": ent.exact,
        "true_entropy_method": ent.method,
        "kl_estimate_nats": float(nll.mean()) - ent.nats,
        "integral": {
            "value": float(np.exp(logp.astype(np.float64)).sum() * area),
            "true_mass_in_range": true_mass,
            "grid": cfg.integral_grid,
            "range": list(density.range),
            "method": "midpoint rule: sum of p(x) * cell area over the plotting range, p from log_density.onnx",
        },
        "timing": time_grid(model, folder, density.range, cfg.timing_grid),
    }


def time_grid(model: Flow2D, folder: Path, range_: densities.Range, n: int, repeats: int = 7) -> dict:
    """The n x n log-density grid through ONNX Runtime and through PyTorch eager, same threads, median ms."""
    threads = torch.get_num_threads()
    sess = ort_session(folder / "log_density.onnx", threads=threads)
    pts = densities.grid(range_, n)[0].astype(np.float32)
    pts_t = torch.from_numpy(pts)

    def median_ms(fn) -> float:
        fn()  # warm up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        return float(np.median(times))

    with torch.no_grad():
        eager = median_ms(lambda: model.log_prob(pts_t))
    ort_ms = median_ms(lambda: sess.run(None, {"x": pts}))
    return {"grid": n, "threads": threads, "onnxruntime_ms": round(ort_ms, 2), "torch_eager_ms": round(eager, 2),
            "torch_over_onnxruntime": round(eager / ort_ms, 2),
            "method": f"median of {repeats} runs of one {n}x{n} batch after a warm-up, one process, "
                      "intra-op threads equal on both sides"}


def _manifest(cfg: Flow2DBuild, density: densities.Density, model: Flow2D, files: dict[str, str],
              metrics: dict, *, command: str, seconds: dict) -> Manifest:
    arch_title = {"realnvp": "RealNVP", "glow": "Glow", "spline": "Neural spline"}[cfg.arch]
    io_spec = {
        "log_density": {"inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 2]}],
                        "outputs": [{"name": "log_prob", "dtype": "float32", "shape": ["batch"]}]},
        "sample": {"inputs": [{"name": "z", "dtype": "float32", "shape": ["batch", 2]}],
                   "outputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 2]},
                               {"name": "layers", "dtype": "float32", "shape": [model.n_layers + 1, "batch", 2]}]},
    }
    source = ("the app icon resources/icons/genstudio-256.png, pixels weighted by alpha x brightness"
              if cfg.density == "icon" else "synthetic")
    return Manifest(
        family="flow", name=cfg.name, version="1",
        title=f"{density.title} · {arch_title}",
        description=(f"A {arch_title} normalizing flow ({model.n_layers} invertible layers) trained by maximum "
                     f"likelihood on the '{cfg.density}' 2-D density; exact log p(x) and layer-by-layer sampling."),
        files=[ModelFile(files["log_density"], "log_density"), ModelFile(files["sample"], "sample"),
               ModelFile(TRAIN_FILE, "train_samples"), ModelFile(HELDOUT_FILE, "heldout_samples"),
               ModelFile(CHECKPOINT_FILE, "checkpoint")],
        io=io_spec,
        defaults={"grid": 256, "n_samples": 1000, "seed": 0},
        license="MIT",
        data_source=f"{source}: genstudio.export.flow.densities.get({cfg.density!r}), "
                    f"{cfg.n_train} training and {cfg.n_heldout} held-out points drawn with seed {cfg.data_seed}",
        build={"command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "seconds": seconds, "versions": versions(), "trainer": cfg.trainer.to_dict(),
               "flow": cfg.flow.to_dict(),
               "data": {k: v for k, v in asdict(cfg).items() if k not in ("flow", "trainer")}},
        metrics=metrics,
        extra={"kind": "2d", "density": cfg.density, "density_title": density.title, "arch": cfg.arch,
               "range": list(density.range), "n_layers": model.n_layers, "layer_names": model.layer_names(),
               "base": "standard normal N(0, I) in 2-D", "log_base": "natural (nats)"},
    )
