"""`genstudio generate|export|evaluate flow`: densities and samples from 2-D flows, their training and checks.

    genstudio generate flow --model flow-moons-realnvp --n 2000 --grid 256 --density-out p.npy --out p.png --json
    genstudio export flow --density all --arch all --steps 6000
    genstudio export flow-image --steps 6000
    genstudio evaluate flow --model flow-moons-realnvp --json
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from genstudio.cli.common import add_generate_args, check_seed, emit, pick_model, session_pool

ARCH_CHOICES = ("realnvp", "glow", "spline", "all")
_ARCH_ORDER = {"realnvp": 0, "glow": 1, "spline": 2}  # columns of `generate flow --model all --out`


def register(groups) -> None:
    p = groups.generate.add_parser("flow", help="samples and the exact density p(x) of a 2-D flow")
    add_generate_args(p, images=False)
    p.add_argument("--n", type=int, default=1000, help="samples to draw (default 1000)")
    p.add_argument("--grid", type=int, default=256, help="density grid cells per side (default 256)")
    p.add_argument("--density-out", type=Path, help="write p(x) on the grid as float32 [grid, grid], rows along y")
    p.add_argument("--samples-out", type=Path, help="write the samples as float32 [n, 2]")
    p.add_argument("--out", type=Path, help="render the density heatmap with the samples as a PNG")
    p.add_argument("--scale", choices=("log", "linear"), default="log", help="colour scale of --out")
    p.add_argument("--temperature", type=float, default=0.7, help="image flows: base noise scale (default 0.7)")
    p.set_defaults(handler=cmd_generate)

    p = groups.export.add_parser("flow", help="train 2-D flows on the test densities and export them")
    p.add_argument("--density", default="moons", help="a density name or 'all' (moons, rings, 8gaussians, "
                                                      "checkerboard, spiral, icon)")
    p.add_argument("--arch", default="realnvp", choices=ARCH_CHOICES, help="flow architecture, or all")
    p.add_argument("--steps", type=int, default=6000, help="training steps (default 6000)")
    p.add_argument("--blocks", type=int, default=0, help="couplings (realnvp) or steps (glow); "
                                                         "default 12 realnvp, 8 glow, 4 spline")
    p.add_argument("--hidden", type=int, default=32, help="width of the coupling networks (default 32)")
    _export_common(p)
    p.set_defaults(handler=cmd_export)

    p = groups.export.add_parser("flow-image", help="train the multi-scale image flow on Fashion-MNIST")
    p.add_argument("--steps", type=int, default=6000, help="training steps at batch 64 (default 6000)")
    p.add_argument("--hidden", type=int, default=64, help="channels in the coupling networks (default 64)")
    p.add_argument("--steps-per-scale", type=int, default=4, help="flow steps per scale (default 4)")
    p.add_argument("--train-images", type=int, default=60000, help="training images to use (default all)")
    p.add_argument("--test-images", type=int, default=10000, help="test images to measure on (default all)")
    p.add_argument("--data", type=Path, help="the Fashion-MNIST idx folder (default: Debian's)")
    _export_common(p)
    p.set_defaults(handler=cmd_export_image)

    p = groups.evaluate.add_parser("flow", help="recompute a flow's held-out NLL and integral (or bits/dim)")
    p.add_argument("--model", help="a flow model name (default: the first)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--grid", type=int, default=512, help="integral check grid (default 512)")
    p.add_argument("--data", type=Path, help="Fashion-MNIST folder, for image flows")
    p.add_argument("--n", type=int, default=2000,
                   help="image flows: samples scored for FID with the dataset's evaluator (0: skip; default 2000)")
    p.add_argument("--provider", default=None, help="auto, cuda, directml, coreml or cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0: all cores)")
    p.set_defaults(handler=cmd_evaluate)


def _export_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, help="where model folders go (default: the shipped exported_models/)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


# -- generate -------------------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError
    from genstudio.engines.flow import FlowModel, is_2d_flow
    from genstudio.runtime.jobs import drive

    if args.n < 0 or args.grid < 2:
        raise CliError("--n must be >= 0 and --grid >= 2")
    check_seed(args.seed)
    if args.model == "all":
        return _generate_all(args)
    entry = pick_model("flow", args.model)
    if entry.manifest.extra.get("kind") == "image":
        return _generate_images(args, entry)
    if not is_2d_flow(entry):
        raise CliError(f"{entry.name} is neither a 2-D nor an image flow")
    model = FlowModel(entry, session_pool(args))
    t0 = time.perf_counter()
    samples = model.sample(args.n, args.seed)
    t_sample = time.perf_counter() - t0
    grid = drive(model.density_grid(args.grid))
    written = {}
    if args.density_out:
        args.density_out.parent.mkdir(parents=True, exist_ok=True)
        np.save(args.density_out, grid.p.astype(np.float32))
        written["density_out"] = str(args.density_out)
    if args.samples_out:
        args.samples_out.parent.mkdir(parents=True, exist_ok=True)
        np.save(args.samples_out, samples)
        written["samples_out"] = str(args.samples_out)
    if args.out:
        from genstudio.engines.flow_render import render_density
        from genstudio.runtime.imaging import save_png

        image = render_density(grid.log_p, grid.range, samples[:2000], scale=args.scale)
        written["out"] = str(save_png(image, args.out, _settings(args, entry.name)))
    summary = {
        "model": entry.name, "seed": args.seed, "n": args.n, "grid": args.grid,
        "range": list(grid.range),
        "integral": grid.integral(),
        "log_p_max": float(grid.log_p.max()),
        "samples_mean": samples.mean(0).tolist() if len(samples) else None,
        "seconds": {"sample": round(t_sample, 4), "density_grid": round(grid.seconds, 4)},
        "written": written,
    }
    emit(args, summary, f"{entry.name}: {args.n} samples, density on {args.grid}x{args.grid} "
                        f"(integral {summary['integral']:.4f}) in {grid.seconds * 1000:.0f} ms")
    return 0


def _generate_images(args: argparse.Namespace, entry) -> int:
    """An image flow: --n images at --temperature; --out a PNG grid (density options do not apply)."""
    from genstudio.cli import CliError
    from genstudio.cli.common import write_images
    from genstudio.engines.flow import ImageFlowModel
    from genstudio.runtime.imaging import to_uint8

    if args.density_out or args.samples_out:
        raise CliError(f"{entry.name} is an image flow: use --out for a picture of its samples")
    model = ImageFlowModel(entry, session_pool(args))
    t0 = time.perf_counter()
    images = model.sample(args.n, args.seed, args.temperature)  # (n, 1, 28, 28) in [0, 1]
    seconds = time.perf_counter() - t0
    written = write_images(to_uint8(images, value_range=(0.0, 1.0)), args,
                           settings={**_settings(args, entry.name), "temperature": args.temperature})
    emit(args, {"model": entry.name, "seed": args.seed, "n": args.n, "temperature": args.temperature,
                "shape": list(images.shape), "seconds": round(seconds, 4), "written": written},
         f"{entry.name}: {args.n} images in {seconds:.2f} s")
    return 0


def _settings(args: argparse.Namespace, model: str) -> dict:
    return {"family": "flow", "model": model, "seed": args.seed, "n": args.n, "grid": args.grid,
            "scale": args.scale}


def _generate_all(args: argparse.Namespace) -> int:
    """--model all: one row per density (training histogram, then each arch's heatmap with samples)."""
    from genstudio.cli import CliError
    from genstudio.engines.flow import FlowModel, is_2d_flow
    from genstudio.engines.flow_render import render_density, render_histogram
    from genstudio.runtime.imaging import make_grid, save_png
    from genstudio.runtime.jobs import drive
    from genstudio.runtime.registry import Registry

    if args.density_out or args.samples_out:
        raise CliError("--model all writes only --out (a picture of every model) and --json")
    entries = sorted((e for e in Registry().ready("flow") if is_2d_flow(e)),
                     key=lambda e: (e.manifest.extra["density"], _ARCH_ORDER.get(e.manifest.extra["arch"], 9)))
    if not entries:
        raise CliError("no 2-D flow models are installed")
    pool = session_pool(args)
    rows: dict[str, list[np.ndarray]] = {}
    results = []
    for e in entries:
        model = FlowModel(e, pool)
        grid = drive(model.density_grid(args.grid))
        samples = model.sample(args.n, args.seed)
        tiles = rows.setdefault(e.manifest.extra["density"], [])
        if not tiles:
            tiles.append(render_histogram(model.train_samples(), model.range, scale=args.scale, size=256,
                                          title=f"{e.manifest.extra['density_title']}: training data"))
        tiles.append(render_density(grid.log_p, grid.range, samples[:500], scale=args.scale, size=256,
                                    title=e.name))
        results.append({"model": e.name, "range": list(grid.range), "integral": grid.integral(),
                        "density_grid_seconds": round(grid.seconds, 4)})
    written = {}
    if args.out:
        cols = max(len(t) for t in rows.values())
        blank = np.full((256, 256, 3), 255, np.uint8)
        tiles = [t for row in rows.values() for t in row + [blank] * (cols - len(row))]
        written["out"] = str(save_png(make_grid(np.stack(tiles), cols=cols, pad=4), args.out,
                                      _settings(args, "all")))
    emit(args, {"models": results, "written": written},
         f"{len(results)} flow models rendered" + (f" to {written['out']}" if written else ""))
    return 0


# -- export ---------------------------------------------------------------------------------------------
def _out_root(args: argparse.Namespace) -> Path:
    from genstudio.runtime.paths import shipped_models_dir

    return args.out or shipped_models_dir()


def _bar(label: str):
    from genstudio.runtime.jobs import text_bar

    return text_bar(label)


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from genstudio.cli import CliError
    from genstudio.export.flow import densities
    from genstudio.export.flow.build2d import Flow2DBuild, build_flow2d
    from genstudio.export.flow.flow2d import ARCHS, DEFAULT_BLOCKS, FlowConfig
    from genstudio.export.trainer import TrainerConfig

    names = densities.NAMES if args.density == "all" else (args.density,)
    for n in names:
        if n not in densities.NAMES:
            raise CliError(f"no density named {n!r}; known: {', '.join(densities.NAMES)}, all")
    archs = ARCHS if args.arch == "all" else (args.arch,)
    if args.threads:
        torch.set_num_threads(args.threads)
    out_root = _out_root(args)
    invoked = "genstudio " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["export"] else None
    for name in names:
        for arch in archs:
            blocks = args.blocks or DEFAULT_BLOCKS[arch]
            cfg = Flow2DBuild(density=name, arch=arch,
                              flow=FlowConfig(arch=arch, n_blocks=blocks, hidden=args.hidden),
                              trainer=TrainerConfig(steps=args.steps, seed=args.seed))
            command = _command("flow", [("--density", name), ("--arch", arch), ("--steps", args.steps),
                                        ("--blocks", blocks), ("--hidden", args.hidden),
                                        ("--seed", args.seed), ("--threads", args.threads)], args.out)
            folder = build_flow2d(cfg, out_root, command=command, on_progress=_bar(cfg.name))
            _record_invocation(folder, invoked)
            _print_summary(folder)
    return 0


def cmd_export_image(args: argparse.Namespace) -> int:
    import torch

    from genstudio.cli import CliError
    from genstudio.export.data.fashion_mnist import DatasetMissing
    from genstudio.export.flow.build_image import ImageFlowBuild, build_image_flow
    from genstudio.export.flow.image_flow import ImageFlowConfig
    from genstudio.export.trainer import TrainerConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = ImageFlowBuild(flow=ImageFlowConfig(hidden=args.hidden, steps_per_scale=args.steps_per_scale),
                         trainer=TrainerConfig(steps=args.steps, batch_size=64, lr=1e-3, warmup=200,
                                               grad_clip=50.0, seed=args.seed),
                         data_dir=str(args.data) if args.data else None,
                         n_train=args.train_images, n_test=args.test_images)
    command = _command("flow-image", [("--steps", args.steps), ("--hidden", args.hidden),
                                      ("--steps-per-scale", args.steps_per_scale),
                                      ("--train-images", args.train_images), ("--test-images", args.test_images),
                                      ("--seed", args.seed), ("--threads", args.threads)], args.out,
                       extra=[("--data", args.data)] if args.data else [])
    try:
        folder = build_image_flow(cfg, _out_root(args), command=command, on_progress=_bar(cfg.name))
    except DatasetMissing as e:
        raise CliError(str(e)) from None
    _print_summary(folder)
    return 0


def _command(sub: str, opts: list[tuple[str, object]], out: Path | None,
             extra: list[tuple[str, object]] = ()) -> str:
    """The one command that rebuilds exactly this model (what build.command records)."""
    words = ["genstudio", "export", sub]
    for flag, value in [*opts, *extra]:
        words += [flag, str(value)]
    if out is not None:
        words += ["--out", str(out)]
    return shlex.join(words)


def _record_invocation(folder: Path, invoked: str | None) -> None:
    from genstudio.runtime.manifest import Manifest

    if not invoked:
        return
    m = Manifest.load(folder)
    if m.build.get("command") != invoked:
        m.build["invoked_as"] = invoked  # e.g. a --density all run that built this model among others
        m.save(folder)


def _print_summary(folder: Path) -> None:
    from genstudio.runtime.manifest import Manifest

    m = Manifest.load(folder).metrics
    if "test_bits_per_dim" in m:
        print(f"{folder}: test {m['test_bits_per_dim']:.3f} bits/dim, "
              f"parity {m['parity']['max_abs_diff_log_prob']:.1e}")
    else:
        h = m.get("true_entropy_nats")
        print(f"{folder}: held-out NLL {m['heldout_nll_nats']:.4f} nats (true entropy "
              f"{'unknown' if h is None else f'{h:.4f}'}), integral {m['integral']['value']:.4f}, "
              f"parity {m['parity']['max_abs_diff_log_prob']:.1e}")


# -- evaluate -------------------------------------------------------------------------------------------
def _image_flow_fid(entry, model, args: argparse.Namespace) -> dict:
    """FID and precision/recall of args.n samples at the model's default temperature, scored by the evaluator
    of the flow's dataset; {"fid_error": why} when there is no evaluator."""
    import numpy as np

    from genstudio.engines.compare import dataset_of
    from genstudio.engines.evaluate import Evaluator
    from genstudio.runtime.registry import Registry

    if args.n < 6:
        return {"fid_error": "--n must be more than 5 (precision/recall use k = 5 neighbours)"}
    dataset = dataset_of(entry) or "fashion-mnist"
    try:
        evaluator = Evaluator.open(Registry(), dataset, session_pool(args))
    except LookupError as e:
        return {"fid_error": str(e)}
    t = float(entry.manifest.defaults.get("temperature", 0.7))
    images = np.concatenate([model.sample(min(256, args.n - i), seed=i, temperature=t)
                             for i in range(0, args.n, 256)])
    return evaluator.sample_numbers(np.clip(images, 0.0, 1.0),
                                    f"{args.n} samples at temperature {t:g} (z from numpy seeds 0, 256, ... per "
                                    f"chunk of 256), through ONNX Runtime, against the test-set statistics shipped "
                                    f"with {evaluator.entry.name}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError
    from genstudio.engines.flow import ImageFlowModel, open_flow
    from genstudio.runtime.jobs import drive

    entry = pick_model("flow", args.model)
    model = open_flow(entry, session_pool(args))
    if isinstance(model, ImageFlowModel):
        from genstudio.export.data import fashion_mnist

        try:
            test = fashion_mnist.load("test", args.data)
        except fashion_mnist.DatasetMissing as e:
            raise CliError(str(e)) from None
        result = drive(model.bits_per_dim(test.images), _bar(f"{entry.name} bits/dim"))
        fid = ""
        if args.n:
            result.update(_image_flow_fid(entry, model, args))
            fid = f", FID {result['fid']:.1f} on {args.n} samples" if "fid" in result else f" ({result['fid_error']})"
        emit(args, result, f"{entry.name}: test {result['test_bits_per_dim']:.4f} bits/dim "
                           f"(recorded {result['recorded_test_bits_per_dim']}){fid}")
        return 0
    result = drive(model.evaluate(args.grid))
    h = result["true_entropy_nats"]
    emit(args, result, f"{entry.name}: held-out NLL {result['heldout_nll_nats']:.4f} nats, true entropy "
                       f"{'unknown' if h is None else f'{h:.4f}'}, integral {result['integral']:.4f} "
                       f"on {args.grid}x{args.grid}")
    return 0
