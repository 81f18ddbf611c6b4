"""Diffusion training: the noise schedule, the joint text encoder + UNet, epsilon MSE, caption dropout, EMA.

    model = DiffusionModel(text_cfg, unet_cfg)
    run = DiffusionRun(DiffusionTrainConfig(steps=4000), model, data)     # data: TrainingData
    run.add_callback("on_batch_end", lambda t: bar(t.step, t.config.steps, t.loss))
    run.train()
    run.ema                                                              # the weights that ship

DDPM (https://arxiv.org/abs/2006.11239): x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps with t uniform
over 1000 steps of a linear beta schedule, the UNet predicts eps, plain MSE. A fraction of the captions
is replaced by the empty prompt so one network also learns the unconditional model that classifier-free
guidance needs (https://arxiv.org/abs/2207.12598). The loop is genstudio.export.trainer.Trainer (AdamW,
warmup, cosine decay, callbacks); the EMA of the weights is one more on_batch_end listener.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tokenizers import Tokenizer

from genstudio.export.diffusion.data import NamedCaptions
from genstudio.export.diffusion.text_encoder import TextConfig, TextEncoder, pooled_text
from genstudio.export.diffusion.tokenizer import encode
from genstudio.export.diffusion.unet import UNet, UNetConfig
from genstudio.export.trainer import Trainer, TrainerConfig


@dataclass
class NoiseSchedule:
    """diffusers' names and formulas, so a scheduler rebuilds exactly these alphas_cumprod from the config."""

    num_train_timesteps: int = 1000  # training timesteps
    beta_schedule: str = "linear"  # "linear" (DDPM), "scaled_linear" (Stable Diffusion) or "squaredcos_cap_v2"
    beta_start: float = 1e-4  # DDPM's
    beta_end: float = 0.02  # DDPM's

    def betas(self) -> torch.Tensor:
        n = self.num_train_timesteps
        if self.beta_schedule == "linear":
            return torch.linspace(self.beta_start, self.beta_end, n, dtype=torch.float32)
        if self.beta_schedule == "scaled_linear":
            return torch.linspace(self.beta_start ** 0.5, self.beta_end ** 0.5, n, dtype=torch.float32) ** 2
        if self.beta_schedule == "squaredcos_cap_v2":  # Nichol & Dhariwal, https://arxiv.org/abs/2102.09672

            def alpha_bar(t: float) -> float:
                return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

            return torch.tensor([min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), 0.999) for i in range(n)],
                                dtype=torch.float32)
        raise ValueError(f"unknown beta_schedule {self.beta_schedule!r}")

    def alphas_cumprod(self) -> torch.Tensor:
        return torch.cumprod(1.0 - self.betas(), dim=0)  # float32, as diffusers computes it

    def scheduler_config(self) -> dict:
        """scheduler/scheduler_config.json."""
        return {"num_train_timesteps": self.num_train_timesteps, "beta_schedule": self.beta_schedule,
                "beta_start": self.beta_start, "beta_end": self.beta_end, "prediction_type": "epsilon",
                "clip_sample": True, "clip_sample_range": 1.0}

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DiffusionTrainConfig:
    steps: int = 4000  # optimisation steps
    batch_size: int = 64  # images per step
    lr: float = 1e-3  # peak AdamW learning rate (small UNets take a large one)
    warmup: int = 200  # steps of linear warmup (also after a resume: Adam's moments start again)
    min_lr_ratio: float = 0.1  # the cosine decays to lr * this
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    grad_clip: float = 1.0  # global gradient-norm clip
    caption_dropout: float = 0.12  # fraction of captions replaced by the empty prompt (for guidance)
    ema_decay: float = 0.999  # EMA of the weights; early on min(decay, (1 + step) / (10 + step))
    seed: int = 0  # seeds the weights and every batch (batch k depends only on seed and k)
    text_aux: float = 0.0  # weight of the text encoder's attribute loss beside the epsilon MSE (0: off)
    text_pretrain: int = 0  # steps of the attribute loss alone, on the text encoder, before diffusion steps
    min_snr: float = 0.0  # Min-SNR-gamma loss weighting (Hang et al. 2023), weight min(SNR, gamma) / SNR; 0: off
    precision: str = "float32"  # "bfloat16": diffusion steps under bf16 autocast (text_pretrain stays float32)
    region_weight: float = 0.0  # extra loss weight on the pixels of the attributes in data.REGION_KEYS; 0: off
    schedule: NoiseSchedule = field(default_factory=NoiseSchedule)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DiffusionTrainConfig:
        d = dict(d)
        return cls(schedule=NoiseSchedule(**d.pop("schedule", {})), **d)


