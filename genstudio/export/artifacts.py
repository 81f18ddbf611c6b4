"""A model folder being built: a hidden staging folder, a safetensors checkpoint, and an atomic publish.

    tmp = staging_folder(out_root, name)          # out_root/.name.tmp, empty
    save_checkpoint(model, tmp / "model.safetensors", format="genstudio-vae", config=cfg.to_dict())
    ...                                            # ONNX graphs, model.json
    final = publish(tmp, out_root, name)           # replaces out_root/name only when complete
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch.nn as nn

CHECKPOINT_VERSION = "1"


def staging_folder(out_root: Path, name: str) -> Path:
    tmp = Path(out_root) / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def save_checkpoint(module: nn.Module, path: Path, *, format: str, config: dict[str, Any]) -> Path:
    """Weights as safetensors (never a pickle), with the format name, a version and the config."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path),
              metadata={"format": format, "version": CHECKPOINT_VERSION, "config": repr(config)})
    return Path(path)


def publish(tmp: Path, out_root: Path, name: str) -> Path:
    """Move a finished staging folder into place; a half-built model never appears under its name."""
    final = Path(out_root) / name
    if final.exists():
        shutil.rmtree(final)
    tmp.replace(final)
    return final
