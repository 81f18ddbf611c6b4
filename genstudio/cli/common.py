"""Arguments and output shared by every `genstudio generate <family>` command, and the export commands' choices."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

PRECISIONS = ("float32", "bfloat16")  # `--precision` of the export commands: genstudio.export.trainer's, without torch


def add_generate_args(p: argparse.ArgumentParser, *, images: bool = True) -> None:
    """--model, --seed, --json, and for image families --out FILE.png and --npy FILE.npy."""
    p.add_argument("--model", help="a model name from `genstudio models` (default: the family's first)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same output")
    p.add_argument("--json", action="store_true", help="print a JSON summary with timings")
    p.add_argument("--provider", default=None, help="auto, cuda, directml, coreml or cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0: all cores)")
    if images:
        p.add_argument("--out", type=Path, help="write the images as one PNG grid")
        p.add_argument("--npy", type=Path, help="write the images as a uint8 array [N, H, W, C]")


def check_seed(seed: int) -> None:
    """--seed of a family that seeds numpy's generator, which takes no negative seed (a traceback otherwise)."""
    from genstudio.cli import CliError

    if seed < 0:
        raise CliError(f"--seed must be 0 or more, got {seed}")


def pick_model(family: str, name: str | None):
    """The named model, or the first ready one of the family; a CliError names what is there."""
    from genstudio.cli import CliError
    from genstudio.runtime.registry import ModelNotFound, Registry

    reg = Registry()
    if name:
        try:
            entry = reg.get(name)
        except ModelNotFound as e:
            raise CliError(str(e)) from None
        if entry.family != family:
            raise CliError(f"model {name!r} is a {entry.family} model, not {family}")
        if not entry.ready:
            raise CliError(f"model {name!r} is not ready: {entry.error}")
        return entry
    ready = reg.ready(family)
    if not ready:
        raise CliError(f"no ready {family} model; `genstudio models` lists what is installed")
    return ready[0]


def session_pool(args: argparse.Namespace):
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    return SessionPool(SessionConfig(provider=args.provider or "auto", threads=args.threads))


def write_images(images_u8: np.ndarray, args: argparse.Namespace, *, settings: dict[str, Any] | None = None,
                 cols: int | None = None) -> dict[str, str]:
    """Write --out (a PNG grid) and --npy (the raw uint8 [N, H, W, C]); returns what was written.
    A read-only folder or a full disk is a CliError (one line), not a traceback."""
    from genstudio.cli import CliError
    from genstudio.runtime.imaging import make_grid, save_png

    written = {}
    try:
        if getattr(args, "out", None):
            grid = images_u8[0] if len(images_u8) == 1 else make_grid(images_u8, cols=cols)
            written["out"] = str(save_png(grid, args.out, settings))
        if getattr(args, "npy", None):
            args.npy.parent.mkdir(parents=True, exist_ok=True)
            np.save(args.npy, images_u8)
            written["npy"] = str(args.npy)
    except OSError as e:
        raise CliError(f"could not write the images: {e}") from None
    return written


def emit(args: argparse.Namespace, summary: dict[str, Any], human: str) -> None:
    """Print the JSON summary with --json, else one human line."""
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2, default=_jsonable))
    else:
        print(human)
    sys.stdout.flush()


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"cannot write {type(v).__name__} as JSON")
