"""`genstudio export vae`: train a convolutional VAE, export encoder and decoder, measure it, ship the map data.

    folder = build_vae(VaeBuild(dataset="fashion-mnist", latent=2), out_root, command="genstudio export vae ...")

The folder (vae-<dataset>) holds encoder.onnx (x -> mu, logvar), decoder.onnx (z -> image, loc),
log_scale.npy (the likelihood's per-pixel logistic scale), codes.npy + labels.npy (held-out posterior
means and their classes/attributes, for the map), heldout_images.npz (a few held-out images to encode)
and the safetensors checkpoint. Every number in model.json is measured through ONNX Runtime by the same
engine code `genstudio evaluate vae` runs (genstudio.engines.vae).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from genstudio.engines import evaluate as ev
from genstudio.engines.vae import VaeModel
from genstudio.export.artifacts import publish, save_checkpoint, staging_folder
from genstudio.export.data import image_sets
from genstudio.export.onnx_io import ort_session, save_onnx, versions
from genstudio.export.trainer import Trainer, TrainerConfig
from genstudio.export.vae.model import ConvVAE, DecoderGraph, EncoderGraph, VaeConfig
from genstudio.runtime.jobs import Progress, drive
from genstudio.runtime.manifest import Manifest, ModelFile
from genstudio.runtime.registry import Registry, check_folder
from genstudio.runtime.sessions import SessionConfig, SessionPool

ENCODER_FILE, DECODER_FILE = "encoder.onnx", "decoder.onnx"
SCALE_FILE, CODES_FILE, LABELS_FILE = "log_scale.npy", "codes.npy", "labels.npy"
IMAGES_FILE, CHECKPOINT_FILE = "heldout_images.npz", "vae.safetensors"

DATASET_DEFAULTS = {  # per dataset: geometry and the shipped model's settings
    "fashion-mnist": {"channels": 1, "size": 28, "latent": 2, "widths": (16, 32), "hidden": 128,
                      "n_train": 60_000, "n_heldout": 10_000, "n_codes": 5_000, "n_images": 500, "steps": 3000,
                      "fit": "centre", "colour_by": "class"},
    "synthfaces": {"channels": 3, "size": 64, "latent": 32, "widths": (12, 24, 48), "hidden": 128,
                   "n_train": 12_000, "n_heldout": 2_000, "n_codes": 2_000, "n_images": 150, "steps": 3000,
                   "fit": "resize", "colour_by": "background_colour"},  # what the top PCs separate
}


@dataclass
class VaeBuild:
    dataset: str = "fashion-mnist"  # fashion-mnist or synthfaces
    vae: VaeConfig = field(default_factory=VaeConfig)  # the architecture (channels/size set from the dataset)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(
        steps=3000, batch_size=128, lr=2e-3, warmup=100, grad_clip=20.0))
    n_train: int = 60_000  # training images (the first n of the train split)
    n_heldout: int = 10_000  # held-out images every number is measured on
    n_codes: int = 5_000  # held-out codes and labels shipped for the map
    n_images: int = 500  # held-out images shipped for "encode a sample"
    n_fid: int = 5_000  # prior samples scored by the evaluator
    latency_runs: int = 300  # batch-1 decodes timed per runtime
    evaluator_root: str | None = None  # where eval-<dataset> lives (None: the output root)
    data_dir: str | None = None  # Fashion-MNIST idx folder; None: Debian's

    @property
    def name(self) -> str:
        return f"vae-{self.dataset}"


def _images_nchw(u8: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, 3) to float32 (N, C, H, W) holding 0..255."""
    return (u8[:, None] if u8.ndim == 3 else u8.transpose(0, 3, 1, 2)).astype(np.float32)