class DiffusionModel(nn.Module):
    """The text encoder and the UNet, trained together: eps = unet(x_t, t, text_encoder(ids))."""

    def __init__(self, text: TextConfig, unet: UNetConfig) -> None:
        super().__init__()
        if unet.context_dim != text.dim:
            raise ValueError(f"the UNet reads {unet.context_dim}-d text, the encoder writes {text.dim}-d")
        self.text_encoder = TextEncoder(text)
        self.unet = UNet(unet)

    def forward(self, input_ids: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x_t, t.float(), self.text_encoder(input_ids))


@dataclass
class TrainingData:
    """Training images and a caption function: captions(indices, rng) draws one caption per image; `named`,
    when given, draws the same captions with the attribute values they name (for the text_aux objective)."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    captions: Callable[[np.ndarray, np.random.Generator], list[str]]
    tokenizer: Tokenizer
    max_length: int  # tokens per prompt, padded
    named: NamedCaptions | None = None
    regions: torch.Tensor | None = None  # float16 (N, 1, H, W) in [0, 1]: where the small attributes are drawn

    def __len__(self) -> int:
        return len(self.images)


def step_seed(seed: int, step: int) -> int:
    """The seed of batch `step`: batches do not depend on where a run was resumed."""
    return (seed * 1_000_003 + step) % (2**63)


def make_batch(data: TrainingData, cfg: DiffusionTrainConfig, step: int,
               alphas_cumprod: torch.Tensor) -> dict[str, torch.Tensor]:
    """Images, fresh captions (a fraction dropped to ""), timesteps, noise and the noised images of one step."""
    s = step_seed(cfg.seed, step)
    gen = torch.Generator().manual_seed(s)
    rng = np.random.default_rng(s)
    idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
    x0 = data.images[idx].float() / 127.5 - 1.0  # (B, C, H, W) in [-1, 1]
    batch = {}
    if cfg.text_aux and data.named is not None:
        captions, targets = data.named.draw(idx.numpy(), rng)
    else:
        captions, targets = data.captions(idx.numpy(), rng), None
    dropped = rng.random(len(captions)) < cfg.caption_dropout
    captions = ["" if drop else c for c, drop in zip(captions, dropped, strict=True)]
    if targets is not None:
        batch["targets"] = torch.from_numpy(np.where(dropped[:, None], -1, targets))
    t = torch.randint(0, len(alphas_cumprod), (cfg.batch_size,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    abar = alphas_cumprod[t][:, None, None, None]
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    if cfg.region_weight:
        if data.regions is None:
            raise ValueError("region_weight needs training data with attribute regions")
        weight = 1.0 + cfg.region_weight * data.regions[idx].float()
        batch["weight"] = weight / weight.mean(dim=(1, 2, 3), keepdim=True)  # each image's loss keeps its scale
    return {"input_ids": torch.from_numpy(encode(data.tokenizer, captions, data.max_length)), "x_t": x_t, "t": t,
            "noise": noise, **batch}


def min_snr_weights(alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma's per-sample weights of an epsilon loss: min(SNR(t), gamma) / SNR(t), SNR = abar / (1 - abar).
    Nearly clean samples (high SNR), whose noise is easy to tell and which fight the other timesteps' gradients,
    count less. At gamma 5 on the linear schedule, the weight is below 1 only for t under about 130."""
    abar = alphas_cumprod[t]
    snr = abar / (1.0 - abar)
    return snr.clamp(max=gamma) / snr


def noise_loss(pred: torch.Tensor, batch: dict[str, torch.Tensor], alphas_cumprod: torch.Tensor,
               min_snr: float) -> torch.Tensor:
    """The epsilon MSE of a batch, in float32 whatever `pred` is: per pixel weighted by batch["weight"] (B, 1, H, W)
    where the batch has one, per sample Min-SNR-weighted when min_snr > 0."""
    err = (pred.float() - batch["noise"]).pow(2)
    if "weight" in batch:
        err = err * batch["weight"]
    per_sample = err.flatten(1).mean(1)
    if not min_snr:
        return per_sample.mean()
    return (per_sample * min_snr_weights(alphas_cumprod, batch["t"], min_snr)).mean()


