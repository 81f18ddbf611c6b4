"""Safetensors checkpoints of a GAN run: generator, EMA generator and discriminator weights, config and step.

    save_checkpoint(path, trainer, gan_cfg)            # g.*, g_ema.*, d.* tensors; config JSON in the metadata
    g_ema, meta = load_generator(path)                 # the EMA generator, eval mode, and the metadata dict
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genstudio.export.gan.generator import GanConfig, Generator

FORMAT, VERSION = "genstudio-gan", "1"


def save_checkpoint(path: Path, trainer, cfg: GanConfig, **extra: str) -> Path:
    """Write g.*, g_ema.* and d.* to one safetensors file (atomically); metadata holds config, step, version."""
    from safetensors.torch import save_file

    tensors = {}
    for prefix, module in (("g", trainer.g), ("g_ema", trainer.g_ema), ("d", trainer.d)):
        tensors.update({f"{prefix}.{k}": v.detach().contiguous().clone() for k, v in module.state_dict().items()})
    meta = {"format": FORMAT, "version": VERSION, "gan": json.dumps(cfg.to_dict()), "step": str(trainer.step),
            "train": json.dumps(trainer.config.to_dict()), "seconds": f"{trainer.elapsed:.1f}", **extra}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} checkpoint (format {meta.get('format')!r})")
    return meta


def load_state(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in load_file(str(path)).items() if k.startswith(prefix + ".")}


def restore_trainer(path: Path, trainer) -> None:
    """Continue a run: g, g_ema and d weights, the step and the seconds from a checkpoint (with curves.json
    beside it when present). Adam's moments are not stored; with beta1 = 0 they rebuild within a few steps."""
    meta = read_metadata(path)
    for prefix, module in (("g", trainer.g), ("g_ema", trainer.g_ema), ("d", trainer.d)):
        module.load_state_dict(load_state(path, prefix))
    trainer.step = int(meta["step"])
    trainer.elapsed = float(meta.get("seconds", 0.0))
    trainer.gen.manual_seed(trainer.config.seed * 1_000_003 + trainer.step)  # fresh batches, still deterministic
    curves = Path(path).with_name("curves.json")
    if curves.is_file():
        saved = json.loads(curves.read_text())
        trainer.curves = {k: list(saved["curves"].get(k, [])) for k in trainer.curves}
        trainer.r1_steps = list(saved.get("r1_steps", []))


def load_generator(path: Path, which: str = "g_ema") -> tuple[Generator, dict]:
    """A generator from a checkpoint (`which`: "g_ema" or "g"), in eval mode, and the checkpoint's metadata."""
    meta = read_metadata(path)
    g = Generator(GanConfig.from_dict(json.loads(meta["gan"])))
    g.load_state_dict(load_state(path, which))
    return g.eval().requires_grad_(False), meta
