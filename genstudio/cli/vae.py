"""`genstudio generate|export|evaluate vae`: prior samples and reconstructions, training, and held-out quality.

    genstudio generate vae --model vae-fashion-mnist --n 64 --seed 0 --out grid.png --npy grid.npy --json
    genstudio generate vae --model vae-synthfaces --encode face.png --out recon.png
    genstudio export vae --dataset fashion-mnist
    genstudio evaluate vae --model vae-fashion-mnist --json
"""

from __future__ import annotations

import argparse
import math
import shlex
import time
from pathlib import Path

from genstudio.cli.common import add_generate_args, check_seed, emit, pick_model, session_pool, write_images

DATASETS = ("fashion-mnist", "synthfaces")


def register(groups) -> None:
    p = groups.generate.add_parser("vae", help="samples from a VAE's prior, or the reconstruction of an image")
    add_generate_args(p)
    p.add_argument("--n", type=int, default=16, help="prior samples to draw (default 16)")
    p.add_argument("--temperature", type=float, default=1.0, help="prior scale (default 1.0)")
    p.add_argument("--encode", type=Path, metavar="IMAGE", help="reconstruct this image instead of sampling")
    p.set_defaults(handler=cmd_generate)

    p = groups.export.add_parser("vae", help="train a convolutional VAE and export encoder and decoder")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--latent", type=int, default=0, help="latent dimensions (default: 2 fashion-mnist, 32 synthfaces)")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (default 1: the true ELBO)")
    p.add_argument("--widths", default="", help="conv stage channels, comma-separated (default: 16,32 fashion-mnist, "
                                                "12,24,48 synthfaces)")
    p.add_argument("--hidden", type=int, default=0, help="the fully connected layer's width (default: 128)")
    p.add_argument("--steps", type=int, default=0, help="training steps (default: the dataset's)")
    p.add_argument("--batch", type=int, default=128, help="images per step (default 128)")
    p.add_argument("--train-images", type=int, default=0, help="training images (default: the dataset's)")
    p.add_argument("--heldout-images", type=int, default=0, help="held-out test images measured (default: the dataset's)")
    p.add_argument("--data", type=Path, help="the Fashion-MNIST idx folder (default: Debian's)")
    p.add_argument("--out", type=Path, help="where model folders go (default: the shipped exported_models/)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.set_defaults(handler=cmd_export)

    p = groups.evaluate.add_parser("vae", help="recompute a VAE's held-out ELBO, bits/dim and KL per dimension")
    p.add_argument("--model", help="a VAE model name (default: the first)")
    p.add_argument("--n", type=int, default=2000, help="held-out images to measure on (default 2000)")
    p.add_argument("--data", type=Path, help="the Fashion-MNIST idx folder (default: Debian's)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--provider", default=None, help="auto, cuda, directml, coreml or cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0: all cores)")
    p.set_defaults(handler=cmd_evaluate)


def _load_image(path: Path):
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from genstudio.cli import CliError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))[None]  # (1, H, W, 3)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:  # the bomb: over Pillow's pixel cap
        raise CliError(f"cannot read {path}: {e}") from None


def cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np

    from genstudio.cli import CliError
    from genstudio.engines.vae import VaeModel
    from genstudio.runtime.imaging import to_uint8

    if args.n < 1:
        raise CliError("--n must be at least 1")
    check_seed(args.seed)
    if not math.isfinite(args.temperature):
        raise CliError(f"--temperature must be a number, got {args.temperature}")
    entry = pick_model("vae", args.model)
    model = VaeModel(entry, session_pool(args))
    settings = {"family": "vae", "model": entry.name, "seed": args.seed}
    t0 = time.perf_counter()
    try:  # a broken model folder (a bad model.json value, a missing or corrupt .onnx): one line
        if args.encode:
            mu, images = model.reconstruct(_load_image(args.encode))
            summary = {"model": entry.name, "encode": str(args.encode), "z": mu[0].tolist()}
            settings["encode"] = str(args.encode)
        else:
            z, images = model.sample(args.n, args.seed, args.temperature)
            summary = {"model": entry.name, "seed": args.seed, "n": args.n, "temperature": args.temperature,
                       "z_mean": z.mean(0).tolist()}
            settings.update(n=args.n, temperature=args.temperature)
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise CliError(f"{entry.name} cannot be used: {e}") from None
    seconds = time.perf_counter() - t0
    written = write_images(to_uint8(images, value_range=(0.0, 1.0)), args, settings=settings)
    summary.update(shape=list(images.shape), seconds=round(seconds, 4), written=written,
                   mean_pixel=float(np.mean(images)))
    what = f"reconstruction of {args.encode}" if args.encode else f"{args.n} prior samples"
    emit(args, summary, f"{entry.name}: {what} in {seconds * 1000:.0f} ms"
                        + (f" -> {', '.join(written.values())}" if written else ""))
    return 0


