"""Safetensors checkpoints of a diffusion run: raw and EMA weights, the losses, every config and the tokenizer.

    save_checkpoint(path, run, meta)          # model.*, ema.*, train.loss; metadata: configs as JSON strings
    model, meta = load_model(path)            # the EMA model (eval mode) and the metadata
    tok = Tokenizer.from_str(meta["tokenizer"])

One file holds everything an export or a resume needs; no pickles, no optimizer state (a resumed run warms
AdamW up again). A shipped model's file (EMA weights only) resumes too: the raw weights start from the EMA ones
and new attribute heads are fitted to the frozen text encoder (`warm_start` in the metadata says so).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genstudio.export.diffusion.text_encoder import TextConfig
from genstudio.export.diffusion.train import DiffusionModel, DiffusionRun
from genstudio.export.diffusion.unet import UNetConfig
from genstudio.export.diffusion.widen import factor_between, widen_unet

FORMAT, VERSION = "genstudio-diffusion", "1"


def save_checkpoint(path: Path, run: DiffusionRun, meta: dict[str, str]) -> Path:
    """Write model.*, ema.* and train.loss atomically; `meta` (strings) joins format, version, step, seconds."""
    from safetensors.torch import save_file

    tensors = {}
    for prefix, module in (("model", run.model), ("ema", run.ema)):
        tensors.update({f"{prefix}.{k}": v.detach().contiguous().clone() for k, v in module.state_dict().items()})
    tensors["train.loss"] = torch.tensor(run.losses, dtype=torch.float32)
    if run.heads is not None:  # the text_aux objective: its heads and losses, so a resume carries on with them
        tensors.update({f"heads.{k}": v.detach().contiguous().clone() for k, v in run.heads.state_dict().items()})
        tensors["train.aux_loss"] = torch.tensor(run.aux_losses, dtype=torch.float32)
    meta = {"format": FORMAT, "version": VERSION, "step": str(run.step), "seconds": f"{run.seconds:.1f}",
            "ema_from": str(run.ema_from), "train": json.dumps(run.config.to_dict()), **meta}
    if run.pretrain:
        meta["pretrain"] = json.dumps(run.pretrain)
    if run.warm_start:
        meta["warm_start"] = json.dumps(run.warm_start)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def save_ema_only(src: Path, dest: Path) -> Path:
    """The checkpoint a model folder ships: the EMA weights (what the graphs were exported from) and the losses,
    with src's metadata; half the size. Resuming a run needs the full file that --checkpoint-to wrote."""
    from safetensors.torch import load_file, save_file

    meta = {**read_metadata(src), "weights": "ema only (the raw weights stay in the training checkpoint)"}
    tensors = {k: v for k, v in load_file(str(src)).items() if not k.startswith(("model.", "heads."))}
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".part")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(dest)
    return dest


def read_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} checkpoint (format {meta.get('format')!r})")
    return meta


def configs(meta: dict[str, str]) -> tuple[TextConfig, UNetConfig]:
    return TextConfig(**json.loads(meta["text"])), UNetConfig.from_dict(json.loads(meta["unet"]))


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def load_tensors(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return _prefixed(load_file(str(path)), prefix)


def _curves(tensors: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    return {k: v.tolist() for k, v in _prefixed(tensors, "train").items()}


def load_curves(path: Path) -> dict[str, list[float]]:
    """The per-step curves: "loss" (every run) and "aux_loss" (runs with the text_aux objective)."""
    from safetensors.torch import load_file

    return _curves(load_file(str(path)))


def load_losses(path: Path) -> list[float]:
    return load_curves(path).get("loss", [])


def load_model(path: Path, which: str = "ema") -> tuple[DiffusionModel, dict[str, str]]:
    """The model from a checkpoint (`which`: "ema" or "model"), eval mode, and the checkpoint's metadata."""
    meta = read_metadata(path)
    model = DiffusionModel(*configs(meta))
    model.load_state_dict(load_tensors(path, which))
    return model.eval().requires_grad_(False), meta


NEW_MODULES = ("unet.text_mlp.",)  # added since the first runs; a resumed older run starts them at their init


def _widened(tensors: dict[str, torch.Tensor], cfg: UNetConfig, factor: int) -> dict[str, torch.Tensor]:
    """A DiffusionModel state dict with its UNet widened `factor` times (widen.widen_unet), the rest as it was."""
    state, _ = widen_unet(_prefixed(tensors, "unet"), cfg, factor)
    return {**{k: v for k, v in tensors.items() if not k.startswith("unet.")},
            **{f"unet.{k}": v for k, v in state.items()}}


def restore_run(path: Path, run: DiffusionRun) -> dict[str, str]:
    """Load raw and EMA weights, step, seconds and losses into `run` (same architecture, or an older run's plus
    the modules in NEW_MODULES, which start at their zero init, or a UNet whose every level is a whole factor
    narrower, widened to the run's by Net2Net so that it starts out computing the same); returns the metadata."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    everything = load_file(str(path))  # read once: raw and EMA weights, heads, curves
    ema = _prefixed(everything, "ema")
    raw = _prefixed(everything, "model") or ema  # a shipped model's file: the run goes on from its EMA weights
    from_ema = raw is ema
    widened = {}
    old_unet = UNetConfig.from_dict(json.loads(meta["unet"])) if "unet" in meta else run.model.unet.cfg
    if tuple(old_unet.widths) != tuple(run.model.unet.cfg.widths):
        factor = factor_between(old_unet, run.model.unet.cfg)
        ema = _widened(ema, old_unet, factor)
        raw = ema if from_ema else _widened(raw, old_unet, factor)
        widened = {"from_widths": list(old_unet.widths), "to_widths": list(run.model.unet.cfg.widths),
                   "factor": factor, "at_step": int(meta["step"]), "method": "Net2WiderNet (widen.widen_unet)"}
    for module, tensors in ((run.model, raw), (run.ema, ema)):
        missing, unexpected = module.load_state_dict(tensors, strict=False)
        bad = unexpected + [k for k in missing if not k.startswith(NEW_MODULES)]
        if bad:
            raise ValueError(f"{path} does not fit this architecture: {', '.join(bad[:5])}")
    curves = _curves(everything)
    run.resume(int(meta["step"]), float(meta.get("seconds", 0.0)), curves.get("loss", []))
    run.ema_from = int(meta.get("ema_from", 0))
    heads, refit = _prefixed(everything, "heads"), {}
    if run.heads is not None:
        run.pretrain = json.loads(meta.get("pretrain", "{}"))
        run.aux_losses = curves.get("aux_loss", [])
        if heads:
            run.heads.load_state_dict(heads)
        elif run.pretrain:  # a shipped model's file keeps no heads: fit new ones to the trained text encoder
            refit = run.fit_heads()
    carried = json.loads(meta.get("warm_start", "{}"))  # an earlier stage's, carried on
    run.warm_start = carried
    if from_ema:
        run.warm_start = {"raw_weights_from": "ema", "at_step": run.step, **({"heads": refit} if refit else {}),
                          **({"widened": carried["widened"]} if "widened" in carried else {})}
    if widened:  # the latest widening, with any earlier one inside it
        earlier = carried.get("widened")
        run.warm_start = {**run.warm_start, "widened": {**widened, **({"earlier": earlier} if earlier else {})}}
    return meta
