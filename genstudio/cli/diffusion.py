"""`genstudio export diffusion`: train a small text-to-image diffusion model and export it per component.

    genstudio export diffusion --dataset fashion-mnist --steps 4000
    genstudio export diffusion --dataset synthfaces --size 32 --checkpoint-to run/diffusion.safetensors
    genstudio export diffusion --dataset synthfaces --from-checkpoint run/diffusion.safetensors   # export a run
"""

from __future__ import annotations

import argparse
import math
import shlex
import time
from pathlib import Path

from genstudio.cli.common import PRECISIONS

DATASETS = ("synthfaces", "fashion-mnist")


def register(groups) -> None:
    p = groups.export.add_parser("diffusion", help="train a text-to-image diffusion model and export its graphs")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--size", type=int, default=0, help="image side (default: the dataset's; SynthFaces is shrunk)")
    p.add_argument("--first-size", type=int, default=None, metavar="SIDE",
                   help="progressive training: train at this smaller side first, up to --grow-at, then at --size "
                        "(0: at --size throughout; default: the dataset's)")
    p.add_argument("--grow-at", type=int, default=None, metavar="STEP",
                   help="the step where a progressive run moves to --size; the EMA and the warm-up start again")
    p.add_argument("--steps", type=int, default=0, help="training steps (default: the dataset's)")
    p.add_argument("--batch", type=int, default=0, help="images per step (default: the dataset's)")
    p.add_argument("--widths", default="", help="UNet channels per level, full resolution first, comma-separated")
    p.add_argument("--blocks", type=int, default=0, help="residual blocks per UNet level (default: the dataset's)")
    p.add_argument("--attention", default=None, metavar="LEVELS",
                   help="UNet levels with self- and cross-attention, 0 = full resolution, comma-separated")
    p.add_argument("--text-dim", type=int, default=0, help="text encoder width (default: the dataset's)")
    p.add_argument("--text-layers", type=int, default=0, help="text encoder blocks (default: the dataset's)")
    p.add_argument("--mask-padding", action=argparse.BooleanOptionalAction, default=None,
                   help="mask prompt padding out of attention and add the pooled text to the time embedding "
                        "(default: the dataset's)")
    p.add_argument("--scale-shift", action=argparse.BooleanOptionalAction, default=None,
                   help="the time and pooled-text embedding scales and shifts each residual block's normalised "
                        "features (adaptive GroupNorm) instead of being added (default: the dataset's)")
    p.add_argument("--text-aux", type=float, default=None, metavar="W",
                   help="also train the text encoder to predict the attributes its caption names, with this weight "
                        "beside the noise loss (0: off; default: the dataset's)")
    p.add_argument("--text-pretrain", type=int, default=None, metavar="N",
                   help="first, N steps of that attribute loss alone on the text encoder (default: the dataset's)")
    p.add_argument("--min-snr", type=float, default=None, metavar="GAMMA",
                   help="Min-SNR-gamma weighting of the noise loss, min(SNR, GAMMA) / SNR per sample "
                        "(0: off, plain MSE; default: the dataset's)")
    p.add_argument("--region-weight", type=float, default=None, metavar="W",
                   help="SynthFaces: weight the noise loss 1 + W on the pixels that the expression and the glasses "
                        "draw or would draw (mouth, brows, eyes; each image's weights normalised to mean 1), so those "
                        "small details count more; the first run renders the maps once, a few minutes "
                        "(0: off; default: the dataset's)")
    p.add_argument("--lr", type=float, default=0.0, help="peak AdamW learning rate (default 1e-3)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="bfloat16: forward passes under bf16 autocast, weights and optimiser in float32; about 1.3x "
                        "faster on a CPU with native bf16 (AVX512-BF16 or AMX), slower on one without "
                        "(default float32)")
    p.add_argument("--train-images", type=int, default=0, help="training images (default: the dataset's)")
    p.add_argument("--from-checkpoint", type=Path, metavar="FILE",
                   help="export this training checkpoint instead of training")
    p.add_argument("--checkpoint-to", type=Path, metavar="FILE",
                   help="while training, write a checkpoint here every --checkpoint-every steps")
    p.add_argument("--checkpoint-every", type=int, default=500, metavar="N", help="(default 500)")
    p.add_argument("--resume", type=Path, metavar="FILE",
                   help="with --checkpoint-to: continue the run in this checkpoint to --steps: the same "
                        "architecture, or with --widths a whole factor wider at every level (Net2Net: the wider "
                        "UNet starts out computing the same)")
    p.add_argument("--reset-ema", action="store_true",
                   help="with --resume: start the EMA weights (what ships) again from the resumed raw weights; "
                        "for a stage that changes the task, such as --size")
    p.add_argument("--data", type=Path, help="the Fashion-MNIST idx folder (default: Debian's)")
    p.add_argument("--out", type=Path, help="where model folders go (default: the shipped exported_models/)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.set_defaults(handler=cmd_export)

    p = groups.export.add_parser("diffusion-int8", help="add an int8 UNet (ONNX Runtime static quantization, "
                                                        "calibrated on sampling runs) to a diffusion model folder")
    p.add_argument("--model", required=True, help="a diffusion model name or folder")
    p.add_argument("--runs", type=int, default=4, help="sampling runs recorded for calibration (default 4)")
    p.add_argument("--steps", type=int, default=10, help="denoising steps per run (default 10)")
    p.add_argument("--default", action="store_true", help="make the int8 UNet the one the studio runs by default")
    p.set_defaults(handler=cmd_int8)


def _ints(text: str | None, flag: str) -> tuple[int, ...]:
    from genstudio.cli import CliError

    if not text:
        return ()
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise CliError(f"{flag} must be comma-separated integers, not {text!r}") from None


def _command(args: argparse.Namespace, cfg) -> str:
    """The one command that rebuilds exactly this model (what build.command records)."""
    u, t = cfg.unet, cfg.text
    from genstudio.export.diffusion.build import DATASET_DEFAULTS

    if cfg.first_size:
        growth = ["--first-size", str(cfg.first_size), "--grow-at", str(cfg.grow_at)]
    else:  # one size throughout; said outright only where the dataset's default grows
        growth = ["--first-size", "0"] if DATASET_DEFAULTS[args.dataset]["first_size"] else []
    words = ["genstudio", "export", "diffusion", "--dataset", args.dataset, "--size", str(cfg.size), *growth,
             "--steps", str(cfg.train.steps), "--batch", str(cfg.train.batch_size),
             "--widths", ",".join(map(str, u.widths)), "--blocks", str(u.blocks),
             "--attention", ",".join(map(str, u.attention)), "--text-dim", str(t.dim),
             "--text-layers", str(t.layers), "--mask-padding" if t.mask_padding else "--no-mask-padding",
             "--scale-shift" if u.scale_shift else "--no-scale-shift",
             "--text-aux", f"{cfg.train.text_aux:g}", "--text-pretrain", str(cfg.train.text_pretrain),
             "--min-snr", f"{cfg.train.min_snr:g}",
             "--lr", f"{cfg.train.lr:g}", "--train-images", str(cfg.n_train), "--seed", str(cfg.train.seed)]
    if cfg.train.region_weight or DATASET_DEFAULTS[args.dataset]["region_weight"]:
        words += ["--region-weight", f"{cfg.train.region_weight:g}"]
    if cfg.train.precision != "float32":
        words += ["--precision", cfg.train.precision]
    for flag, value in (("--threads", args.threads), ("--data", args.data), ("--out", args.out),
                        ("--from-checkpoint", args.from_checkpoint), ("--checkpoint-to", args.checkpoint_to),
                        ("--resume", args.resume)):
        if value:
            words += [flag, str(value)]
    if args.checkpoint_to and args.checkpoint_every != 500:
        words += ["--checkpoint-every", str(args.checkpoint_every)]
    if args.reset_ema:
        words.append("--reset-ema")
    return shlex.join(words)


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from genstudio.cli import CliError
    from genstudio.export.data.fashion_mnist import DatasetMissing
    from genstudio.export.diffusion.build import (
        build_diffusion,
        checkpoint_info,
        diffusion_build,
        train_diffusion,
    )
    from genstudio.runtime.jobs import text_bar
    from genstudio.runtime.manifest import Manifest
    from genstudio.runtime.paths import shipped_models_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.resume and not (args.checkpoint_to and args.resume.is_file()):
        raise CliError("--resume needs an existing checkpoint file and --checkpoint-to")
    if args.reset_ema and not args.resume:
        raise CliError("--reset-ema goes with --resume")
    if args.checkpoint_every < 1:
        raise CliError("--checkpoint-every must be at least 1")
    if args.region_weight is not None and (not 0 <= args.region_weight < math.inf
                                           or (args.region_weight and args.dataset != "synthfaces")):
        raise CliError(f"--region-weight must be 0 or positive, and only SynthFaces has attribute regions "
                       f"(got {args.region_weight:g} on {args.dataset})")
    if args.min_snr is not None and not args.min_snr >= 0:
        raise CliError(f"--min-snr must be 0 (off) or a positive gamma, not {args.min_snr:g}")
    attention = _ints(args.attention, "--attention") if args.attention is not None else None
    cfg = diffusion_build(args.dataset, size=args.size, widths=_ints(args.widths, "--widths"), blocks=args.blocks,
                          attention=attention, text_dim=args.text_dim, text_layers=args.text_layers,
                          steps=args.steps, batch=args.batch, lr=args.lr, n_train=args.train_images, seed=args.seed,
                          data_dir=str(args.data) if args.data else None, mask_padding=args.mask_padding,
                          text_aux=args.text_aux, text_pretrain=args.text_pretrain, min_snr=args.min_snr,
                          scale_shift=args.scale_shift, first_size=args.first_size, grow_at=args.grow_at,
                          region_weight=args.region_weight)
    cfg.train.precision = args.precision
    if args.from_checkpoint:
        if not args.from_checkpoint.is_file():
            raise CliError(f"no checkpoint at {args.from_checkpoint}")
        info = checkpoint_info(args.from_checkpoint)
        if info["data"]["dataset"] != args.dataset:
            raise CliError(f"{args.from_checkpoint} was trained on {info['data']['dataset']}, not {args.dataset}")
        cfg.checkpoint = str(args.from_checkpoint)
        cfg.size, cfg.n_train = info["data"]["size"], info["data"]["n_train"]  # the command records what was trained
        cfg.first_size, cfg.grow_at = info["data"].get("first_size", 0), info["data"].get("grow_at", 0)
        cfg.train.steps, cfg.train.batch_size = info["step"], info["train"]["batch_size"]
        cfg.train.lr, cfg.train.seed = info["train"]["lr"], info["train"]["seed"]
        cfg.train.text_aux = info["train"].get("text_aux", 0.0)
        cfg.train.text_pretrain = info["train"].get("text_pretrain", 0)
        cfg.train.min_snr = info["train"].get("min_snr", 0.0)
        cfg.train.precision = info["train"].get("precision", "float32")
        cfg.train.region_weight = info["train"].get("region_weight", 0.0)
        cfg.unet.widths, cfg.unet.blocks = tuple(info["unet"]["widths"]), info["unet"]["blocks"]
        cfg.unet.attention = tuple(info["unet"]["attention"])
        cfg.text.dim, cfg.text.layers = info["text"]["dim"], info["text"]["layers"]
        cfg.text.mask_padding = cfg.unet.text_mask = info["text"].get("mask_padding", False)
        cfg.unet.scale_shift = info["unet"].get("scale_shift", False)
    if cfg.size % 2 ** (len(cfg.unet.widths) - 1):
        raise CliError(f"--size {cfg.size} must halve {len(cfg.unet.widths) - 1} times (one per extra width)")
    if cfg.first_size and not args.from_checkpoint:
        if cfg.first_size % 2 ** (len(cfg.unet.widths) - 1) or cfg.first_size == cfg.size:
            raise CliError(f"--first-size {cfg.first_size} must differ from --size and halve "
                           f"{len(cfg.unet.widths) - 1} times")
        if not 0 < cfg.grow_at < cfg.train.steps:
            raise CliError(f"--grow-at must lie between 0 and --steps ({cfg.train.steps}), not {cfg.grow_at}")
    if any(not 0 <= a < len(cfg.unet.widths) for a in cfg.unet.attention):
        raise CliError(f"--attention levels must lie in 0..{len(cfg.unet.widths) - 1}")
    command = _command(args, cfg)
    bar = text_bar(cfg.name)
    t0 = time.perf_counter()
    try:
        if args.checkpoint_to and not args.from_checkpoint:  # train with periodic checkpoints, then export the last
            train_diffusion(cfg, bar, checkpoint_to=args.checkpoint_to, every=args.checkpoint_every,
                            resume=args.resume, reset_ema=args.reset_ema, command=command)
            cfg.checkpoint = str(args.checkpoint_to)
        folder = build_diffusion(cfg, args.out or shipped_models_dir(), command=command, on_progress=bar)
    except DatasetMissing as e:
        raise CliError(str(e)) from None
    m = Manifest.load(folder)
    p = m.metrics["parity"]
    print(f"{folder}: {m.metrics['train_steps']} steps ({m.build['seconds'].get('steps_per_second')} steps/s), "
          f"loss {m.metrics['train_last_100_steps']:.4f} (last 100), {m.metrics['parameters']['total']:,} parameters, "
          f"parity text {p['max_abs_diff_text_encoder_hidden']:.1e} unet {p['max_abs_diff_unet_noise_pred']:.1e}, "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


def cmd_int8(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError
    from genstudio.cli.common import pick_model
    from genstudio.export.diffusion.quantize import add_int8_unet

    if args.runs < 1 or args.steps < 1:
        raise CliError("--runs and --steps must be at least 1")
    entry = pick_model("diffusion", args.model)
    command = shlex.join(["genstudio", "export", "diffusion-int8", "--model", entry.name, "--runs", str(args.runs),
                          "--steps", str(args.steps), *(["--default"] if args.default else [])])
    path, report = add_int8_unet(entry.folder, command=command, runs=args.runs, steps=args.steps,
                                 default=args.default)
    err = report["against_float"]
    print(f"{path}: int8 convolutions, {report['calibration_feeds']} calibration batches; against the float UNet "
          f"relative RMS error {err['relative_rms_error']:.4f}, max {err['max_abs_diff']:.4f}. Measure it with "
          f"`genstudio evaluate diffusion --model {entry.name} --unet int8` and `genstudio bench diffusion`.")
    return 0