class AttributeHeads(nn.Module):
    """A linear classifier per attribute on the pooled text (the mean of the word vectors, as the UNet's pooled
    path reads it): trained with the text encoder so that its output says which attribute values the prompt
    names. A training aid; it never ships."""

    def __init__(self, dim: int, sizes: Sequence[int]) -> None:
        super().__init__()
        self.sizes = tuple(sizes)
        self.linear = nn.Linear(dim, sum(self.sizes))

    def forward(self, hidden: torch.Tensor) -> list[torch.Tensor]:
        return list(self.linear(pooled_text(hidden)[0]).split(self.sizes, dim=1))

    def loss(self, logits: list[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the attributes that some caption of the batch names (targets -1: not named)."""
        terms = [F.cross_entropy(lg, targets[:, k], ignore_index=-1)
                 for k, lg in enumerate(logits) if (targets[:, k] >= 0).any()]
        return torch.stack(terms).mean() if terms else logits[0].sum() * 0.0

    @torch.no_grad()
    def accuracy(self, logits: list[torch.Tensor], targets: torch.Tensor) -> list[float | None]:
        out: list[float | None] = []
        for k, lg in enumerate(logits):
            named = targets[:, k] >= 0
            out.append(float((lg.argmax(1)[named] == targets[named, k]).float().mean()) if named.any() else None)
        return out


class _WithHeads(nn.Module):
    """What the optimiser trains under text_aux: the diffusion model and the attribute heads."""

    def __init__(self, model: DiffusionModel, heads: AttributeHeads) -> None:
        super().__init__()
        self.model, self.heads = model, heads


class _PretrainTrainer(Trainer):
    """The text pretraining's schedule: a 50-step linear warm-up times a cosine over all steps to 0.1 of lr."""

    def lr_at(self, step: int) -> float:
        c = self.config
        warm = min(1.0, (step + 1) / c.warmup) if c.warmup else 1.0
        return c.lr * warm * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * step / c.steps)))


class _ResumableTrainer(Trainer):
    """Trainer whose warmup starts again at the step a resumed run picks up from (fresh AdamW moments)."""

    start_step = 0

    def lr_at(self, step: int) -> float:
        lr = super().lr_at(step)
        if self.start_step and self.config.warmup:
            lr *= min(1.0, (step - self.start_step + 1) / self.config.warmup)
        return lr


