"""`genstudio generate|export gan`: seeded samples with truncation, and training + export of a style-based GAN.

    genstudio generate gan --model gan-synthfaces --n 16 --seed 0 --truncation 0.85 --out grid.png --npy grid.npy --json
    genstudio export gan --dataset synthfaces --steps 2000
    genstudio export gan --dataset synthfaces --from-checkpoint run/gan.safetensors   # export a finished run
"""

from __future__ import annotations

import argparse
import math
import shlex
import time
from pathlib import Path

from genstudio.cli.common import (
    PRECISIONS,
    add_generate_args,
    check_seed,
    emit,
    pick_model,
    session_pool,
    write_images,
)

DATASETS = ("synthfaces", "fashion-mnist")


def register(groups) -> None:
    p = groups.generate.add_parser("gan", help="samples from a GAN, with truncation toward the mean latent")
    add_generate_args(p)
    p.add_argument("--n", type=int, default=16, help="samples to draw (default 16)")
    p.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="pull w toward the mean latent: 1 none, 0 the mean face (default: the model's)")
    p.set_defaults(handler=cmd_generate)

    p = groups.export.add_parser("gan", help="train a style-based GAN and export mapping and synthesis graphs")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--steps", type=int, default=0, help="training steps (default: the dataset's)")
    p.add_argument("--batch", type=int, default=0, help="images per step (default: the dataset's)")
    p.add_argument("--g-widths", default="", help="synthesis channels from 4x4 up, comma-separated")
    p.add_argument("--d-widths", default="", help="discriminator channels from full size down, comma-separated")
    p.add_argument("--fourier", type=int, default=0, metavar="K",
                   help="K sinusoid channels, their frequencies and phases steered by w, that join the last stage's "
                        "input: for periodic backdrops (default 0: none)")
    p.add_argument("--z-dim", type=int, default=64, help="noise dimensions (default 64)")
    p.add_argument("--w-dim", type=int, default=64, help="intermediate latent dimensions (default 64)")
    p.add_argument("--r1-every", type=int, default=16, help="lazy R1 interval in steps (default 16)")
    p.add_argument("--r1-gamma", type=float, default=0.0, help="R1 penalty weight (default: the dataset's)")
    p.add_argument("--lr", type=float, default=0.0,
                   help="Adam learning rate of the generator and the discriminator (default 0.002)")
    p.add_argument("--augment", default="", metavar="POLICIES",
                   help="DiffAugment before the discriminator, comma-separated: color, translation, cutout")
    p.add_argument("--train-images", type=int, default=0, help="training images (default: the dataset's)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="bfloat16: generator and discriminator passes under bf16 autocast (R1 and the weights in "
                        "float32); about 1.4x faster on a CPU with native bf16 (AVX512-BF16 or AMX), slower on one without "
                        "(default float32)")
    p.add_argument("--fid-samples", type=int, default=2000, help="samples scored by the evaluator (0: skip)")
    p.add_argument("--from-checkpoint", type=Path, metavar="FILE",
                   help="export this training checkpoint (and the curves.json beside it) instead of training")
    p.add_argument("--checkpoint-to", type=Path, metavar="FILE",
                   help="while training, write a checkpoint (and curves.json) here every 500 steps")
    p.add_argument("--resume", type=Path, metavar="FILE",
                   help="with --checkpoint-to: continue the run in this checkpoint (same architecture) to --steps")
    p.add_argument("--widen", action="store_true",
                   help="with --resume: the checkpoint's networks may be narrower than --g-widths/--d-widths; they "
                        "are grown to them so that they start out drawing what the checkpoint drew (the z and w "
                        "dimensions and the discriminator's last width stay)")
    p.add_argument("--earlier", action="append", default=[], metavar="COMMAND",
                   help="with --resume: the command of an earlier stage, when the checkpoint does not record it")
    p.add_argument("--data", type=Path, help="the Fashion-MNIST idx folder (default: Debian's)")
    p.add_argument("--out", type=Path, help="where model folders go (default: the shipped exported_models/)")
    p.add_argument("--docs", type=Path, default=Path("docs"), help="where the curves plot goes (default docs/)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.set_defaults(handler=cmd_export)


def cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np

    from genstudio.cli import CliError
    from genstudio.engines.gan import GanModel
    from genstudio.runtime.imaging import to_uint8

    if args.n < 1:
        raise CliError("--n must be at least 1")
    check_seed(args.seed)
    if args.truncation is not None and not math.isfinite(args.truncation):
        raise CliError(f"--truncation must be a number, got {args.truncation}")
    entry = pick_model("gan", args.model)
    try:  # a broken model folder (a bad model.json value, a missing or corrupt .npy or .onnx): one line
        model = GanModel(entry, session_pool(args))
        psi = args.truncation if args.truncation is not None else model.default_truncation
        t0 = time.perf_counter()
        batch = model.sample(args.n, seed=args.seed, truncation=psi)
        seconds = time.perf_counter() - t0
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise CliError(f"{entry.name} cannot be used: {e}") from None
    settings = {"family": "gan", "model": entry.name, "seed": args.seed, "n": args.n, "truncation": psi}
    written = write_images(to_uint8(batch.images, value_range=(0.0, 1.0)), args, settings=settings)
    summary = {"model": entry.name, "seed": args.seed, "n": args.n, "truncation": psi,
               "shape": list(batch.images.shape), "seconds": round(seconds, 4), "written": written,
               "mean_pixel": float(np.mean(batch.images)), "z_norm_mean": float(np.linalg.norm(batch.z, axis=1).mean())}
    emit(args, summary, f"{entry.name}: {args.n} samples (truncation {psi:g}) in {seconds * 1000:.0f} ms"
                        + (f" -> {', '.join(written.values())}" if written else ""))
    return 0


def _widths(text: str, default: tuple[int, ...], flag: str) -> tuple[int, ...]:
    from genstudio.cli import CliError

    try:
        return tuple(int(w) for w in text.split(",")) if text else tuple(default)
    except ValueError:
        raise CliError(f"{flag} must be comma-separated integers, not {text!r}") from None


def _command(args: argparse.Namespace, steps: int, batch: int, g_widths, d_widths) -> str:
    """The one command that rebuilds exactly this model (what build.command records)."""
    words = ["genstudio", "export", "gan", "--dataset", args.dataset, "--steps", str(steps), "--batch", str(batch),
             "--g-widths", ",".join(map(str, g_widths)), "--d-widths", ",".join(map(str, d_widths)),
             *(["--fourier", str(args.fourier)] if args.fourier else []),
             "--z-dim", str(args.z_dim), "--w-dim", str(args.w_dim), "--r1-every", str(args.r1_every),
             "--r1-gamma", f"{args.r1_gamma:g}", *(["--augment", args.augment] if args.augment else []),
             "--fid-samples", str(args.fid_samples), "--seed", str(args.seed)]
    if args.precision != "float32":
        words += ["--precision", args.precision]
    if args.lr:
        words += ["--lr", f"{args.lr:g}"]
    for flag, value in (("--train-images", args.train_images), ("--threads", args.threads), ("--data", args.data),
                        ("--out", args.out), ("--from-checkpoint", args.from_checkpoint),
                        ("--checkpoint-to", args.checkpoint_to),
                        ("--resume", args.resume)):
        if value:
            words += [flag, str(value)]
    if args.widen:
        words += ["--widen"]
    if args.docs != Path("docs"):
        words += ["--docs", str(args.docs)]
    return shlex.join(words)


def _check_resume(args: argparse.Namespace, g_widths: tuple[int, ...], d_widths: tuple[int, ...]) -> None:
    """--resume's and --widen's preconditions, as clear errors before any training: a checkpoint of the same design
    whose networks have the asked widths, or with --widen, can grow to them without changing what they compute."""
    from genstudio.cli import CliError
    from genstudio.export.gan.build import checkpoint_info
    from genstudio.export.gan.generator import GanConfig

    if args.widen and not args.resume:
        raise CliError("--widen goes with --resume")
    if not args.resume:
        return
    had = checkpoint_info(args.resume)["gan"]
    if had["mapping_layers"] != GanConfig.mapping_layers:
        raise CliError(f"the checkpoint's mapping network has {had['mapping_layers']} layers, not "
                       f"{GanConfig.mapping_layers}: it is not this design")
    if (had["z_dim"], had["w_dim"]) != (args.z_dim, args.w_dim):
        raise CliError(f"the checkpoint has --z-dim {had['z_dim']} --w-dim {had['w_dim']}; a resumed run keeps them")
    had_g, had_d = ",".join(map(str, had["g_widths"])), ",".join(map(str, had["d_widths"]))
    if args.fourier != had.get("fourier", 0):  # sinusoids grafted onto a trained generator went unused (docs/gan.md)
        raise CliError(f"the checkpoint has --fourier {had.get('fourier', 0)}; a resumed run keeps it")
    if not args.widen:
        if (tuple(had["g_widths"]), tuple(had["d_widths"])) != (g_widths, d_widths):
            raise CliError(f"the checkpoint's networks are --g-widths {had_g} --d-widths {had_d}; resume with those, "
                           "or add --widen to grow them to the widths given")
        return
    for flag, old, new, text in (("--g-widths", had["g_widths"], g_widths, had_g),
                                 ("--d-widths", had["d_widths"], d_widths, had_d)):
        if len(old) != len(new) or any(a > b for a, b in zip(old, new, strict=True)):
            raise CliError(f"{flag} {','.join(map(str, new))} is not a widening of the checkpoint's {text} "
                           "(same stages, none narrower)")
    if d_widths[-1] != had["d_widths"][-1]:
        raise CliError(f"--widen keeps the discriminator's last width ({had['d_widths'][-1]})")


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from genstudio.cli import CliError
    from genstudio.export.data.fashion_mnist import DatasetMissing
    from genstudio.export.gan.build import DATASET_DEFAULTS, GanBuild, build_gan, checkpoint_info, train_gan
    from genstudio.export.gan.generator import GanConfig
    from genstudio.export.gan.train import GanTrainConfig
    from genstudio.runtime.jobs import text_bar
    from genstudio.runtime.manifest import Manifest
    from genstudio.runtime.paths import shipped_models_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    d = DATASET_DEFAULTS[args.dataset]
    steps, batch = args.steps or d["steps"], args.batch or d["batch"]
    args.r1_gamma = args.r1_gamma or d["r1_gamma"]
    g_widths = _widths(args.g_widths, d["g_widths"], "--g-widths")
    d_widths = _widths(args.d_widths, d["d_widths"], "--d-widths")
    if len(g_widths) != len(d_widths):
        raise CliError("--g-widths and --d-widths need the same number of stages")
    if args.fourier < 0:
        raise CliError(f"--fourier must be 0 or more, got {args.fourier}")
    if not (math.isfinite(args.lr) and args.lr >= 0):
        raise CliError(f"--lr must be a positive number, got {args.lr:g}")
    if args.resume and not (args.checkpoint_to and args.resume.is_file()):
        raise CliError("--resume needs an existing checkpoint file and --checkpoint-to")
    _check_resume(args, g_widths, d_widths)
    if args.from_checkpoint:
        if not args.from_checkpoint.is_file():
            raise CliError(f"no checkpoint at {args.from_checkpoint}")
        info = checkpoint_info(args.from_checkpoint)
        steps, batch = info["step"], info["train"]["batch_size"]
        g_widths, d_widths = tuple(info["gan"]["g_widths"]), tuple(info["gan"]["d_widths"])
        args.z_dim, args.w_dim = info["gan"]["z_dim"], info["gan"]["w_dim"]  # the command records what was trained
        args.fourier = info["gan"].get("fourier", 0)
        args.r1_every, args.seed = info["train"]["r1_every"], info["train"]["seed"]
        args.r1_gamma = info["train"]["r1_gamma"]
        args.augment = info["train"].get("augment", "")
        args.precision = info["train"].get("precision", "float32")
        args.lr = 0.0 if info["train"]["g_lr"] == GanTrainConfig.g_lr else info["train"]["g_lr"]
    cfg = GanBuild(dataset=args.dataset,
                   gan=GanConfig(z_dim=args.z_dim, w_dim=args.w_dim, g_widths=g_widths, d_widths=d_widths,
                                 fourier=args.fourier),
                   train=GanTrainConfig(steps=steps, batch_size=batch, r1_every=args.r1_every, r1_gamma=args.r1_gamma,
                                       augment=args.augment, seed=args.seed, precision=args.precision,
                                       g_lr=args.lr or GanTrainConfig.g_lr, d_lr=args.lr or GanTrainConfig.d_lr),
                   n_train=args.train_images or d["n_train"], n_fid=args.fid_samples,
                   data_dir=str(args.data) if args.data else None,
                   checkpoint=str(args.from_checkpoint) if args.from_checkpoint else None)
    command = _command(args, steps, batch, g_widths, d_widths)
    bar = text_bar(cfg.name)
    try:
        if args.checkpoint_to and not args.from_checkpoint:  # train with periodic checkpoints, then export the last
            train_gan(cfg, bar, checkpoint_to=args.checkpoint_to, resume=args.resume, widen=args.widen,
                      command=command, earlier=tuple(args.earlier))
            cfg.checkpoint = str(args.checkpoint_to)
        folder = build_gan(cfg, args.out or shipped_models_dir(), command=command, docs_dir=args.docs, on_progress=bar)
    except DatasetMissing as e:
        raise CliError(str(e)) from None
    m = Manifest.load(folder).metrics
    print(f"{folder}: {m['train_steps']} steps, parity {m['parity']['max_abs_diff_image']:.1e}, "
          f"FID {m.get('fid', 'n/a')}, diversity {m.get('diversity', {}).get('ratio', 'n/a')}")
    return 0