def _command(args: argparse.Namespace, latent: int, steps: int, widths: tuple[int, ...], hidden: int) -> str:
    """The one command that rebuilds exactly this model (what build.command records)."""
    words = ["genstudio", "export", "vae", "--dataset", args.dataset, "--latent", str(latent), "--beta",
             str(args.beta), "--widths", ",".join(map(str, widths)), "--hidden", str(hidden), "--steps", str(steps),
             "--batch", str(args.batch), "--seed", str(args.seed)]
    for flag, value in (("--train-images", args.train_images), ("--heldout-images", args.heldout_images),
                        ("--threads", args.threads), ("--data", args.data), ("--out", args.out)):
        if value:
            words += [flag, str(value)]
    return shlex.join(words)


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from genstudio.cli import CliError
    from genstudio.export.data.fashion_mnist import DatasetMissing
    from genstudio.export.trainer import TrainerConfig
    from genstudio.export.vae.build import DATASET_DEFAULTS, VaeBuild, build_vae
    from genstudio.export.vae.model import VaeConfig
    from genstudio.runtime.jobs import text_bar
    from genstudio.runtime.manifest import Manifest
    from genstudio.runtime.paths import shipped_models_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    d = DATASET_DEFAULTS[args.dataset]
    latent, steps = args.latent or d["latent"], args.steps or d["steps"]
    hidden = args.hidden or d["hidden"]
    try:
        widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else tuple(d["widths"])
    except ValueError:
        raise CliError(f"--widths must be comma-separated integers, not {args.widths!r}") from None
    n_heldout = args.heldout_images or d["n_heldout"]
    cfg = VaeBuild(dataset=args.dataset,
                   vae=VaeConfig(latent=latent, widths=widths, hidden=hidden, beta=args.beta),
                   trainer=TrainerConfig(steps=steps, batch_size=args.batch, lr=2e-3, warmup=100, grad_clip=20.0,
                                         seed=args.seed),
                   n_train=args.train_images or d["n_train"], n_heldout=n_heldout,
                   n_codes=min(d["n_codes"], n_heldout), n_images=min(d["n_images"], n_heldout),
                   n_fid=min(5000, n_heldout), data_dir=str(args.data) if args.data else None)
    try:
        folder = build_vae(cfg, args.out or shipped_models_dir(), command=_command(args, latent, steps, widths, hidden),
                           on_progress=text_bar(cfg.name))
    except DatasetMissing as e:
        raise CliError(str(e)) from None
    m = Manifest.load(folder).metrics
    h = m["heldout"]
    print(f"{folder}: held-out {h['bits_per_dim']:.4f} bits/dim, ELBO {h['elbo_nats']:.1f} nats, "
          f"MSE {h['reconstruction_mse']:.5f}, {h['active_dims']} active dims, "
          f"FID prior {m.get('fid_prior_samples', 'n/a')}, parity {m['parity']['max_abs_diff_image']:.1e}")
    return 0


def _heldout_images(model, args: argparse.Namespace):
    """The test images the model was measured on (Fashion-MNIST from disk, SynthFaces rendered by seed)."""
    from genstudio.cli import CliError

    if model.dataset == "fashion-mnist":
        from genstudio.export.data import fashion_mnist

        try:
            return fashion_mnist.load("test", args.data).images[:args.n]
        except fashion_mnist.DatasetMissing as e:
            raise CliError(str(e)) from None
    if model.dataset == "synthfaces":
        from genstudio.export.data.image_sets import image_set

        return image_set("synthfaces", "test", max(args.n, 2000))[0][:args.n]
    raise CliError(f"{model.name} names no dataset to measure on")


def _prior_fid(model, n: int) -> dict:
    """FID and precision/recall of n prior samples (seed 0) with the dataset's evaluator, when one is installed."""
    from genstudio.engines.evaluate import Evaluator
    from genstudio.runtime.registry import Registry

    try:
        evaluator = Evaluator.open(Registry(), model.dataset, model.pool)
    except LookupError as e:
        return {"fid_skipped": str(e)}
    report = evaluator.report(model.sample(n, seed=0)[1], k=5)
    return {"fid_prior_samples": report["fid"], "fid_name": report["fid_name"], "fid_n_samples": n,
            "recorded_fid_prior_samples": model.entry.manifest.metrics.get("fid_prior_samples"),
            "precision_recall_prior_samples": {k: report[k] for k in ("precision", "recall", "coverage")}}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError
    from genstudio.engines.vae import VaeModel
    from genstudio.runtime.jobs import drive, text_bar

    if args.n < 2:
        raise CliError("--n must be at least 2")
    entry = pick_model("vae", args.model)
    model = VaeModel(entry, session_pool(args))
    result = drive(model.evaluate(_heldout_images(model, args)), text_bar(f"{entry.name} ELBO"))
    recorded = entry.manifest.metrics.get("heldout", {})
    result["model"] = entry.name
    result["recorded_bits_per_dim"] = recorded.get("bits_per_dim")
    result["recorded_n_images"] = recorded.get("n_images")
    result.update(_prior_fid(model, args.n))
    emit(args, result, f"{entry.name}: {result['bits_per_dim']:.4f} bits/dim (recorded {result['recorded_bits_per_dim']}) "
                       f"ELBO {result['elbo_nats']:.1f} nats, MSE {result['reconstruction_mse']:.5f}, "
                       f"{result['active_dims']}/{model.latent_dim} active dims on {result['n_images']} images")
    return 0
