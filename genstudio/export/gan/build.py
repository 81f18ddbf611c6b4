"""`genstudio export gan`: train a style-based GAN, export mapping and synthesis with the mean latent, measure it.

    folder = build_gan(GanBuild(dataset="synthfaces", train=GanTrainConfig(steps=2000)), out_root,
                       command="genstudio export gan ...", docs_dir=Path("docs"))

The folder (gan-<dataset>) holds mapping.onnx (z -> w), synthesis.onnx (w -> image in [0, 1]), w_avg.npy
(the mean of w over 100k draws of z: truncation pulls toward it), directions.npy (attribute directions in W,
see directions.py), curves.json (per-step losses) and the safetensors checkpoint (g, g_ema, d). The EMA generator is what ships. Parity is measured on the same z and
w through PyTorch and ONNX Runtime; FID, attribute frequencies and diversity come from the dataset's evaluator
through the same engine code the studio runs (genstudio.engines.gan). The curves go to docs/gan-curves-<dataset>.png.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from genstudio.engines import evaluate as ev
from genstudio.engines.gan import DEFAULT_TRUNCATION, GanModel, seeded_z
from genstudio.export.artifacts import publish, staging_folder
from genstudio.export.data import image_sets
from genstudio.export.gan.checkpoint import load_generator, read_metadata, restore_trainer, save_checkpoint
from genstudio.export.gan.curves import plot_curves
from genstudio.export.gan.directions import DIRECTIONS_FILE, MIN_EDIT_SUCCESS, fit_directions, save_directions
from genstudio.export.gan.generator import GanConfig, Generator, MappingGraph, SynthesisGraph
from genstudio.export.gan.metrics import TRUNCATION_SWEEP, quality
from genstudio.export.gan.train import GanTrainConfig, GanTrainer, build_models, count_params
from genstudio.export.onnx_io import ort_session, save_onnx, versions
from genstudio.runtime.jobs import Progress
from genstudio.runtime.manifest import Manifest, ModelFile
from genstudio.runtime.registry import Registry, check_folder
from genstudio.runtime.sessions import SessionConfig, SessionPool

MAPPING_FILE, SYNTHESIS_FILE, MEAN_FILE = "mapping.onnx", "synthesis.onnx", "w_avg.npy"
CURVES_FILE, CHECKPOINT_FILE = "curves.json", "gan.safetensors"

DATASET_DEFAULTS = {  # per dataset: geometry and the shipped model's settings
    "synthfaces": {"channels": 3, "size": 64, "g_widths": (64, 64, 32, 16, 8), "d_widths": (8, 16, 32, 64, 64),
                   "n_train": 12_000, "steps": 6400, "batch": 16, "r1_gamma": 0.5},
    "fashion-mnist": {"channels": 1, "size": 28, "g_widths": (128, 64, 32, 16), "d_widths": (16, 32, 64, 128),
                      "n_train": 60_000, "steps": 3000, "batch": 32, "r1_gamma": 0.5},  # renders 32x32, crops to 28
}


@dataclass
class GanBuild:
    dataset: str = "synthfaces"  # synthfaces or fashion-mnist
    gan: GanConfig = field(default_factory=GanConfig)  # the architecture (channels/size set from the dataset)
    train: GanTrainConfig = field(default_factory=GanTrainConfig)
    n_train: int = 12_000  # training images (the first n of the train split)
    n_mean: int = 100_000  # draws of z averaged into the mean latent
    n_fid: int = 2_000  # samples scored by the evaluator (0: skip, and no directions)
    n_directions: int = 20_000  # draws labelled to fit the attribute directions
    evaluator_root: str | None = None  # where eval-<dataset> lives (None: the output root)
    data_dir: str | None = None  # Fashion-MNIST idx folder; None: Debian's
    checkpoint: str | None = None  # export this training checkpoint instead of training (its curves.json beside it)

    @property
    def name(self) -> str:
        return f"gan-{self.dataset}"


def _images(dataset: str, n: int, data_dir: str | None) -> torch.Tensor:
    """Training images as float (N, C, H, W) in [-1, 1]."""
    u8, _, _ = image_sets.image_set(dataset, "train", n, data_dir=data_dir)
    x = u8[:, None] if u8.ndim == 3 else u8.transpose(0, 3, 1, 2)
    return torch.from_numpy(x.astype(np.float32) / 127.5 - 1.0)


def train_gan(cfg: GanBuild, on_progress: Callable[[Progress], None] | None = None,
              checkpoint_to: Path | None = None, every: int = 500, resume: Path | None = None,
              widen: bool = False, command: str = "", earlier: tuple[str, ...] = ()) -> GanTrainer:
    """Train from scratch, or continue the run in `resume` up to cfg.train.steps (with `widen`, in networks
    wider than the checkpoint's: see checkpoint.widen_state); with `checkpoint_to`, write a
    checkpoint (and curves.json) every `every` steps. The checkpoint's metadata lists the commands of every
    stage of the run (`earlier` ones first when the resumed checkpoint predates that record)."""
    report = on_progress or (lambda p: None)
    d = DATASET_DEFAULTS[cfg.dataset]
    cfg.gan.channels, cfg.gan.size = d["channels"], d["size"]
    g, disc = build_models(cfg.gan, cfg.train.seed)
    trainer = GanTrainer(cfg.train, g, disc, _images(cfg.dataset, cfg.n_train, cfg.data_dir))
    stages = list(earlier)
    if resume:
        restore_trainer(Path(resume), trainer, widen=widen)
        stages += json.loads(read_metadata(Path(resume)).get("stages", "[]"))
    stages += [command] if command else []

    def on_batch_end(t: GanTrainer) -> None:
        report(Progress(t.step, cfg.train.steps, f"{cfg.name} D {t.curves['d_loss'][-1]:.3f} "
                                                 f"G {t.curves['g_loss'][-1]:.3f}"))
        if checkpoint_to and (t.step % every == 0 or t.step == cfg.train.steps):
            write_run(t, cfg.gan, checkpoint_to, stages)

    trainer.add_callback("on_batch_end", on_batch_end)
    return trainer.run()


def write_run(trainer: GanTrainer, gan_cfg: GanConfig, path: Path, stages: list[str] | None = None) -> Path:
    """The checkpoint and, beside it, curves.json."""
    save_checkpoint(path, trainer, gan_cfg, **({"stages": json.dumps(stages)} if stages else {}))
    curves = {"curves": trainer.curves, "r1_steps": trainer.r1_steps}
    Path(path).with_name(CURVES_FILE).write_text(json.dumps(curves))
    return Path(path)


def build_gan(cfg: GanBuild, out_root: Path, *, command: str, docs_dir: Path | None = None,
              on_progress: Callable[[Progress], None] | None = None) -> Path:
    """Train (or load cfg.checkpoint), export, check parity, measure; returns the model folder."""
    report = on_progress or (lambda p: None)
    tmp = staging_folder(out_root, cfg.name)
    if cfg.checkpoint:
        src = Path(cfg.checkpoint)
        g_ema, meta = load_generator(src)
        cfg.gan = g_ema.cfg
        cfg.train = GanTrainConfig(**json.loads(meta["train"]))
        run = {"step": int(meta["step"]), "seconds": float(meta.get("seconds", 0.0)),
               "from_checkpoint": {"path": str(src), "step": int(meta["step"]), "train": json.loads(meta["train"]),
                                   "stages": json.loads(meta.get("stages", "[]"))}}
        cfg.train.steps = run["step"]
        curves_path = src.with_name(CURVES_FILE)
        curves = json.loads(curves_path.read_text()) if curves_path.is_file() else {"curves": {}, "r1_steps": []}
        (tmp / CHECKPOINT_FILE).write_bytes(src.read_bytes())
        d_params = sum(int(np.prod(shape)) for k, shape in _shapes(src).items() if k.startswith("d."))
    else:
        trainer = train_gan(cfg, report)
        g_ema = trainer.g_ema
        run = {"step": trainer.step, "seconds": round(trainer.elapsed, 1)}
        curves = {"curves": trainer.curves, "r1_steps": trainer.r1_steps}
        write_run(trainer, cfg.gan, tmp / CHECKPOINT_FILE)
        d_params = count_params(trainer.d)
    (tmp / CURVES_FILE).write_text(json.dumps(curves))
    total = cfg.train.steps + 3
    report(Progress(cfg.train.steps, total, f"{cfg.name} trained"))

    w_avg = g_ema.mean_w(cfg.n_mean, seed=cfg.train.seed)
    np.save(tmp / MEAN_FILE, w_avg.numpy().astype(np.float32))
    save_onnx(MappingGraph(g_ema), torch.randn(4, cfg.gan.z_dim), tmp / MAPPING_FILE, input_name="z",
              output_names=["w"])
    save_onnx(SynthesisGraph(g_ema), torch.randn(4, cfg.gan.w_dim), tmp / SYNTHESIS_FILE, input_name="w",
              output_names=["image"])
    parity = check_parity(g_ema, tmp)
    report(Progress(cfg.train.steps + 1, total, f"{cfg.name} parity {parity['max_abs_diff_image']:.1e}"))

    if docs_dir is not None:
        plot_curves(curves["curves"], curves["r1_steps"], Path(docs_dir) / f"gan-curves-{cfg.dataset}.png",
                    title=f"{cfg.name} (the command is in model.json build.command)")
    metrics: dict = {"parity": parity, "parameters": {"generator": count_params(g_ema), "discriminator": d_params},
                     "train_steps": run["step"]}
    _manifest(cfg, command=command, metrics=metrics, run=run).save(tmp)
    extra: dict = {}
    if cfg.n_fid:
        pool = SessionPool(SessionConfig(provider="cpu"))
        model = GanModel(check_folder(tmp, "shipped"), pool)
        root = Path(cfg.evaluator_root) if cfg.evaluator_root else Path(out_root)
        metrics.update(quality(model, root, cfg.n_fid, seed=cfg.train.seed, sweep=TRUNCATION_SWEEP))
        extra = _directions(model, root, pool, cfg, tmp)
    last = {k: float(np.mean(v[-100:])) for k, v in curves["curves"].items() if v}
    metrics["train_last_100_steps"] = last
    report(Progress(cfg.train.steps + 2, total, f"{cfg.name} measured"))
    _manifest(cfg, command=command, metrics=metrics, run=run, extra=extra).save(tmp)
    final = publish(tmp, out_root, cfg.name)
    report(Progress(total, total, f"{cfg.name} exported"))
    return final


def _directions(model: GanModel, evaluator_root: Path, pool: SessionPool, cfg: GanBuild, folder: Path) -> dict:
    """Fit the attribute directions with the dataset's evaluator; what model.json's extra records."""
    try:
        evaluator = ev.Evaluator.open(Registry([(evaluator_root, "shipped")]), cfg.dataset, pool)
    except LookupError as e:
        return {"directions_skipped": str(e)}
    vectors, found = fit_directions(model, evaluator, n=cfg.n_directions, seed=cfg.train.seed)
    return {**save_directions(vectors, found, folder),
            "directions_method": (f"{cfg.n_directions} draws labelled by {evaluator.entry.name}; per attribute, "
                                  "its effect on w with the other heads' labels held fixed (least squares on 80% "
                                  "of the draws), one slider unit = its length; InterFaceGAN's balanced logistic "
                                  "boundary on the same draws for comparison (accuracy on the other 20%); edits "
                                  "checked on 256 held-out draws at +-2 units, kept when at least "
                                  f"{MIN_EDIT_SUCCESS:.0%} gain the attribute")}


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def check_parity(g: Generator, folder: Path, n: int = 64, seed: int = 7) -> dict:
    """Max |PyTorch - ONNX Runtime| over n seeded z: of w, and of images from the same w, float32 both sides."""
    z = seeded_z(n, g.cfg.z_dim, seed)
    with torch.no_grad():
        w_t = g.mapping(torch.from_numpy(z)).numpy()
        img_t = g.synthesis(torch.from_numpy(w_t)).numpy()
    w_o = ort_session(folder / MAPPING_FILE).run(None, {"z": z})[0]
    img_o = ort_session(folder / SYNTHESIS_FILE).run(None, {"w": w_t})[0]
    return {"max_abs_diff_w": float(np.abs(w_t - w_o).max()), "max_abs_diff_image": float(np.abs(img_t - img_o).max()),
            "n": n, "method": f"{n} z ~ N(0, I) (numpy seed {seed}); images compared from the same w"}


def _manifest(cfg: GanBuild, *, command: str, metrics: dict, run: dict, extra: dict | None = None) -> Manifest:
    v = cfg.gan
    c, s = v.channels, v.size
    title = {"synthfaces": "SynthFaces GAN (style-based, 64x64)", "fashion-mnist": "Fashion-MNIST GAN (style-based)"}
    return Manifest(
        family="gan", name=cfg.name, version="1", title=title[cfg.dataset],
        description=(f"A small style-based GAN on {cfg.dataset}: a {v.mapping_layers}-layer mapping network z -> w "
                     f"({v.z_dim} -> {v.w_dim}) and a modulated synthesis network w -> image, exported as two graphs, "
                     "with the mean latent for truncation. The EMA generator ships."),
        files=[ModelFile(MAPPING_FILE, "mapping"), ModelFile(SYNTHESIS_FILE, "synthesis"),
               ModelFile(MEAN_FILE, "mean_latent"), ModelFile(CURVES_FILE, "training_curves"),
               ModelFile(CHECKPOINT_FILE, "checkpoint"),
               *([ModelFile(DIRECTIONS_FILE, "directions")] if (extra or {}).get("directions") else [])],
        io={"mapping": {"inputs": [{"name": "z", "dtype": "float32", "shape": ["batch", v.z_dim]}],
                        "outputs": [{"name": "w", "dtype": "float32", "shape": ["batch", v.w_dim]}]},
            "synthesis": {"inputs": [{"name": "w", "dtype": "float32", "shape": ["batch", v.w_dim]}],
                          "outputs": [{"name": "image", "dtype": "float32", "shape": ["batch", c, s, s]}]}},
        defaults={"n_samples": 16, "seed": 0, "truncation": DEFAULT_TRUNCATION, "morph_steps": 10,
                  "variation_strength": 0.3},
        license=f"MIT (weights); data {image_sets.data_license(cfg.dataset)}",
        data_source=f"{image_sets.data_source(cfg.dataset)}: {cfg.n_train} training images",
        build={"command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "seconds": {"train": run["seconds"]}, "versions": versions(), "train": cfg.train.to_dict(),
               **({"from_checkpoint": run["from_checkpoint"]} if "from_checkpoint" in run else {}),
               "gan": v.to_dict(),
               "data": {k: val for k, val in asdict(cfg).items() if k not in ("gan", "train", "checkpoint")}},
        metrics=metrics,
        extra={"dataset": cfg.dataset, "architecture": "style-based (mapping + modulated synthesis)",
               "z_dim": v.z_dim, "w_dim": v.w_dim, "image_shape": [c, s, s], "value_range": [0.0, 1.0],
               "latent": "z ~ N(0, I) from numpy default_rng(seed).standard_normal((n, z_dim))",
               "truncation": "w = w_avg + psi * (w - w_avg), w_avg in w_avg.npy", **(extra or {})},
    )


def checkpoint_info(path: Path) -> dict:
    """Step, seconds and configs recorded in a training checkpoint."""
    meta = read_metadata(path)
    return {"step": int(meta["step"]), "seconds": float(meta.get("seconds", 0)), "gan": json.loads(meta["gan"]),
            "train": json.loads(meta["train"])}
