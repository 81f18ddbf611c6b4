"""`genstudio generate|export|evaluate pixelcnn`: pixel-by-pixel samples, training + export, exact test bits/dim.

    genstudio generate pixelcnn --model pixelcnn-fashion-mnist --n 16 --seed 0 --out grid.png --npy grid.npy --json
    genstudio generate pixelcnn --n 10 --class all          # one of each class, round robin
    genstudio generate pixelcnn --n 8 --class Dress         # or --class 3; the default is no class (p(x))
    genstudio export pixelcnn --steps 6500 --batch 16 --width 32 --layers 12 --threads 1
    genstudio evaluate pixelcnn --model pixelcnn-fashion-mnist --json [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import time
from pathlib import Path

from genstudio.cli.common import add_generate_args, check_seed, emit, pick_model, session_pool, write_images

FAMILY = "autoregressive"


def register(groups) -> None:
    p = groups.generate.add_parser("pixelcnn", help="samples from an autoregressive image model, pixel by pixel")
    add_generate_args(p)
    p.add_argument("--n", type=int, default=16, help="images to draw (default 16)")
    p.add_argument("--class", dest="class_", default=None, metavar="C",
                   help="a class index (0-9) or name ('Dress', 'ankle boot'), or 'all' for classes 0..9 round robin; "
                        "default: no class (the unconditional model)")
    p.add_argument("--temperature", type=float, default=1.0, help="divide the logits by this (default 1.0)")
    p.set_defaults(handler=cmd_generate)

    p = groups.export.add_parser("pixelcnn", help="train a class-conditional gated PixelCNN on Fashion-MNIST "
                                                  "and export its logits graph")
    p.add_argument("--steps", type=int, default=6500, help="training steps (default 6500: ~45-50 min on one core)")
    p.add_argument("--batch", type=int, default=16, help="images per step (default 16)")
    p.add_argument("--width", "--widths", dest="width", type=int, default=32,
                   help="channels of the vertical and horizontal stacks (default 32)")
    p.add_argument("--layers", type=int, default=12, help="gated layers, the first masked (default 12)")
    p.add_argument("--head", type=int, default=0, help="channels of the output head (default: 2 x width)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    p.add_argument("--p-uncond", type=float, default=0.2, help="share of labels dropped to the null class (0.2)")
    p.add_argument("--train-images", type=int, default=60_000, help="training images (default 60000)")
    p.add_argument("--test-images", type=int, default=10_000, help="test images measured (default 10000)")
    p.add_argument("--fid-samples", type=int, default=500,
                   help="unconditional samples scored by the evaluator (default 500; 0 skips; ~1-2 s each)")
    p.add_argument("--class-samples", type=int, default=100,
                   help="round-robin class-conditional samples for the class accuracy (default 100; 0 skips)")
    p.add_argument("--from-checkpoint", type=Path, metavar="FILE", help="export this checkpoint instead of training")
    p.add_argument("--checkpoint-to", type=Path, metavar="FILE", help="while training, write the run here every 500 steps")
    p.add_argument("--data", type=Path, help="the Fashion-MNIST idx folder (default: Debian's)")
    p.add_argument("--out", type=Path, help="where model folders go (default: the shipped exported_models/)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--threads", type=int, default=0, help="torch and ONNX Runtime CPU threads (0: their defaults)")
    p.set_defaults(handler=cmd_export)

    p = groups.evaluate.add_parser("pixelcnn", help="recompute a PixelCNN's exact test bits/dim (and FID on request)")
    p.add_argument("--model", help="an autoregressive model name (default: the first)")
    p.add_argument("--n", type=int, default=10_000, help="test images to measure on (default 10000)")
    p.add_argument("--fid-samples", type=int, default=0, help="also score this many unconditional samples (slow)")
    p.add_argument("--data", type=Path, help="the Fashion-MNIST idx folder (default: Debian's)")
    p.add_argument("--write", action="store_true", help="record the numbers in the model's model.json (metrics.evaluate)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--provider", default=None, help="auto, cuda, directml, coreml or cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0: all cores)")
    p.set_defaults(handler=cmd_evaluate)


def _open(args: argparse.Namespace):
    from genstudio.engines.pixelcnn import PixelCnnModel

    entry = pick_model(FAMILY, args.model)
    return entry, PixelCnnModel(entry, session_pool(args))


def cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np

    from genstudio.cli import CliError
    from genstudio.runtime.imaging import to_uint8
    from genstudio.runtime.jobs import drive, text_bar

    if args.n < 1:
        raise CliError("--n must be at least 1")
    check_seed(args.seed)
    if not args.temperature > 0:
        raise CliError("--temperature must be positive")
    entry, model = _open(args)
    try:
        classes = model.class_ids(args.n, args.class_)
    except ValueError as e:
        raise CliError(str(e)) from None
    t0 = time.perf_counter()
    images = drive(model.sample_job(args.n, args.seed, classes, args.temperature),
                   None if args.json else text_bar(f"{entry.name} sampling"))
    seconds = time.perf_counter() - t0
    label = "none" if args.class_ is None else str(args.class_)
    settings = {"family": FAMILY, "model": entry.name, "seed": args.seed, "n": args.n, "class": label,
                "temperature": args.temperature}
    cols = min(args.n, model.n_classes) if label == "all" else None
    written = write_images(to_uint8(images, value_range=(0.0, 1.0)), args, settings=settings, cols=cols)
    names = model.class_names
    summary = {"model": entry.name, "seed": args.seed, "n": args.n, "class": label, "temperature": args.temperature,
               "classes": [names[c] if c < len(names) else None for c in classes.tolist()],
               "shape": list(images.shape), "seconds": round(seconds, 4),
               "session_runs": int(np.prod(model.image_shape)) * -(-args.n // model.sample_batch),
               "written": written, "mean_pixel": float(np.mean(images))}
    emit(args, summary, f"{entry.name}: {args.n} samples ({'no class' if label == 'none' else 'class ' + label}) "
                        f"in {seconds:.1f} s, {summary['session_runs']} session runs"
                        + (f" -> {', '.join(written.values())}" if written else ""))
    return 0


def _command(args: argparse.Namespace, head: int) -> str:
    """The one command that rebuilds exactly this model (what build.command records)."""
    words = ["genstudio", "export", "pixelcnn", "--steps", str(args.steps), "--batch", str(args.batch),
             "--width", str(args.width), "--layers", str(args.layers), "--head", str(head), "--lr", str(args.lr),
             "--p-uncond", str(args.p_uncond), "--train-images", str(args.train_images),
             "--test-images", str(args.test_images), "--fid-samples", str(args.fid_samples),
             "--class-samples", str(args.class_samples), "--seed", str(args.seed)]
    for flag, value in (("--threads", args.threads), ("--data", args.data), ("--out", args.out),
                        ("--from-checkpoint", args.from_checkpoint), ("--checkpoint-to", args.checkpoint_to)):
        if value:
            words += [flag, str(value)]
    return shlex.join(words)


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from genstudio.cli import CliError
    from genstudio.export.data.fashion_mnist import DatasetMissing
    from genstudio.export.pixelcnn.build import PixelCnnBuild, build_pixelcnn
    from genstudio.export.pixelcnn.model import PixelCnnConfig
    from genstudio.export.pixelcnn.train import read_metadata
    from genstudio.export.trainer import TrainerConfig
    from genstudio.runtime.jobs import text_bar
    from genstudio.runtime.manifest import Manifest
    from genstudio.runtime.paths import shipped_models_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    for flag, value in (("--steps", args.steps), ("--batch", args.batch), ("--width", args.width),
                        ("--layers", args.layers)):
        if value < 1:
            raise CliError(f"{flag} must be at least 1")
    if not 0.0 <= args.p_uncond < 1.0:
        raise CliError("--p-uncond must lie in [0, 1)")
    if 0 < args.fid_samples < 10:
        raise CliError("--fid-samples must be 0 (skip) or at least 10")
    if args.from_checkpoint:
        if not args.from_checkpoint.is_file():
            raise CliError(f"no checkpoint at {args.from_checkpoint}")
        try:
            meta = read_metadata(args.from_checkpoint)
        except ValueError as e:
            raise CliError(str(e)) from None
        # the command records what was trained
        args.steps, args.batch, args.seed = meta["step"], meta["trainer"]["batch_size"], meta["trainer"]["seed"]
        args.width, args.layers, args.lr = meta["config"]["dim"], meta["config"]["layers"], meta["trainer"]["lr"]
        args.p_uncond, args.head = meta["p_uncond"], meta["config"]["head"]
    head = args.head or 2 * args.width
    cfg = PixelCnnBuild(
        model=PixelCnnConfig(dim=args.width, layers=args.layers, head=head),
        trainer=TrainerConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, warmup=min(200, args.steps // 10),
                              grad_clip=5.0, seed=args.seed),
        p_uncond=args.p_uncond, n_train=args.train_images, n_test=args.test_images, n_fid=args.fid_samples,
        n_class_samples=args.class_samples, threads=args.threads, data_dir=str(args.data) if args.data else None,
        checkpoint=str(args.from_checkpoint) if args.from_checkpoint else None,
        checkpoint_to=str(args.checkpoint_to) if args.checkpoint_to and not args.from_checkpoint else None)
    try:
        folder = build_pixelcnn(cfg, args.out or shipped_models_dir(), command=_command(args, head),
                                on_progress=text_bar(cfg.name))
    except DatasetMissing as e:
        raise CliError(str(e)) from None
    m = Manifest.load(folder).metrics
    print(f"{folder}: test {m['test_bits_per_dim']:.4f} bits/dim (given class {m['test_bits_per_dim_given_class']:.4f}), "
          f"FID {m.get('fid_samples', 'n/a')} (real images at the same n: {m.get('fid_real_train_images_same_n', 'n/a')}), "
          f"parity {m['parity']['max_abs_diff_logits']:.1e}, 1 sample in {m['sampling']['seconds_1_image']:.1f} s")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from genstudio.cli import CliError
    from genstudio.runtime.jobs import drive, text_bar

    if args.n < 1:
        raise CliError("--n must be at least 1")
    entry, model = _open(args)
    from genstudio.export.data import fashion_mnist

    try:
        test = fashion_mnist.load("test", args.data)
    except fashion_mnist.DatasetMissing as e:
        raise CliError(str(e)) from None
    images, labels = test.images[:args.n], test.labels[:args.n].astype(np.int64)
    bar = None if args.json else text_bar
    uncond = drive(model.bits_per_dim(images, None), bar and bar(f"{entry.name} bits/dim, no class"))
    cond = drive(model.bits_per_dim(images, labels), bar and bar(f"{entry.name} bits/dim, true class"))
    recorded = entry.manifest.metrics
    result = {"model": entry.name, "n_images": len(images),
              "test_bits_per_dim": uncond["bits_per_dim"], "test_bits_per_dim_stderr": uncond["bits_per_dim_stderr"],
              "test_bits_per_dim_given_class": cond["bits_per_dim"],
              "test_bits_per_dim_given_class_stderr": cond["bits_per_dim_stderr"],
              "recorded_test_bits_per_dim": recorded.get("test_bits_per_dim"),
              "recorded_test_bits_per_dim_given_class": recorded.get("test_bits_per_dim_given_class"),
              "seconds": round(uncond["seconds"] + cond["seconds"], 2)}
    if args.fid_samples:
        result.update(_fid(model, args.fid_samples, bar))
    if args.write:
        _record(entry, result, args)
    rec = result["recorded_test_bits_per_dim"]
    emit(args, result, f"{entry.name}: test {result['test_bits_per_dim']:.4f} bits/dim "
                       f"(recorded {'n/a' if rec is None else f'{rec:.4f}'}), given class "
                       f"{result['test_bits_per_dim_given_class']:.4f}, on {len(images)} images"
                       + (f", FID {result['fid_samples']:.2f} on {args.fid_samples} samples" if "fid_samples" in result
                          else ""))
    return 0


def _fid(model, n: int, bar) -> dict:
    from genstudio.engines.evaluate import Evaluator
    from genstudio.runtime.jobs import drive
    from genstudio.runtime.registry import Registry

    try:
        evaluator = Evaluator.open(Registry(), model.dataset, model.pool)
    except LookupError as e:
        return {"fid_skipped": str(e)}
    t0 = time.perf_counter()
    samples = drive(model.sample_job(n, seed=0), bar and bar(f"{model.name} samples"))
    seconds = time.perf_counter() - t0
    r = evaluator.report(samples, k=5) if n > 5 else {"fid": evaluator.fid(samples), "fid_name": ""}
    return {"fid_samples": r["fid"], "fid_name": r["fid_name"], "fid_n_samples": n,
            "recorded_fid_samples": model.entry.manifest.metrics.get("fid_samples"),
            "recorded_fid_n_samples": model.entry.manifest.metrics.get("fid_n_samples"),
            "sampling_seconds": round(seconds, 2),
            **{k: r[k] for k in ("precision", "recall", "coverage") if k in r}}


def _record(entry, result: dict, args: argparse.Namespace) -> None:
    """Write the recomputed numbers under metrics.evaluate (the build's own numbers stay as they were)."""
    from genstudio.runtime.manifest import Manifest

    manifest = Manifest.load(entry.folder)
    manifest.metrics["evaluate"] = {**{k: v for k, v in result.items() if not k.startswith("recorded_")},
                                    "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                    "command": shlex.join(["genstudio", "evaluate", "pixelcnn", "--model", entry.name,
                                                           "--n", str(args.n), "--fid-samples", str(args.fid_samples)])}
    manifest.save(entry.folder)
