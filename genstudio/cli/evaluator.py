"""`genstudio export|evaluate evaluator`: build the FID/accuracy classifiers, and score a file of images with them.

    genstudio export evaluator --dataset fashion-mnist
    genstudio evaluate evaluator --dataset fashion-mnist --npy samples.npy --json   # FID, precision/recall
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

DATASETS = ("fashion-mnist", "synthfaces")


def register(groups) -> None:
    p = groups.export.add_parser("evaluator", help="train the classifier whose features give FID for a dataset")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--steps", type=int, default=0, help="training steps at batch 128 (default: the dataset's)")
    p.add_argument("--widths", default="", help="conv stage channels, comma-separated (default: the dataset's)")
    p.add_argument("--stem", type=int, default=0,
                   help="channels of a full-resolution conv before the first strided stage (default 0: none)")
    p.add_argument("--head-weights", default=None,
                   help="loss weight per head as name=w,... (others 1; default: the dataset's, e.g. SynthFaces "
                        "weighs glasses and expression 4 and hair colour 2; '' for all equal)")
    p.add_argument("--train-images", type=int, default=0, help="training images (default: the dataset's)")
    p.add_argument("--test-images", type=int, default=0, help="test images (default: the dataset's)")
    p.add_argument("--data", type=Path, help="the Fashion-MNIST idx folder (default: Debian's)")
    p.add_argument("--out", type=Path, help="where model folders go (default: the shipped exported_models/)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.set_defaults(handler=cmd_export)

    p = groups.evaluate.add_parser("evaluator", help="FID, precision/recall and predicted classes of images")
    p.add_argument("--dataset", required=True, choices=DATASETS, help="which evaluator scores the images")
    p.add_argument("--npy", type=Path, required=True, help="images as uint8 [N, H, W(, C)] or float in [0, 1]")
    p.add_argument("--k", type=int, default=5, help="neighbours for precision/recall (default 5)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--provider", default=None, help="auto, cuda, directml, coreml or cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0: all cores)")
    p.set_defaults(handler=cmd_evaluate)


def command_line(args: argparse.Namespace, steps: int, widths: tuple[int, ...], weights: dict[str, float]) -> str:
    """The command that rebuilds this evaluator, with the resolved steps, widths and head weights."""
    words = ["genstudio", "export", "evaluator", "--dataset", args.dataset, "--steps", str(steps),
             "--widths", ",".join(map(str, widths)), "--seed", str(args.seed),
             "--head-weights", ",".join(f"{k}={v:g}" for k, v in sorted(weights.items()))]
    if args.stem:
        words += ["--stem", str(args.stem)]
    for flag, value in (("--train-images", args.train_images), ("--test-images", args.test_images),
                        ("--threads", args.threads)):
        if value:
            words += [flag, str(value)]
    if args.data:
        words += ["--data", str(args.data)]
    if args.out:
        words += ["--out", str(args.out)]
    return shlex.join(words)


def parse_head_weights(text: str) -> dict[str, float]:
    """'glasses=4,expression=4' -> {"glasses": 4.0, "expression": 4.0}; '' -> {} (every head weighs 1)."""
    from genstudio.cli import CliError

    out: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, value = (part.strip() for part in item.partition("="))
        try:
            if not sep or not name:
                raise ValueError
            weight = float(value)
        except ValueError:
            raise CliError(f"--head-weights wants name=weight pairs, comma-separated; {item!r} is not one") from None
        if name in out:
            raise CliError(f"--head-weights names {name!r} twice")
        out[name] = weight
    return out


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from genstudio.cli import CliError
    from genstudio.export.data.fashion_mnist import DatasetMissing
    from genstudio.export.evaluator.build import (
        DATASET_SPECS,
        EvaluatorBuild,
        HeadWeightsError,
        build_evaluator,
    )
    from genstudio.export.trainer import TrainerConfig
    from genstudio.runtime.jobs import text_bar
    from genstudio.runtime.manifest import Manifest
    from genstudio.runtime.paths import shipped_models_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or DATASET_SPECS[args.dataset]["steps"]
    try:
        widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else DATASET_SPECS[args.dataset]["widths"]
    except ValueError:
        raise CliError(f"--widths must be comma-separated integers, not {args.widths!r}") from None
    if not widths or min(widths) < 1:
        raise CliError("--widths needs at least one positive width")
    if args.stem < 0:
        raise CliError("--stem must be 0 or more")
    head_weights = parse_head_weights(args.head_weights) if args.head_weights is not None else None
    cfg = EvaluatorBuild(dataset=args.dataset, n_train=args.train_images, n_test=args.test_images, widths=widths,
                         stem=args.stem, head_weights=head_weights,
                         data_dir=str(args.data) if args.data else None,
                         trainer=TrainerConfig(steps=steps, batch_size=128, lr=3e-3, weight_decay=1e-4,
                                               warmup=50, grad_clip=5.0, seed=args.seed))
    try:
        command = command_line(args, steps, widths, cfg.weights)  # build_evaluator checks the weights first
        folder = build_evaluator(cfg, args.out or shipped_models_dir(), command=command, on_progress=text_bar(cfg.name))
    except (DatasetMissing, HeadWeightsError) as e:
        raise CliError(str(e)) from None
    m = Manifest.load(folder).metrics
    print(f"{folder}: test accuracy {m['test_accuracy']}, FID train vs test {m['fid_train_vs_test']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from genstudio.cli import CliError
    from genstudio.cli.common import emit, session_pool
    from genstudio.engines.evaluate import Evaluator, label_histogram
    from genstudio.runtime.registry import Registry

    try:
        evaluator = Evaluator.open(Registry(), args.dataset, session_pool(args))
    except LookupError as e:
        raise CliError(str(e)) from None
    images = np.load(args.npy)
    if len(images) <= args.k:
        raise CliError(f"need more than --k {args.k} images, got {len(images)}")
    result = evaluator.report(images, k=args.k)
    logits = evaluator.run(images).logits
    result["predicted_share"] = {h: label_histogram(lg, lg.shape[1]).round(4).tolist() for h, lg in logits.items()}
    result["model"] = evaluator.entry.name
    emit(args, result, f"{result['fid_name']}: {result['fid']:.3f}  precision {result['precision']:.3f}  "
                       f"recall {result['recall']:.3f}  coverage {result['coverage']:.3f}  ({len(images)} images)")
    return 0
