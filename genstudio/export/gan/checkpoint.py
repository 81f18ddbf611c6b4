"""Safetensors checkpoints of a GAN run: generator, EMA generator and discriminator weights, config and step.

    save_checkpoint(path, trainer, gan_cfg)            # g.*, g_ema.*, d.* tensors; config JSON in the metadata
    g_ema, meta = load_generator(path)                 # the EMA generator, eval mode, and the metadata dict
    restore_trainer(path, trainer, widen=True)         # continue a narrower run in wider networks
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn as nn

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


def widen_state(old: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """`old`, the weights of a narrower network of `module`'s design, grown to `module`'s widths so that it draws
    (or judges) exactly what the narrower one did (Net2Net's function-preserving growth, Chen et al. 2016,
    https://arxiv.org/abs/1511.05641). The new channels keep `module`'s own fresh initialisation; only their
    way into the old channels starts at zero, so they join in as training moves those weights. Weights are
    (out, in, ...) and the equalized-lr layers scale by 1 / sqrt(fan in) at run time, so the old weights are
    scaled up by sqrt(new in / old in) to compute the same products. The flattened 4x4 features of the
    discriminator's last stage cannot grow this way (their order interleaves channels and positions), nor can
    the mapping network's z and w."""
    grown = {}
    for key, fresh in module.state_dict().items():
        if key not in old:
            raise ValueError(f"the checkpoint has no {key!r}: not the same design")
        t = old[key]
        if t.shape == fresh.shape:
            grown[key] = t
            continue
        if t.ndim != fresh.ndim or any(a > b for a, b in zip(t.shape, fresh.shape, strict=True)):
            raise ValueError(f"{key}: {tuple(t.shape)} cannot grow to {tuple(fresh.shape)} (only wider)")
        if key.endswith("fc.weight"):
            raise ValueError("the discriminator's last width cannot change when a run is widened")
        if key.startswith("mapping."):  # z is normalised over its dimensions: a wider z or w is another function
            raise ValueError("the z and w dimensions cannot change when a run is widened")
        new = fresh.detach().clone()
        if key.endswith("weight") and t.ndim >= 2:
            c_out, c_in = t.shape[:2]
            new[:c_out, c_in:] = 0.0  # the new inputs do not reach the old outputs (yet)
            new[:c_out, :c_in] = t * math.sqrt(fresh.shape[1] / c_in)  # same run-time weight under the wider fan in
        else:  # biases, styles' biases, the learned constant: the old values first, the fresh ones after
            new[tuple(slice(0, n) for n in t.shape)] = t
        grown[key] = new
    return grown


def restore_trainer(path: Path, trainer, *, widen: bool = False) -> None:
    """Continue a run: g, g_ema and d weights, the step and the seconds from a checkpoint (with curves.json
    beside it when present). Adam's moments are not stored; with beta1 = 0 they rebuild within a few steps.
    With `widen`, the checkpoint may be narrower than the trainer's networks: its weights are grown to them
    (widen_state), and g and g_ema get the same new channels, since the trainer made g_ema as a copy of g."""
    meta = read_metadata(path)
    for prefix, module in (("g", trainer.g), ("g_ema", trainer.g_ema), ("d", trainer.d)):
        state = load_state(path, prefix)
        module.load_state_dict(widen_state(state, module) if widen else state)
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