def decode_latency(vae: ConvVAE, decoder_path: Path, runs: int) -> dict:
    """Median batch-1 decode time through ONNX Runtime (1 thread) and PyTorch eager, from one run each."""
    z = np.random.default_rng(0).standard_normal((1, vae.cfg.latent)).astype(np.float32)
    sess = ort_session(decoder_path, threads=1)
    zt = torch.from_numpy(z)
    times: dict[str, list[float]] = {"ort": [], "torch": []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for _ in range(10):  # warm up both
                sess.run(None, {"z": z})
                vae.decoder(zt)
            for _ in range(runs):
                t0 = time.perf_counter()
                sess.run(None, {"z": z})
                t1 = time.perf_counter()
                vae.decoder(zt)
                t2 = time.perf_counter()
                times["ort"].append(t1 - t0)
                times["torch"].append(t2 - t1)
    finally:
        torch.set_num_threads(threads)
    ort_ms, torch_ms = (statistics.median(times[k]) * 1000 for k in ("ort", "torch"))
    return {"onnxruntime_ms": round(ort_ms, 4), "torch_eager_ms": round(torch_ms, 4),
            "speedup_onnxruntime_over_torch": round(torch_ms / ort_ms, 2), "runs": runs, "threads": 1,
            "method": f"median of {runs} interleaved batch-1 decodes each, one thread, after 10 warm-up runs"}


def build_vae(cfg: VaeBuild, out_root: Path, *, command: str,
              on_progress: Callable[[Progress], None] | None = None) -> Path:
    """Train, export, check parity, measure; returns the model folder (replaced atomically)."""
    started = time.perf_counter()
    report = on_progress or (lambda p: None)
    d = DATASET_DEFAULTS[cfg.dataset]
    cfg.vae.channels, cfg.vae.size = d["channels"], d["size"]
    train_u8, _, heads = image_sets.image_set(cfg.dataset, "train", cfg.n_train, data_dir=cfg.data_dir)
    held_u8, held_y, _ = image_sets.image_set(cfg.dataset, "test", cfg.n_heldout, data_dir=cfg.data_dir)
    train_t = torch.from_numpy(_images_nchw(train_u8))  # (N, C, H, W), 0..255
    torch.manual_seed(cfg.trainer.seed)
    vae = ConvVAE(cfg.vae)
    total = cfg.trainer.steps + 4

    def batches(step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Generator]:
        return train_t[torch.randint(0, len(train_t), (cfg.trainer.batch_size,), generator=gen)], gen

    trainer = Trainer(cfg.trainer, vae, lambda m, b: m.loss(*b), batches)
    trainer.add_callback("on_batch_end", lambda t: report(
        Progress(t.step, total, f"{cfg.name} {t.loss / np.log(2):.3f} bits/dim (train, beta-ELBO)")))
    trainer.run()
    vae.eval()

    tmp = staging_folder(out_root, cfg.name)
    save_checkpoint(vae, tmp / CHECKPOINT_FILE, format="genstudio-vae", config=cfg.vae.to_dict())
    x_example = torch.from_numpy(_images_nchw(held_u8[:4]) / 255.0)
    save_onnx(EncoderGraph(vae), x_example, tmp / ENCODER_FILE, input_name="x", output_names=["mu", "logvar"])
    save_onnx(DecoderGraph(vae), torch.randn(4, cfg.vae.latent), tmp / DECODER_FILE, input_name="z",
              output_names=["image", "loc"])
    np.save(tmp / SCALE_FILE, vae.decoder.log_scale.detach().numpy().astype(np.float32))
    report(Progress(cfg.trainer.steps + 1, total, f"{cfg.name} exported"))

    # held-out codes for the map, through ONNX Runtime (what the studio will show)
    x_held = _images_nchw(held_u8) / 255.0
    enc = ort_session(tmp / ENCODER_FILE)
    mu = np.concatenate([enc.run(["mu"], {"x": x_held[i:i + 1000]})[0] for i in range(0, len(x_held), 1000)])
    np.save(tmp / CODES_FILE, mu[:cfg.n_codes].astype(np.float32))
    np.save(tmp / LABELS_FILE, held_y[:cfg.n_codes].astype(np.uint8))
    np.savez_compressed(tmp / IMAGES_FILE, images=held_u8[:cfg.n_images])

    # parity on the same inputs, float32 both sides
    with torch.no_grad():
        mu_t, lv_t = vae.encoder(torch.from_numpy(x_held[:256]))
        z = torch.randn(256, cfg.vae.latent, generator=torch.Generator().manual_seed(7))
        img_t, _ = vae.decoder(z)
    mu_o, lv_o = enc.run(None, {"x": x_held[:256]})
    img_o = ort_session(tmp / DECODER_FILE).run(["image"], {"z": z.numpy()})[0]
    parity = {"max_abs_diff_mu": float(np.abs(mu_t.numpy() - mu_o).max()),
              "max_abs_diff_logvar": float(np.abs(lv_t.numpy() - lv_o).max()),
              "max_abs_diff_image": float(np.abs(img_t.numpy() - img_o).max()), "n": 256}
    report(Progress(cfg.trainer.steps + 2, total, f"{cfg.name} parity {parity['max_abs_diff_image']:.1e}"))

    manifest = _manifest(cfg, heads, command=command, metrics={"parity": parity})
    manifest.save(tmp)
    model = VaeModel(check_folder(tmp, "shipped"), SessionPool(SessionConfig(provider="cpu")))
    metrics = drive(model.evaluate(held_u8, seed=cfg.trainer.seed))
    metrics = {"heldout": metrics, "parity": parity, **_quality(cfg, model, held_u8, out_root)}
    metrics["kl_per_dim_nats"] = metrics["heldout"].pop("kl_per_dim_nats")
    metrics["decode_latency_batch1"] = decode_latency(vae, tmp / DECODER_FILE, cfg.latency_runs)
    metrics["train_loss_bits_per_dim_last_100_steps"] = float(np.mean(trainer.losses[-100:]) / np.log(2))
    metrics["parameters"] = int(sum(p.numel() for p in vae.parameters()))
    metrics["method"] = (f"held-out = the first {len(held_u8)} images of the {cfg.dataset} test split; ELBO with one "
                         "posterior sample per image (seeded), discretized-logistic likelihood of the 8-bit pixels, "
                         "bits/dim = -ELBO / (D ln 2); reconstruction error = mean squared error of the decoded "
                         "posterior mean in [0, 1]")
    report(Progress(cfg.trainer.steps + 3, total, f"{cfg.name} measured"))
    manifest = _manifest(cfg, heads, command=command, metrics=metrics,
                         seconds={"train": round(trainer.elapsed, 1), "total": round(time.perf_counter() - started, 1)})
    manifest.save(tmp)
    final = publish(tmp, out_root, cfg.name)
    report(Progress(total, total, f"{cfg.name} {metrics['heldout']['bits_per_dim']:.3f} bits/dim"))
    return final


def _quality(cfg: VaeBuild, model: VaeModel, held_u8: np.ndarray, out_root: Path) -> dict:
    """FID and precision/recall of prior samples and reconstructions with the dataset's evaluator, if installed."""
    root = Path(cfg.evaluator_root) if cfg.evaluator_root else Path(out_root)
    try:
        evaluator = ev.Evaluator.open(Registry([(root, "shipped")]), cfg.dataset, model.pool)
    except LookupError as e:
        return {"fid_skipped": str(e)}
    _, samples = model.sample(cfg.n_fid, seed=cfg.trainer.seed)
    _, recon = model.reconstruct(held_u8[:cfg.n_fid])
    prior = evaluator.report(samples, k=5)
    rec = evaluator.report(recon, k=5)
    return {
        "fid_prior_samples": round(prior["fid"], 3),
        "fid_reconstructions": round(rec["fid"], 3),
        "fid_name": prior["fid_name"],
        "fid_train_vs_test_floor": evaluator.entry.manifest.metrics.get("fid_train_vs_test"),
        "precision_recall_prior_samples": {k: prior[k] for k in ("precision", "recall", "density", "coverage", "k")},
        "fid_evaluator": {"name": evaluator.entry.name, "command": evaluator.entry.manifest.build.get("command"),
                          "date": evaluator.entry.manifest.build.get("date")},
        "fid_method": (f"{cfg.n_fid} prior samples z ~ N(0, I) (seed {cfg.trainer.seed}) and {cfg.n_fid} reconstructions "
                       f"of held-out images, against the test-set statistics shipped with {evaluator.entry.name}"),
    }


def _manifest(cfg: VaeBuild, heads: dict[str, list[str]], *, command: str, metrics: dict,
              seconds: dict | None = None) -> Manifest:
    v = cfg.vae
    c, s, k = v.channels, v.size, v.latent
    title = {"fashion-mnist": f"Fashion-MNIST VAE ({k}-D latent)", "synthfaces": f"SynthFaces VAE ({k}-D latent)"}
    return Manifest(
        family="vae", name=cfg.name, version="1", title=title[cfg.dataset],
        description=(f"A convolutional VAE on {cfg.dataset} with a {k}-dimensional latent (beta = {v.beta}) and a "
                     "discretized-logistic pixel likelihood; encoder and decoder as separate graphs, the held-out "
                     "codes and labels for the latent map."),
        files=[ModelFile(ENCODER_FILE, "encoder"), ModelFile(DECODER_FILE, "decoder"),
               ModelFile(SCALE_FILE, "likelihood_scale"), ModelFile(CODES_FILE, "heldout_codes"),
               ModelFile(LABELS_FILE, "heldout_labels"), ModelFile(IMAGES_FILE, "heldout_images"),
               ModelFile(CHECKPOINT_FILE, "checkpoint")],
        io={"encoder": {"inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", c, s, s]}],
                        "outputs": [{"name": "mu", "dtype": "float32", "shape": ["batch", k]},
                                    {"name": "logvar", "dtype": "float32", "shape": ["batch", k]}]},
            "decoder": {"inputs": [{"name": "z", "dtype": "float32", "shape": ["batch", k]}],
                        "outputs": [{"name": "image", "dtype": "float32", "shape": ["batch", c, s, s]},
                                    {"name": "loc", "dtype": "float32", "shape": ["batch", c, s, s]}]}},
        defaults={"n_samples": 16, "seed": 0, "temperature": 1.0, "interpolation_steps": 12,
                  "colour_by": DATASET_DEFAULTS[cfg.dataset]["colour_by"]},
        license=f"MIT (weights); data {image_sets.data_license(cfg.dataset)}",
        data_source=(f"{image_sets.data_source(cfg.dataset)}: {cfg.n_train} training images; held-out codes from "
                     f"the first {cfg.n_codes} test images"),
        build={"command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "seconds": seconds or {}, "versions": versions(), "trainer": cfg.trainer.to_dict(),
               "vae": v.to_dict(), "beta": v.beta,
               "data": {key: val for key, val in asdict(cfg).items() if key not in ("vae", "trainer")}},
        metrics=metrics,
        extra={"dataset": cfg.dataset, "latent_dim": k, "beta": v.beta, "image_shape": [c, s, s],
               "value_range": [0.0, 1.0], "fit": DATASET_DEFAULTS[cfg.dataset]["fit"], "heads": heads,
               "prior": f"standard normal N(0, I) in {k} dimensions",
               "likelihood": "discretized logistic per 8-bit pixel; loc from decoder.onnx, log scale in log_scale.npy"},
    )