class DiffusionRun:
    """One training run: the model, its EMA, the per-step losses and the seconds, resumable from a checkpoint."""

    def __init__(self, config: DiffusionTrainConfig, model: DiffusionModel, data: TrainingData) -> None:
        self.config = config
        self.model = model
        self.ema = copy.deepcopy(model).eval().requires_grad_(False)
        self.data = data
        self.alphas_cumprod = config.schedule.alphas_cumprod()
        c = config
        self.heads: AttributeHeads | None = None
        self.aux_losses: list[float] = []  # the attribute loss of every diffusion step (text_aux)
        self.pretrain: dict = {}  # what text_pretrain did: steps, seconds, final loss and accuracy per attribute
        trained, loss_fn = model, self._eps_loss
        if c.text_aux or c.text_pretrain:
            if data.named is None:
                raise ValueError("text_aux and text_pretrain need captions with the attributes they name")
            self.heads = AttributeHeads(model.text_encoder.cfg.dim, data.named.sizes)
            trained, loss_fn = _WithHeads(model, self.heads), self._joint_loss
        self.trainer = _ResumableTrainer(
            TrainerConfig(steps=c.steps, batch_size=c.batch_size, lr=c.lr, weight_decay=c.weight_decay,
                          warmup=c.warmup, min_lr_ratio=c.min_lr_ratio, grad_clip=c.grad_clip, seed=c.seed,
                          precision=c.precision),
            trained, loss_fn, lambda step, gen: make_batch(self.data, c, step, self.alphas_cumprod))
        self.trainer.add_callback("on_batch_end", lambda t: self._update_ema())
        self.seconds_before = 0.0  # training seconds of earlier stages (a resumed run)
        self.ema_from = 0  # the step the EMA started from (reset_ema); its warm-up counts from there
        self.warm_start: dict = {}  # set when a resume started the raw weights from a shipped file's EMA ones

    def _eps_loss(self, model: DiffusionModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        pred = model(batch["input_ids"], batch["x_t"], batch["t"])
        return noise_loss(pred, batch, self.alphas_cumprod, self.config.min_snr)

    def _joint_loss(self, both: _WithHeads, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Epsilon MSE plus text_aux times the attribute loss of the same captions (the recorded loss is the sum)."""
        hidden = both.model.text_encoder(batch["input_ids"])
        mse = noise_loss(both.model.unet(batch["x_t"], batch["t"].float(), hidden), batch, self.alphas_cumprod,
                         self.config.min_snr)
        if "targets" not in batch:
            return mse
        aux = both.heads.loss(both.heads(hidden), batch["targets"])
        self.aux_losses.append(float(aux.detach()))
        return mse + self.config.text_aux * aux

    def pretrain_text(self, steps: int, batch_size: int = 64, lr: float = 2e-3) -> dict:
        """`steps` AdamW steps of the attribute loss alone on the text encoder (the UNet untouched), on captions
        of random training images; the EMA text encoder then takes these weights. Returns a summary."""
        self.pretrain = {**self._fit_attributes(steps, batch_size, lr, encoder=True), "at_step": self.step}
        return self.pretrain

    def fit_heads(self, steps: int = 300, batch_size: int = 64, lr: float = 2e-3) -> dict:
        """Fit new attribute heads to the text encoder as it is (frozen), so that text_aux goes on pulling the
        same way after a resume from a file without heads. Returns a summary."""
        return {**self._fit_attributes(steps, batch_size, lr, encoder=False), "frozen_text_encoder": True}

    def _fit_attributes(self, steps: int, batch_size: int, lr: float, encoder: bool) -> dict:
        """AdamW steps of the attribute loss on the heads, and on the text encoder when `encoder`."""
        assert self.heads is not None and self.data.named is not None
        heads, named, data = self.heads, self.data.named, self.data
        rng = np.random.default_rng(step_seed(self.config.seed, 10**9 + self.step))
        recent: list[list[float | None]] = []  # accuracy per attribute of the last 20 batches

        def batches(step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            texts, targets = named.draw(rng.integers(0, len(data), batch_size), rng)
            return torch.from_numpy(encode(data.tokenizer, texts, data.max_length)), torch.from_numpy(targets)

        encoder_module = self.model.text_encoder

        def loss(_: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            ids, targets = batch
            with torch.set_grad_enabled(encoder):
                hidden = encoder_module(ids)
            logits = heads(hidden)
            if trainer.step >= steps - 20:
                recent.append(heads.accuracy(logits, targets))
            return heads.loss(logits, targets)

        trained = nn.ModuleList([encoder_module, heads]) if encoder else heads
        trainer = _PretrainTrainer(TrainerConfig(steps=steps, batch_size=batch_size, lr=lr, weight_decay=0.01,
                                                 warmup=50, min_lr_ratio=0.1, grad_clip=0.0),
                                   trained, loss, batches)
        trainer.run()
        if encoder:
            self.ema.text_encoder.load_state_dict(encoder_module.state_dict())
        per_attr = {key: round(float(np.mean([a[k] for a in recent if a[k] is not None])), 4)
                    for k, key in enumerate(named.keys) if any(a[k] is not None for a in recent)}
        return {"steps": steps, "batch_size": batch_size, "seconds": round(trainer.elapsed, 1),
                "loss_last_20": round(float(np.mean(trainer.losses[-20:])), 4) if trainer.losses else None,
                "accuracy_last_20": per_attr}

    # the Trainer's state, read through
    @property
    def step(self) -> int:
        return self.trainer.step

    @property
    def losses(self) -> list[float]:
        return self.trainer.losses

    @property
    def seconds(self) -> float:
        return self.seconds_before + self.trainer.elapsed

    def add_callback(self, event: str, fn: Callable[[DiffusionRun], None]) -> None:
        self.trainer.add_callback(event, lambda t: fn(self))

    def stop(self) -> None:
        self.trainer.stop()

    @torch.no_grad()
    def _update_ema(self) -> None:
        k = self.trainer.step - self.ema_from
        decay = min(self.config.ema_decay, (1 + k) / (10 + k))
        for p_ema, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
            p_ema.lerp_(p, 1.0 - decay)

    @torch.no_grad()
    def reset_ema(self) -> None:
        """Start the EMA again from the current raw weights, with its warm-up. For a resumed run whose task
        changed (a new image size): an average over weights from before and after the change draws neither."""
        self.ema.load_state_dict(self.model.state_dict())
        self.ema_from = self.step

    def resume(self, step: int, seconds: float, losses: Sequence[float]) -> None:
        """Continue after `step` steps (the weights already loaded into model and ema)."""
        self.trainer.step = self.trainer.start_step = step
        self.trainer.losses = list(losses)[:step]
        self.seconds_before = seconds

    def grow(self, data: TrainingData) -> None:
        """Go on with `data`, larger images of the same captions: the UNet has no positional embeddings, so its
        weights carry over; the EMA starts again (reset_ema) and the learning rate warms up again."""
        self.data = data
        self.reset_ema()
        self.trainer.start_step = self.step

    def train(self, until: int | None = None) -> DiffusionRun:
        """Train to step `until` (default: the config's steps); a later call goes on from there."""
        torch.manual_seed(self.config.seed)  # dropout, if any
        if self.config.text_pretrain and not self.pretrain and self.step < self.config.steps:
            self.pretrain_text(self.config.text_pretrain, batch_size=self.config.batch_size, lr=2 * self.config.lr)
        self.trainer.run(until)
        return self


def build_model(text: TextConfig, unet: UNetConfig, seed: int) -> DiffusionModel:
    torch.manual_seed(seed)
    return DiffusionModel(text, unet)


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
