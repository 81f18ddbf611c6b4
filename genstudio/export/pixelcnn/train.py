"""Training a PixelCNN on Fashion-MNIST, and the safetensors checkpoints of a run.

    trainer = train_pixelcnn(model_cfg, trainer_cfg, images_u8, labels, p_uncond=0.2, on_progress=bar,
                             checkpoint_to=Path("run/pixelcnn.safetensors"))
    model, meta = load_checkpoint(Path("run/pixelcnn.safetensors"))   # eval mode; meta: step, configs, losses

Each step draws a random batch of training images (with replacement, from the trainer's seeded generator)
and replaces a share p_uncond of their labels with the null class, so one network learns p(x | class) and
p(x). The loss is the exact negative log-likelihood of the 8-bit pixels in nats per dimension.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from genstudio.export.pixelcnn.model import PixelCNN, PixelCnnConfig
from genstudio.export.trainer import Trainer, TrainerConfig
from genstudio.runtime.jobs import Progress

FORMAT, VERSION = "genstudio-pixelcnn", "1"


def batch_sampler(images_u8: np.ndarray, labels: np.ndarray, batch_size: int, p_uncond: float, null_class: int
                  ) -> Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """batches(step, gen) -> (pixel values int64 (B, 1, H, W), classes int64 (B,)) with some labels dropped."""
    x = torch.from_numpy(np.ascontiguousarray(images_u8))  # (N, H, W) uint8
    y = torch.from_numpy(np.asarray(labels, np.int64).reshape(-1))

    def batches(step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(x), (batch_size,), generator=gen)
        cls = y[idx].clone()
        cls[torch.rand(batch_size, generator=gen) < p_uncond] = null_class
        return x[idx].long()[:, None], cls  # (B, 1, H, W), (B,)

    return batches


def save_run(path: Path, model: PixelCNN, trainer: Trainer, *, p_uncond: float, stages: list[str] | None = None
             ) -> Path:
    """Weights, configs, step, seconds and every step's loss (nats/dim) in one safetensors file, atomically."""
    from safetensors.torch import save_file

    meta = {"format": FORMAT, "version": VERSION, "config": json.dumps(model.cfg.to_dict()),
            "trainer": json.dumps(trainer.config.to_dict()), "step": str(trainer.step),
            "seconds": f"{trainer.elapsed:.1f}", "p_uncond": repr(p_uncond),
            "losses": json.dumps([round(v, 5) for v in trainer.losses]), "stages": json.dumps(stages or [])}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_metadata(path: Path) -> dict:
    """The checkpoint's metadata with its JSON fields parsed."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} checkpoint (format {meta.get('format')!r})")
    for key in ("config", "trainer", "losses", "stages"):
        meta[key] = json.loads(meta.get(key, "null") or "null")
    meta["step"] = int(meta["step"])
    meta["seconds"] = float(meta.get("seconds", 0.0))
    meta["p_uncond"] = float(meta.get("p_uncond", "nan"))
    return meta


def load_checkpoint(path: Path) -> tuple[PixelCNN, dict]:
    """The model in eval mode and the checkpoint's metadata."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    model = PixelCNN(PixelCnnConfig(**meta["config"]))
    model.load_state_dict(load_file(str(path)))
    return model.eval(), meta


def train_pixelcnn(model_cfg: PixelCnnConfig, trainer_cfg: TrainerConfig, images_u8: np.ndarray, labels: np.ndarray,
                   *, p_uncond: float, on_progress: Callable[[Progress], None] | None = None,
                   checkpoint_to: Path | None = None, every: int = 500, stages: list[str] | None = None,
                   total: int | None = None) -> tuple[PixelCNN, Trainer]:
    """Train from scratch (seeded by trainer_cfg.seed); with checkpoint_to, write the run there every `every` steps
    and at the end. Progress messages give the training loss in bits/dim."""
    report = on_progress or (lambda p: None)
    torch.manual_seed(trainer_cfg.seed)
    model = PixelCNN(model_cfg)
    batches = batch_sampler(images_u8, labels, trainer_cfg.batch_size, p_uncond, model_cfg.null_class)
    trainer = Trainer(trainer_cfg, model, lambda m, b: m.loss(*b), batches)
    ln2 = float(np.log(2.0))

    def on_batch_end(t: Trainer) -> None:
        recent = t.losses[-50:]
        report(Progress(t.step, total or trainer_cfg.steps,
                        f"{sum(recent) / len(recent) / ln2:.3f} bits/dim (train, last {len(recent)} steps)"))
        if checkpoint_to and (t.step % every == 0 or t.step == trainer_cfg.steps):
            save_run(checkpoint_to, model, t, p_uncond=p_uncond, stages=stages)

    trainer.add_callback("on_batch_end", on_batch_end)
    trainer.run()
    if checkpoint_to:  # a stop between checkpoints still leaves the last step on disk
        save_run(checkpoint_to, model, trainer, p_uncond=p_uncond, stages=stages)
    return model.eval(), trainer
