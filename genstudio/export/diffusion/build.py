"""`genstudio export diffusion`: train a small text-to-image diffusion model, export it per component, check parity.

    cfg = diffusion_build("fashion-mnist", steps=4000)
    folder = build_diffusion(cfg, out_root, command="genstudio export diffusion --dataset fashion-mnist ...")

The folder (diffusion-<dataset>) follows diffusers' per-component layout:

    model.json                          family "diffusion"
    text_encoder/model.onnx             input_ids int64 (B, T) -> hidden (B, T, text_dim)
    unet/model.onnx                     sample, timestep (float, 0..999), encoder_hidden_states -> noise_pred
    unet/model.int8.onnx                the same UNet with int8 convolutions (export/diffusion/quantize.py)
    tokenizer/tokenizer.json            the `tokenizers` word-level tokenizer ([PAD] = 0, [UNK] = 1)
    scheduler/scheduler_config.json     diffusers' scheduler settings of the training noise schedule
    diffusion.safetensors               raw + EMA weights, losses, configs and tokenizer (a resumable run)
    curves.json                         the loss of every training step

The EMA weights ship. Quality numbers (FID, prompt adherence) come from `genstudio evaluate diffusion`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from genstudio.export.artifacts import publish, staging_folder
from genstudio.export.data import image_sets
from genstudio.export.diffusion import checkpoint as ckpt
from genstudio.export.diffusion.data import (
    REGION_KEYS,
    SYNTHFACES_SEED,
    attribute_regions,
    data_source,
    named_captions,
    resample_name,
    training_set,
)
from genstudio.export.diffusion.onnx_export import TEXT_ENCODER_FILE, UNET_FILE, check_parity, export_graphs
from genstudio.export.diffusion.text_encoder import TextConfig
from genstudio.export.diffusion.tokenizer import (
    PAD_ID,
    UNK_ID,
    build_tokenizer,
    dataset_vocabulary,
    encode,
    fashion_mnist_captions,
    longest_caption,
)
from genstudio.export.diffusion.train import (
    DiffusionModel,
    DiffusionRun,
    DiffusionTrainConfig,
    TrainingData,
    build_model,
    count_params,
)
from genstudio.export.diffusion.unet import UNetConfig
from genstudio.export.onnx_io import versions
from genstudio.runtime.jobs import Progress
from genstudio.runtime.manifest import Manifest, ModelFile

TOKENIZER_FILE, SCHEDULER_FILE = "tokenizer/tokenizer.json", "scheduler/scheduler_config.json"
CHECKPOINT_FILE, CURVES_FILE = "diffusion.safetensors", "curves.json"

DATASET_DEFAULTS = {  # per dataset: geometry, architecture and the shipped model's training settings
    # about 0.7-0.9 s per step at batch 64 on one busy core: 3500 steps in 40-55 minutes
    "fashion-mnist": {"channels": 1, "size": 32, "source_size": 32, "widths": (16, 32, 64, 64), "blocks": 1,
                      "attention": (2, 3), "text_dim": 64, "text_layers": 2, "max_length": 16,
                      "n_train": 60_000, "steps": 3500, "batch": 64, "guidance": 4.0, "mask_padding": False,
                      "text_aux": 0.0, "text_pretrain": 0, "min_snr": 0.0, "region_weight": 0.0,
                      "scale_shift": False, "first_size": 0, "grow_at": 0},
    # Progressive: 11250 steps at 32x32 (about 0.95 s per step at batch 64 on two threads), then 4250 at 48x48
    # (about 2.1 s, or 1.6 s with --precision bfloat16 on a CPU with native bf16), about 5.5 hours in all. The
    # text encoder first learns the attributes its captions name (1000 steps, 2 minutes), then keeps that loss
    # at weight 0.1: without it, 4500 steps learnt only the subject word.
    # Attention at 16x16 too and Min-SNR-5 weighting roughly doubled hair-colour and background-colour adherence
    # at 3000 steps; adherence kept rising to 10500 steps, and 48x48 lifted glasses, headwear and FID
    # (docs/diffusion.md).
    "synthfaces": {"channels": 3, "size": 48, "source_size": 64, "widths": (16, 32, 64, 128), "blocks": 1,
                   "attention": (1, 2, 3), "text_dim": 128, "text_layers": 2, "max_length": 40,
                   "n_train": 12_000, "steps": 15_500, "batch": 64, "guidance": 4.0, "mask_padding": True,
                   "text_aux": 0.1, "text_pretrain": 1000, "min_snr": 5.0, "region_weight": 0.0,
                   "scale_shift": False, "first_size": 32, "grow_at": 11_250},
}
EXAMPLE_PROMPTS = {  # none names a held-out (hair colour, expression, glasses) combination
    "synthfaces": ["a smiling woman with long blonde hair", "a man with a full beard wearing sunglasses",
                   "a surprised person with curly red hair on a blue background",
                   "a serious man with short black hair wearing a cap",
                   "a woman with pink hair in a bun wearing hoop earrings, teal backdrop"],
    "fashion-mnist": [fashion_mnist_captions()[k] for k in (0, 1, 3, 7, 8)],
}


@dataclass
class DiffusionBuild:
    dataset: str = "synthfaces"  # synthfaces or fashion-mnist
    size: int = 32  # image side the model trains and samples at
    first_size: int = 0  # progressive: train at this smaller side first (0: at `size` throughout) ...
    grow_at: int = 0  # ... up to this step, then at `size` (EMA and warm-up start again)
    text: TextConfig = field(default_factory=TextConfig)  # vocab_size is set from the tokenizer
    unet: UNetConfig = field(default_factory=UNetConfig)  # channels, size and context_dim are set from the rest
    train: DiffusionTrainConfig = field(default_factory=DiffusionTrainConfig)
    n_train: int = 12_000  # training images (the first n of the train split)
    guidance: float = 4.0  # the classifier-free guidance scale the studio starts from
    caption_draws: int = 20_000  # captions drawn to measure the longest (must fit max_length)
    data_dir: str | None = None  # Fashion-MNIST idx folder; None: Debian's
    checkpoint: str | None = None  # export this training checkpoint instead of training
    int8: bool = True  # also write unet/model.int8.onnx (static quantization calibrated on sampling runs)

    @property
    def name(self) -> str:
        return f"diffusion-{self.dataset}"


def diffusion_build(dataset: str, *, size: int = 0, widths: tuple[int, ...] = (), blocks: int = 0,
                    attention: tuple[int, ...] | None = None, text_dim: int = 0, text_layers: int = 0,
                    steps: int = 0, batch: int = 0, lr: float = 0.0, n_train: int = 0, seed: int = 0,
                    data_dir: str | None = None, mask_padding: bool | None = None, text_aux: float | None = None,
                    text_pretrain: int | None = None, min_snr: float | None = None,
                    scale_shift: bool | None = None, first_size: int | None = None,
                    grow_at: int | None = None, region_weight: float | None = None) -> DiffusionBuild:
    """A build with the dataset's defaults; a zero / empty / None argument keeps the default (for mask_padding,
    text_aux, text_pretrain, min_snr, region_weight, scale_shift, first_size and grow_at only None does, as 0 and
    False turn them off). A `size` other than the default trains at that size throughout unless first_size says
    otherwise."""
    d = DATASET_DEFAULTS[dataset]
    if first_size is None:
        first_size = d["first_size"] if not size or size == d["size"] else 0
    if grow_at is None:
        grow_at = d["grow_at"] if first_size else 0
    mask = d["mask_padding"] if mask_padding is None else mask_padding
    text_dim = text_dim or d["text_dim"]
    train = DiffusionTrainConfig(steps=steps or d["steps"], batch_size=batch or d["batch"], seed=seed,
                                 text_aux=d["text_aux"] if text_aux is None else text_aux,
                                 text_pretrain=d["text_pretrain"] if text_pretrain is None else text_pretrain,
                                 min_snr=d["min_snr"] if min_snr is None else min_snr,
                                 region_weight=d["region_weight"] if region_weight is None else region_weight)
    if lr:
        train.lr = lr
    return DiffusionBuild(
        dataset=dataset, size=size or d["size"], first_size=first_size, grow_at=grow_at,
        text=TextConfig(max_length=d["max_length"], dim=text_dim, layers=text_layers or d["text_layers"],
                        heads=max(1, text_dim // 32), mask_padding=mask),
        unet=UNetConfig(widths=tuple(widths or d["widths"]), blocks=blocks or d["blocks"],
                        attention=tuple(d["attention"] if attention is None else attention),
                        text_mask=mask, scale_shift=d["scale_shift"] if scale_shift is None else scale_shift),
        train=train, n_train=n_train or d["n_train"], guidance=d["guidance"], data_dir=data_dir)


def _settle(cfg: DiffusionBuild, tok: Tokenizer) -> None:
    """Fill the configs' derived fields: vocabulary size, image geometry, the UNet's context size."""
    cfg.text.vocab_size = tok.get_vocab_size()
    cfg.unet.channels = DATASET_DEFAULTS[cfg.dataset]["channels"]
    cfg.unet.size = cfg.size
    cfg.unet.context_dim = cfg.text.dim


def prepare(cfg: DiffusionBuild) -> TrainingData:
    """The tokenizer (checked against the longest caption) and the training images with their captions."""
    tok = build_tokenizer(dataset_vocabulary(cfg.dataset))
    _settle(cfg, tok)
    longest = _longest(cfg.dataset, cfg.caption_draws)
    if longest > cfg.text.max_length:
        raise ValueError(f"a {cfg.dataset} caption has {longest} tokens, more than max_length {cfg.text.max_length}")
    _example_ids(cfg, tok)
    images, captions = training_set(cfg.dataset, cfg.size, cfg.n_train, cfg.data_dir)
    named = (named_captions(cfg.dataset, cfg.n_train, cfg.data_dir)
             if cfg.train.text_aux or cfg.train.text_pretrain else None)
    return TrainingData(torch.from_numpy(images), captions, tok, cfg.text.max_length, named, _regions(cfg, cfg.size))


def _regions(cfg: DiffusionBuild, size: int) -> torch.Tensor | None:
    """The attribute-region maps at `size` where the run weights those pixels (region_weight), else None."""
    if not cfg.train.region_weight:
        return None
    return torch.from_numpy(attribute_regions(cfg.dataset, size, cfg.n_train)).half()


def _example_ids(cfg: DiffusionBuild, tok: Tokenizer) -> np.ndarray:
    """The example prompts and the empty one, padded; raises when a word is outside the vocabulary."""
    ids = encode(tok, [*EXAMPLE_PROMPTS[cfg.dataset], ""], cfg.text.max_length)
    if (ids == UNK_ID).any():
        raise ValueError(f"an example prompt holds a word outside the {cfg.dataset} vocabulary")
    return ids


@functools.cache
def _longest(dataset: str, draws: int) -> int:
    """Tokens in the longest of `draws` training captions (every caption, for Fashion-MNIST)."""
    return longest_caption(dataset, build_tokenizer(dataset_vocabulary(dataset)), n=draws)


def _meta(cfg: DiffusionBuild, tok: Tokenizer, stages: list[str], size: int = 0) -> dict[str, str]:
    """A checkpoint's metadata; `size` is the side trained so far (a progressive run's first_size before grow_at)."""
    data = {"dataset": cfg.dataset, "size": size or cfg.size, "n_train": cfg.n_train, "guidance": cfg.guidance,
            "data_dir": cfg.data_dir, "first_size": cfg.first_size, "grow_at": cfg.grow_at}
    return {"text": json.dumps(cfg.text.to_dict()), "unet": json.dumps(cfg.unet.to_dict()), "data": json.dumps(data),
            "tokenizer": tok.to_str(), "stages": json.dumps(stages)}


def train_diffusion(cfg: DiffusionBuild, on_progress: Callable[[Progress], None] | None = None,
                    checkpoint_to: Path | None = None, every: int = 500, resume: Path | None = None,
                    reset_ema: bool = False, command: str = "", earlier: tuple[str, ...] = ()) -> DiffusionRun:
    """Train from scratch, or continue the run in `resume` up to cfg.train.steps (with `reset_ema`, the EMA
    starts again from the resumed raw weights); with `checkpoint_to`, write a checkpoint every `every` steps and
    at the end. The checkpoint lists the command of every stage."""
    report = on_progress or (lambda p: None)
    data = prepare(cfg)
    run = DiffusionRun(cfg.train, build_model(cfg.text, cfg.unet, cfg.train.seed), data)
    stages = list(earlier)
    if resume:
        meta = ckpt.restore_run(Path(resume), run)
        stages += json.loads(meta.get("stages", "[]"))
        if reset_ema:
            run.reset_ema()
    stages += [command] if command else []
    small = cfg.first_size and run.step < cfg.grow_at  # a progressive run still at its first size
    if small:  # the same captions and tokenizer, only the images smaller
        images, _ = training_set(cfg.dataset, cfg.first_size, cfg.n_train, cfg.data_dir)
        run.data = replace(data, images=torch.from_numpy(images), regions=_regions(cfg, cfg.first_size))

    def meta() -> dict[str, str]:
        return _meta(cfg, data.tokenizer, stages, cfg.first_size if run.data is not data else cfg.size)

    def on_batch_end(r: DiffusionRun) -> None:
        recent = r.losses[-50:]
        report(Progress(r.step, cfg.train.steps, f"{cfg.name} loss {sum(recent) / len(recent):.4f}"))
        if checkpoint_to and r.step % every == 0 and r.step < cfg.train.steps:
            ckpt.save_checkpoint(checkpoint_to, r, meta())

    run.add_callback("on_batch_end", on_batch_end)
    if small:
        run.train(until=cfg.grow_at)
        if run.step == cfg.grow_at:
            run.grow(data)
    run.train()
    if checkpoint_to:  # the last step, also when a resumed run had nothing left to do
        ckpt.save_checkpoint(checkpoint_to, run, meta())
    return run


def build_diffusion(cfg: DiffusionBuild, out_root: Path, *, command: str,
                    on_progress: Callable[[Progress], None] | None = None) -> Path:
    """Train (or load cfg.checkpoint), export, check parity; returns the model folder (replaced atomically)."""
    report = on_progress or (lambda p: None)
    tmp = staging_folder(out_root, cfg.name)
    if cfg.checkpoint:
        src = Path(cfg.checkpoint)
        ema, meta = ckpt.load_model(src)
        data = json.loads(meta["data"])
        if data["dataset"] != cfg.dataset:
            raise ValueError(f"{src} was trained on {data['dataset']}, not {cfg.dataset}")
        cfg.text, cfg.unet = ckpt.configs(meta)
        cfg.train = DiffusionTrainConfig.from_dict(json.loads(meta["train"]))
        cfg.size, cfg.n_train, cfg.guidance = data["size"], data["n_train"], data.get("guidance", cfg.guidance)
        cfg.first_size, cfg.grow_at = data.get("first_size", 0), data.get("grow_at", 0)
        tok = Tokenizer.from_str(meta["tokenizer"])
        curves = ckpt.load_curves(src)
        losses, aux_losses = curves.get("loss", []), curves.get("aux_loss", [])
        pretrain, warm_start = json.loads(meta.get("pretrain", "{}")), json.loads(meta.get("warm_start", "{}"))
        run = {"step": int(meta["step"]), "seconds": float(meta.get("seconds", 0.0)),
               "from_checkpoint": {"path": str(src), "step": int(meta["step"]),
                                   "stages": json.loads(meta.get("stages", "[]"))}}
        ckpt.save_ema_only(src, tmp / CHECKPOINT_FILE)
    else:
        trained = train_diffusion(cfg, report)
        ema, tok, losses = trained.ema, trained.data.tokenizer, trained.losses
        aux_losses, pretrain, warm_start = trained.aux_losses, trained.pretrain, trained.warm_start
        run = {"step": trained.step, "seconds": round(trained.seconds, 1)}
        full = ckpt.save_checkpoint(tmp / "training.safetensors", trained, _meta(cfg, tok, [command] if command else []))
        ckpt.save_ema_only(full, tmp / CHECKPOINT_FILE)
        full.unlink()
    steps = run["step"]
    started = time.perf_counter()
    total = steps + 3
    report(Progress(steps, total, f"{cfg.name} trained"))

    (tmp / TOKENIZER_FILE).parent.mkdir(parents=True)
    tok.save(str(tmp / TOKENIZER_FILE))
    (tmp / SCHEDULER_FILE).parent.mkdir(parents=True)
    (tmp / SCHEDULER_FILE).write_text(json.dumps(cfg.train.schedule.scheduler_config(), indent=2) + "\n")
    curves = {"loss": losses, **({"text_aux_loss": aux_losses} if aux_losses else {})}
    (tmp / CURVES_FILE).write_text(json.dumps(curves))
    export_graphs(ema.text_encoder, ema.unet, tmp)
    report(Progress(steps + 1, total, f"{cfg.name} exported"))

    parity = check_parity(ema.text_encoder, ema.unet, tmp, _example_ids(cfg, tok))
    report(Progress(steps + 2, total, f"{cfg.name} parity {parity['max_abs_diff_unet_noise_pred']:.1e}"))

    metrics = {"parity": parity, "parameters": _parameters(ema), "train_steps": steps,
               "train_last_100_steps": float(np.mean(losses[-100:])) if losses else None,
               "train_first_100_steps": float(np.mean(losses[:100])) if losses else None,
               "method": "train_*_steps: mean epsilon MSE per step over those steps (training batches, "
                         "captions dropped included)" + ("" if not cfg.train.min_snr else
                         f", Min-SNR-{cfg.train.min_snr:g} weighted") + ("" if not cfg.train.region_weight else
                         f", the pixels {' and '.join(REGION_KEYS[cfg.dataset])} draw or would draw weighted 1 + "
                         f"{cfg.train.region_weight:g} (each image's weights normalised to mean 1)") +
                         ("" if not cfg.train.text_aux else
                         f", plus {cfg.train.text_aux:g} x the text encoder's attribute cross-entropy")}
    if pretrain:
        metrics["text_pretrain"] = pretrain
    if warm_start:
        metrics["warm_start"] = warm_start
    if aux_losses:
        metrics["text_aux_last_100_steps"] = float(np.mean(aux_losses[-100:]))
    seconds = {"train": run["seconds"], "export": round(time.perf_counter() - started, 1),
               "steps_per_second": round(steps / run["seconds"], 3) if run["seconds"] else None}
    _manifest(cfg, tok, command=command, metrics=metrics, run=run, seconds=seconds).save(tmp)
    if cfg.int8:
        from genstudio.export.diffusion.quantize import add_int8_unet

        add_int8_unet(tmp, command=command, default=True)
    final = publish(tmp, out_root, cfg.name)
    report(Progress(total, total, f"{cfg.name} exported, loss {metrics['train_last_100_steps']:.4f}"))
    return final


def _parameters(model: DiffusionModel) -> dict[str, int]:
    te, unet = count_params(model.text_encoder), count_params(model.unet)
    return {"text_encoder": te, "unet": unet, "total": te + unet}


def _manifest(cfg: DiffusionBuild, tok: Tokenizer, *, command: str, metrics: dict, run: dict,
              seconds: dict) -> Manifest:
    t, u = cfg.text, cfg.unet
    c, s = u.channels, u.size
    sched = cfg.train.schedule
    src = DATASET_DEFAULTS[cfg.dataset]["source_size"]
    title = {"synthfaces": f"SynthFaces text-to-image diffusion ({s}x{s})",
             "fashion-mnist": f"Fashion-MNIST text-to-image diffusion ({s}x{s})"}[cfg.dataset]
    extra = {"dataset": cfg.dataset, "image_shape": [c, s, s], "value_range": [-1, 1], "max_length": t.max_length,
             "text_dim": t.dim, "vocab_size": tok.get_vocab_size(), "pad_id": PAD_ID, "unk_id": UNK_ID,
             "prediction": "epsilon", "unconditional_prompt": "", "example_prompts": EXAMPLE_PROMPTS[cfg.dataset],
             "beta_schedule": sched.beta_schedule, "caption_dropout": cfg.train.caption_dropout,
             "tokenizer": "word level, lowercase, whitespace split, punctuation removed; pad with id 0 to max_length",
             "longest_training_caption_tokens": _longest(cfg.dataset, cfg.caption_draws),
             "preprocessing": (f"{src}x{src} -> {s}x{s} ({resample_name(src, s)} filter)" if cfg.dataset == "synthfaces"
                               else f"28x28 padded with background to 32x32 -> {s}x{s} ({resample_name(32, s)})")}
    if cfg.dataset == "fashion-mnist":
        extra["classes"] = fashion_mnist_captions()
    batch = "batch"
    return Manifest(
        family="diffusion", name=cfg.name, version="1", title=title,
        description=(f"A small text-to-image diffusion model trained from scratch on {cfg.dataset}: a {t.layers}-layer "
                     f"transformer text encoder over a vocabulary of {tok.get_vocab_size()} words and a UNet "
                     f"(widths {', '.join(map(str, u.widths))}) with cross-attention, predicting the noise of a "
                     f"{sched.num_train_timesteps}-step {sched.beta_schedule} schedule; captions dropped "
                     f"{cfg.train.caption_dropout:.0%} of the time for classifier-free guidance. The EMA weights ship."),
        files=[ModelFile(TEXT_ENCODER_FILE, "text_encoder"), ModelFile(UNET_FILE, "unet"),
               ModelFile(TOKENIZER_FILE, "tokenizer"), ModelFile(SCHEDULER_FILE, "scheduler"),
               ModelFile(CHECKPOINT_FILE, "checkpoint"), ModelFile(CURVES_FILE, "training_curves")],
        io={"text_encoder": {"inputs": [{"name": "input_ids", "dtype": "int64", "shape": [batch, t.max_length]}],
                             "outputs": [{"name": "hidden", "dtype": "float32", "shape": [batch, t.max_length, t.dim]}]},
            "unet": {"inputs": [{"name": "sample", "dtype": "float32", "shape": [batch, c, s, s]},
                                {"name": "timestep", "dtype": "float32", "shape": [batch]},
                                {"name": "encoder_hidden_states", "dtype": "float32",
                                 "shape": [batch, t.max_length, t.dim]}],
                     "outputs": [{"name": "noise_pred", "dtype": "float32", "shape": [batch, c, s, s]}]}},
        defaults={"steps": 25, "guidance": cfg.guidance, "scheduler": "dpmpp_2m", "seed": 0, "batch": 1},
        license=f"MIT (weights); data {image_sets.data_license(cfg.dataset)}",
        data_source=data_source(cfg.dataset, cfg.n_train),
        build={"command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "seconds": seconds, "versions": versions(), "train": cfg.train.to_dict(),
               "text_encoder": t.to_dict(), "unet": u.to_dict(),
               "data": {"dataset": cfg.dataset, "size": s, "n_train": cfg.n_train, "data_dir": cfg.data_dir,
                        **({"synthfaces_split": "train", "synthfaces_seed": SYNTHFACES_SEED}
                           if cfg.dataset == "synthfaces" else {})},
               **({"from_checkpoint": run["from_checkpoint"]} if "from_checkpoint" in run else {})},
        metrics=metrics, extra=extra)


def checkpoint_info(path: Path) -> dict:
    """Step, seconds and configs recorded in a training checkpoint."""
    meta = ckpt.read_metadata(path)
    return {"step": int(meta["step"]), "seconds": float(meta.get("seconds", 0)), "text": json.loads(meta["text"]),
            "unet": json.loads(meta["unet"]), "train": json.loads(meta["train"]), "data": json.loads(meta["data"]),
            "stages": json.loads(meta.get("stages", "[]"))}

